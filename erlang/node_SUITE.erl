%% The real presence_node seen from the BEAM: distribution, its :pg scope and
%% Phoenix.PubSub.
%%
%% Each case starts a BEAM peer (the `peer` module, real EPMD) that does on
%% the wire what a Phoenix node running {Phoenix.PubSub, name: MyApp.PubSub}
%% does: a pg scope 'Elixir.Phoenix.PubSub', a worker registered and joined
%% as 'Elixir.MyApp.PubSub.Adapter' that reports every forward_to_local it
%% gets, and broadcasts made as Phoenix.PubSub.PG2 makes them. Beside it runs
%% the real presence_node binary ($PRESENCE_BUILD_DIR/cnode/presence_node)
%% with --pubsub MyApp.PubSub and --control. The C++ side is driven through
%% its control process `presence` (PubSub requests: subscribe, broadcast,
%% direct_broadcast); whatever reaches the peer is kept by its collector.
%%
%% The long-names case runs a long-named peer over standard_io (this node has
%% short names and cannot talk to it) and drives everything from that peer.
-module(node_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([ping_in_both_directions/1, adapter_joins_the_beam_group_within_two_seconds/1,
         beam_broadcast_reaches_cpp_subscriber/1, cpp_broadcast_reaches_beam_subscriber/1,
         direct_broadcasts_arrive_in_both_directions/1,
         large_and_nested_terms_arrive_intact/1, killing_cpp_node_removes_its_members/1,
         restarted_beam_node_is_rediscovered/1, wrong_cookie_is_refused_with_a_clear_log/1,
         garbage_to_registered_names_is_dropped/1, long_names/1]).
%% Run on the peers.
-export([start_phoenix/0, collected/0, beam_broadcast/2, beam_direct_broadcast/3,
         call_control/2]).

-define(SCOPE, 'Elixir.Phoenix.PubSub').
-define(PUBSUB, 'Elixir.MyApp.PubSub').
-define(ADAPTER, 'Elixir.MyApp.PubSub.Adapter').
-define(COLLECTOR, node_suite_collector).
-define(TIMEOUT, 5000).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [ping_in_both_directions, adapter_joins_the_beam_group_within_two_seconds,
     beam_broadcast_reaches_cpp_subscriber, cpp_broadcast_reaches_beam_subscriber,
     direct_broadcasts_arrive_in_both_directions, large_and_nested_terms_arrive_intact,
     killing_cpp_node_removes_its_members, restarted_beam_node_is_rediscovered,
     wrong_cookie_is_refused_with_a_clear_log, garbage_to_registered_names_is_dropped,
     long_names].

%%% Setup

init_per_suite(Config) ->
    Binary = filename:join([os:getenv("PRESENCE_BUILD_DIR", ""), "cnode", "presence_node"]),
    case {node(), filelib:is_regular(Binary)} of
        {nonode@nohost, _} ->
            {fail, "this node is not distributed: run the suite through scripts/ct"};
        {_, false} ->
            {fail, "presence_node is not built: " ++ Binary};
        {_, true} ->
            Help = os:cmd(Binary ++ " --help"),
            [ct:fail("presence_node has no " ++ Flag ++ " flag")
             || Flag <- ["--pubsub", "--control"], string:find(Help, Flag) =:= nomatch],
            [{binary, Binary} | Config]
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Name = "node_" ++ atom_to_list(Case) ++ "_" ++ os:getpid(),
    [{case_name, Name} | Config].

%% A BEAM scope that restarted during the case crashed on something the C++
%% node sent: that fails the case.
end_per_testcase(_Case, _Config) ->
    [kill_cpp(Cpp) || Cpp <- get_cpps()],
    Verdict = case dict_get(beam, undefined) of
                  #{scope := Scope} = Beam when is_pid(Scope) ->
                      case catch on_beam(Beam, erlang, whereis, [?SCOPE]) of
                          Scope -> ok;
                          Now -> {fail, {beam_scope_restarted, Scope, Now}}
                      end;
                  _ ->
                      ok
              end,
    [catch peer:stop(Peer) || #{peer := Peer} <- get_beams()],
    ct:log("C++ node output:~n~s", [[[L, $\n] || L <- dict_get(cpp_output_log, [])]]),
    Verdict.

dict_get(Key, Default) ->
    case get(Key) of
        undefined -> Default;
        Value -> Value
    end.

%%% Cases

%% C++ -> BEAM: presence_node connects to the peer named by --connect
%% (hidden, as a C node is). BEAM -> C++: a peer connected to no node, so
%% that presence_node cannot have reached it first, pings it.
ping_in_both_directions(Config) ->
    Beam = start_beam(),
    Isolated = start_beam(peer:random_name("node_isolated"), isolated),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    await(fun() -> lists:member(Cpp, on_beam(Beam, erlang, nodes, [hidden])) end,
          "the C++ node connects to the peer"),
    ?assertEqual([], on_beam(Isolated, erlang, nodes, [connected])),
    ?assertEqual(pong, on_beam(Isolated, net_adm, ping, [Cpp])),
    ?assertEqual(pong, net_adm:ping(Cpp)).

adapter_joins_the_beam_group_within_two_seconds(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    Started = erlang:monotonic_time(millisecond),
    await(fun() -> cpp_adapter(Beam, Cpp) =/= none end, 2000,
          "the C++ adapter in the peer's pg group"),
    ct:log("listed after ~b ms", [erlang:monotonic_time(millisecond) - Started]),
    ?assertEqual(Cpp, node(cpp_adapter(Beam, Cpp))).

beam_broadcast_reaches_cpp_subscriber(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    subscribe_collector(Beam, Cpp, <<"room:1">>),
    await_adapter(Beam, Cpp),
    ok = on_beam(Beam, ?MODULE, beam_broadcast, [<<"room:1">>, {hello, [1, 2, 3]}]),
    await_collected(Beam, {hello, [1, 2, 3]}).

cpp_broadcast_reaches_beam_subscriber(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    await_beam_adapter_seen_by(Beam, Cpp),
    Message = #{from => cpp, at => 1},
    ok = control(Beam, Cpp, {broadcast, ?PUBSUB, <<"room:1">>, Message}),
    await_collected(Beam, {forwarded, <<"room:1">>, Message, ?SCOPE}).

direct_broadcasts_arrive_in_both_directions(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    subscribe_collector(Beam, Cpp, <<"room:1">>),
    ok = control(Beam, Cpp, {direct_broadcast, beam_node(Beam), ?PUBSUB, <<"room:1">>, to_beam}),
    await_collected(Beam, {forwarded, <<"room:1">>, to_beam, ?SCOPE}),
    ok = on_beam(Beam, ?MODULE, beam_direct_broadcast, [Cpp, <<"room:1">>, to_cpp]),
    await_collected(Beam, to_cpp),
    %% A direct broadcast reaches only the node it names: the C++ node did
    %% not hand to_beam to its own subscriber.
    ?assertNot(lists:member(to_beam, on_beam(Beam, ?MODULE, collected, []))).

large_and_nested_terms_arrive_intact(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    subscribe_collector(Beam, Cpp, <<"big">>),
    await_adapter(Beam, Cpp),
    await_beam_adapter_seen_by(Beam, Cpp),
    Terms = demanding_terms(),
    [ok = on_beam(Beam, ?MODULE, beam_broadcast, [<<"big">>, T]) || T <- Terms],
    [await_collected(Beam, T) || T <- Terms],
    [ok = control(Beam, Cpp, {broadcast, ?PUBSUB, <<"big">>, {cpp, T}}) || T <- Terms],
    [await_collected(Beam, {forwarded, <<"big">>, {cpp, T}, ?SCOPE}) || T <- Terms],
    ok.

killing_cpp_node_removes_its_members(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    await_adapter(Beam, Cpp),
    kill_cpp(Cpp),
    await(fun() -> cpp_adapter(Beam, Cpp) =:= none end, "the peer drops the C++ adapter"),
    ?assertEqual([whereis_on(Beam, ?ADAPTER)], adapter_members(Beam)).

restarted_beam_node_is_rediscovered(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    await_adapter(Beam, Cpp),
    peer:stop(maps:get(peer, Beam)),
    Again = start_beam(maps:get(name, Beam)),
    await(fun() -> cpp_adapter(Again, Cpp) =/= none end, 15000,
          "the restarted peer lists the C++ adapter"),
    subscribe_collector(Again, Cpp, <<"again">>),
    ok = on_beam(Again, ?MODULE, beam_broadcast, [<<"again">>, back]),
    await_collected(Again, back).

wrong_cookie_is_refused_with_a_clear_log(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}, {cookie, "not_the_cookie"}]),
    [Name, _] = string:split(atom_to_list(Cpp), "@"),
    await(fun() -> {ok, Names} = erl_epmd:names(), lists:keymember(Name, 1, Names) end,
          "presence_node registered at EPMD"),
    ?assertEqual(pang, net_adm:ping(Cpp)),
    await(fun() -> has_line(Cpp, "wrong cookie") end, "a log line naming the wrong cookie"),
    ?assertEqual(pang, on_beam(Beam, net_adm, ping, [Cpp])),
    Cookies = ["not_the_cookie", atom_to_list(erlang:get_cookie())],
    [?assertNot(has_line(Cpp, Cookie)) || Cookie <- Cookies].

%% Garbage sent to every name the node registers is dropped and logged,
%% and the node goes on serving: pings, pg and PubSub.
garbage_to_registered_names_is_dropped(Config) ->
    Beam = start_beam(),
    Cpp = start_cpp(Config, [{connect, Beam}]),
    await_adapter(Beam, Cpp),
    Garbage = [junk, {discover, not_a_pid}, {join, 1, 2, 3}, {'$gen_cast', junk},
               {'$gen_call', {self(), make_ref()}, junk}, {forward_to_local, 1},
               {forward_to_local, not_a_binary, msg, ?SCOPE}, <<1, 2, 3>>,
               lists:seq(1, 1000)],
    [on_beam(Beam, erlang, send, [{Name, Cpp}, G])
     || Name <- [?SCOPE, ?ADAPTER, net_kernel, presence], G <- Garbage],
    await(fun() -> has_line(Cpp, "pg scope Elixir.Phoenix.PubSub: dropped") end,
          "the pg scope logs what it dropped"),
    await(fun() -> has_line(Cpp, "pubsub Elixir.MyApp.PubSub: dropped") end,
          "the adapter logs what it dropped"),
    BeamName = "node '" ++ atom_to_list(maps:get(node, Beam)) ++ "'",
    await(fun() -> has_line(Cpp, BeamName) end, "the drop names the peer that sent it"),
    ?assertEqual(pong, on_beam(Beam, net_adm, ping, [Cpp])),
    ?assertEqual(pong, net_adm:ping(Cpp)),
    subscribe_collector(Beam, Cpp, <<"after">>),
    ok = on_beam(Beam, ?MODULE, beam_broadcast, [<<"after">>, still_serving]),
    await_collected(Beam, still_serving),
    ok = control(Beam, Cpp, {broadcast, ?PUBSUB, <<"after">>, still_sending}),
    await_collected(Beam, {forwarded, <<"after">>, still_sending, ?SCOPE}).

long_names(Config) ->
    Beam = start_beam(peer:random_name("node_long"), long),
    Cpp = start_cpp(Config, [{connect, Beam}, long]),
    await(fun() -> cpp_adapter(Beam, Cpp) =/= none end, "the C++ adapter in the peer's group"),
    subscribe_collector(Beam, Cpp, <<"long">>),
    await_beam_adapter_seen_by(Beam, Cpp),
    ok = on_beam(Beam, ?MODULE, beam_broadcast, [<<"long">>, from_beam]),
    await_collected(Beam, from_beam),
    ok = control(Beam, Cpp, {broadcast, ?PUBSUB, <<"long">>, from_cpp}),
    await_collected(Beam, {forwarded, <<"long">>, from_cpp, ?SCOPE}).

%%% Terms that stress both codecs

demanding_terms() ->
    Nested = lists:foldl(fun(I, Acc) -> [I, {Acc}] end, core, lists:seq(1, 200)),
    [binary:copy(<<"x">>, 1 bsl 20),
     Nested,
     maps:from_list([{integer_to_binary(I), #{n => I * 1000000007}} || I <- lists:seq(1, 100)]),
     {-0.125, -(1 bsl 62), -(1 bsl 100), 1 bsl 200, 'ünïcødé', "chars", [], <<15:4>>},
     list_to_tuple(lists:seq(1, 300)),
     [a, b | c],
     {self(), make_ref(), fun lists:reverse/1},
     list_to_atom(lists:duplicate(255, $é))].

%%% The BEAM peer

start_beam() ->
    start_beam(peer:random_name("node_beam")).

start_beam(Name) ->
    start_beam(Name, short).

%% Starts a peer doing what a Phoenix node does on the wire (start_phoenix/0).
start_beam(Name, Names) ->
    Args = ["-setcookie", atom_to_list(erlang:get_cookie())],
    Options = case Names of
                  short -> #{name => Name, args => Args};
                  isolated -> #{name => Name, connection => standard_io, args => Args};
                  long -> #{name => Name, host => "127.0.0.1", longnames => true,
                            connection => standard_io, args => Args}
              end,
    {ok, Peer, Node} = peer:start(Options#{wait_boot => 30000}),
    Beam = #{peer => Peer, node => Node, name => Name, names => Names},
    {?MODULE, Code, File} = code:get_object_code(?MODULE),
    {module, ?MODULE} = on_beam(Beam, code, load_binary, [?MODULE, File, Code]),
    ok = on_beam(Beam, ?MODULE, start_phoenix, []),
    Started = Beam#{scope => on_beam(Beam, erlang, whereis, [?SCOPE])},
    put(beam, Started),
    put(beams, [Started | dict_get(beams, [])]),
    Started.

get_beams() -> dict_get(beams, []).

beam_node(#{node := Node}) -> Node.

%% Peers not connected to this node are reached over their standard_io.
on_beam(#{names := short, node := Node}, M, F, A) -> erpc:call(Node, M, F, A, ?TIMEOUT);
on_beam(#{peer := Peer}, M, F, A) -> peer:call(Peer, M, F, A, ?TIMEOUT).

whereis_on(Beam, Name) -> on_beam(Beam, erlang, whereis, [Name]).

adapter_members(Beam) -> on_beam(Beam, pg, get_members, [?SCOPE, ?ADAPTER]).

cpp_adapter(Beam, Cpp) ->
    case [P || P <- adapter_members(Beam), node(P) =:= Cpp] of
        [Pid] -> Pid;
        [] -> none
    end.

await_adapter(Beam, Cpp) ->
    await(fun() -> cpp_adapter(Beam, Cpp) =/= none end, "the C++ adapter in the peer's group").

%% The C++ node has the peer's adapter among its members once its broadcasts
%% reach the peer; there is no way to ask it, so a probe broadcast stands in.
await_beam_adapter_seen_by(Beam, Cpp) ->
    await(fun() ->
              ok = control(Beam, Cpp, {broadcast, ?PUBSUB, <<"probe">>, probe}),
              lists:member({forwarded, <<"probe">>, probe, ?SCOPE},
                           on_beam(Beam, ?MODULE, collected, []))
          end,
          "the C++ node broadcasting to the peer").

subscribe_collector(Beam, Cpp, Topic) ->
    Collector = whereis_on(Beam, ?COLLECTOR),
    {ok, _} = control(Beam, Cpp, {subscribe, ?PUBSUB, Topic, Collector}).

await_collected(Beam, Message) ->
    await(fun() -> lists:member(Message, on_beam(Beam, ?MODULE, collected, [])) end,
          io_lib:format("the peer collects ~0P", [Message, 8])).

%% The control process is asked from the peer, which is connected to the C++
%% node whatever the names.
control(Beam, Cpp, Request) ->
    on_beam(Beam, ?MODULE, call_control, [Cpp, Request]).

%%% Run on the peer

start_phoenix() ->
    {ok, _} = pg:start(?SCOPE),
    Collector = spawn(fun() -> collect([]) end),
    true = register(?COLLECTOR, Collector),
    Worker = spawn(fun() -> adapter_worker(Collector) end),
    true = register(?ADAPTER, Worker),
    ok = pg:join(?SCOPE, ?ADAPTER, Worker).

%% What Phoenix.PubSub.PG2Worker does, with the collector as the only local
%% subscriber.
adapter_worker(Collector) ->
    receive
        {forward_to_local, Topic, Message, Dispatcher} ->
            Collector ! {forwarded, Topic, Message, Dispatcher};
        _ ->
            ok
    end,
    adapter_worker(Collector).

collect(Messages) ->
    receive
        {'$collected', From, Ref} ->
            From ! {Ref, lists:reverse(Messages)},
            collect(Messages);
        Message ->
            collect([Message | Messages])
    end.

collected() ->
    Ref = make_ref(),
    ?COLLECTOR ! {'$collected', self(), Ref},
    receive {Ref, Messages} -> Messages after ?TIMEOUT -> error(collector_silent) end.

%% As Phoenix.PubSub.PG2.broadcast/4: to the adapter of every other node.
beam_broadcast(Topic, Message) ->
    [Pid ! {forward_to_local, Topic, Message, ?SCOPE}
     || Pid <- pg:get_members(?SCOPE, ?ADAPTER), node(Pid) =/= node()],
    ok.

beam_direct_broadcast(Node, Topic, Message) ->
    {?ADAPTER, Node} ! {forward_to_local, Topic, Message, ?SCOPE},
    ok.

call_control(Cpp, Request) ->
    gen_server:call({presence, Cpp}, Request, ?TIMEOUT).

%%% The C++ node

%% Starts presence_node and waits until it answers a ping from the peer.
%% Options: {connect, Beam}, {cookie, Cookie}, long.
start_cpp(Config, Options) ->
    Long = lists:member(long, Options),
    Beam = proplists:get_value(connect, Options),
    Name = case Long of
               true -> ?config(case_name, Config) ++ "@127.0.0.1";
               false -> ?config(case_name, Config)
           end,
    Cookie = proplists:get_value(cookie, Options, atom_to_list(erlang:get_cookie())),
    Args = ["--name", Name, "--cookie", Cookie, "--pubsub", "MyApp.PubSub", "--control",
            "--connect", atom_to_list(beam_node(Beam))]
           ++ [A || true <- [Long], A <- ["--long-names"]],
    Owner = start_port_owner(?config(binary, Config), Args),
    Cpp = case Long of
              true -> list_to_atom(Name);
              false -> list_to_atom(Name ++ "@" ++ host())
          end,
    put(cpps, [{Cpp, Owner} | dict_get(cpps, [])]),
    ct:log("started presence_node ~s", [lists:join(" ", Args)]),
    case proplists:is_defined(cookie, Options) of
        true -> ok;
        false -> await(fun() -> on_beam(Beam, net_adm, ping, [Cpp]) =:= pong end,
                       "presence_node answers ping")
    end,
    Cpp.

host() ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Host.

get_cpps() -> [Cpp || {Cpp, _} <- dict_get(cpps, [])].

cpp_owner(Cpp) -> proplists:get_value(Cpp, dict_get(cpps, [])).

%% SIGKILL, as a crash; waits for the process to end.
kill_cpp(Cpp) ->
    Owner = cpp_owner(Cpp),
    Owner ! {kill, self()},
    receive {Owner, Lines} -> put(cpp_output_log, dict_get(cpp_output_log, []) ++ Lines)
    after ?TIMEOUT -> ct:fail({still_running, Cpp})
    end,
    put(cpps, proplists:delete(Cpp, dict_get(cpps, []))).

has_line(Cpp, Fragment) ->
    Owner = cpp_owner(Cpp),
    Owner ! {lines, self()},
    receive
        {Owner, Lines} -> lists:any(fun(L) -> string:find(L, Fragment) =/= nomatch end, Lines)
    after ?TIMEOUT -> ct:fail({no_port_owner, Cpp})
    end.

%% A process owning the port of one presence_node: it keeps the node's
%% output lines, answers {lines, From}, and on {kill, From} kills the node
%% and answers with the output once it has ended.
start_port_owner(Binary, Args) ->
    Parent = self(),
    Owner = spawn(fun() ->
                      Port = open_port({spawn_executable, Binary},
                                       [{args, Args}, exit_status, stderr_to_stdout, binary,
                                        {line, 4096}]),
                      {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                      Parent ! {self(), started},
                      port_owner(Port, OsPid, [], none)
                  end),
    receive {Owner, started} -> Owner after ?TIMEOUT -> ct:fail(presence_node_not_started) end.

port_owner(Port, OsPid, Lines, Killer) ->
    receive
        {Port, {data, {_, Line}}} ->
            port_owner(Port, OsPid, [binary_to_list(Line) | Lines], Killer);
        {Port, {exit_status, Status}} ->
            All = lists:reverse([io_lib:format("== exit status ~b", [Status]) | Lines]),
            [Pid ! {self(), All} || Pid <- [Killer], is_pid(Pid)],
            port_exited(All);
        {lines, From} ->
            From ! {self(), lists:reverse(Lines)},
            port_owner(Port, OsPid, Lines, Killer);
        {kill, From} ->
            os:cmd("kill -9 " ++ integer_to_list(OsPid)),
            port_owner(Port, OsPid, Lines, From)
    end.

port_exited(Lines) ->
    receive
        {Request, From} when Request =:= lines; Request =:= kill ->
            From ! {self(), Lines},
            port_exited(Lines)
    end.

%%% Waiting

await(Fun, What) ->
    await(Fun, ?TIMEOUT, What).

await(Fun, Timeout, What) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    await_until(Fun, Deadline, What).

await_until(Fun, Deadline, What) ->
    case catch Fun() of
        true ->
            ok;
        Other ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail({timeout, lists:flatten(What), Other});
                false -> timer:sleep(20), await_until(Fun, Deadline, What)
            end
    end.
