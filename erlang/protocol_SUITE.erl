%% The C++ node's wire protocol, checked against captures of a real Phoenix
%% node, without Phoenix.
%%
%% A plain Erlang peer node plays a Phoenix node: a process registered as the
%% pg scope 'Elixir.Phoenix.PubSub' and one registered as the PubSub adapter
%% 'Elixir.P.Adapter' (a member of the adapter group), standing for shard
%% 'Elixir.T_shard0' of tracker T on PubSub P. Both only forward what they
%% receive to the case, which answers from the peer with the golden captures
%% (PRESENCE_GOLDEN_DIR/phoenix_pubsub-2.1.3/*.etf) rewritten to the peer's
%% own node name, pids and replica refs. Every message the C++ node sends is
%% checked against the exact shapes Phoenix pattern-matches, and the C++
%% node's lists (read through its control process) against what the golden
%% deltas imply.
-module(protocol_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([pg_exchange_matches_phoenix/1, heartbeats_have_phoenix_shape/1,
         golden_deltas_change_the_list/1, list_after_own_delta_equals_golden_09/1,
         transfer_req_answered_with_delta_ack/1,
         new_vsn_permdowns_old_and_full_state_ack_is_merged/1,
         transfer_ack_from_cpp_has_state_shape/1, golden_graceful_permdown_drops_replica/1,
         sigterm_sends_graceful_permdown/1]).

-define(SCOPE, 'Elixir.Phoenix.PubSub').
-define(ADAPTER, 'Elixir.P.Adapter').
-define(TRACKER, 'Elixir.T').
-define(SHARD_TOPIC, <<"phx_presence:Elixir.T_shard0">>).
-define(STATE, 'Elixir.Phoenix.Tracker.State').
-define(GOLDEN_NODE, a@vm).
-define(GOLDEN_VSN, 1796314556334940).
-define(GOLDEN_VSN_B, 1796314565595741).
-define(GOLDEN_PEER_REF, {r@vm, 123456789}).
-define(TIMEOUT, 5000).

-define(AWAIT(Pattern, Timeout),
        await(fun(Message__) ->
                 case Message__ of
                     Pattern -> true;
                     _ -> false
                 end
              end,
              Timeout, ??Pattern)).

suite() ->
    [{timetrap, {minutes, 2}}].

all() ->
    [pg_exchange_matches_phoenix, heartbeats_have_phoenix_shape, golden_deltas_change_the_list,
     list_after_own_delta_equals_golden_09, transfer_req_answered_with_delta_ack,
     new_vsn_permdowns_old_and_full_state_ack_is_merged, transfer_ack_from_cpp_has_state_shape,
     golden_graceful_permdown_drops_replica, sigterm_sends_graceful_permdown].

%%% Setup

init_per_suite(Config) ->
    Binary = filename:join([os:getenv("PRESENCE_BUILD_DIR", ""), "cnode", "presence_node"]),
    Golden = filename:join(os:getenv("PRESENCE_GOLDEN_DIR", ""), "phoenix_pubsub-2.1.3"),
    case {filelib:is_regular(Binary), filelib:is_dir(Golden)} of
        {false, _} -> {fail, "presence_node is not built: " ++ Binary};
        {_, false} -> {fail, "golden captures not found: " ++ Golden};
        {true, true} -> [{binary, Binary}, {golden, Golden} | Config]
    end.

end_per_suite(_Config) ->
    ok.

%% Each case has its own fake Phoenix peer and its own C++ node.
init_per_testcase(Case, Config) ->
    {Module, Beam, File} = code:get_object_code(?MODULE),
    {ok, Peer, Node} =
        peer:start(#{name => peer:random_name("fake_phoenix"),
                     args => ["-setcookie", atom_to_list(erlang:get_cookie())]}),
    {module, Module} = erpc:call(Node, code, load_binary, [Module, File, Beam]),
    Scope = start_forwarder(Node, ?SCOPE, scope),
    Adapter = start_forwarder(Node, ?ADAPTER, adapter),
    [{peer, Peer}, {fake, Node}, {fake_scope, Scope}, {fake_adapter, Adapter},
     {cpp_name, "cpp_proto_" ++ atom_to_list(Case) ++ "_" ++ os:getpid()} | Config].

end_per_testcase(_Case, Config) ->
    case get(cpp_owner) of
        undefined -> ok;
        Owner -> Owner ! {signal, "KILL", self()}
    end,
    peer:stop(?config(peer, Config)).

%%% Cases

%% pg: the C++ scope discovers the peer's scope, answers our golden 01 sync
%% and 02 discover with a sync listing its adapter, and sends nothing pg
%% does not understand.
pg_exchange_matches_phoenix(Config) ->
    #{cpp := Cpp, cpp_scope := CppScope, cpp_adapter := CppAdapter} = connect(Config),
    ?assertEqual(Cpp, node(CppScope)),
    ?assertEqual(Cpp, node(CppAdapter)),
    timer:sleep(500),
    [check_scope_message(Cpp, M) || {scope, M} <- drain()],
    ok.

%% Heartbeats are {pub, heartbeat, Ref, empty | Delta, {Ref, Context}} inside
%% {forward_to_local, "phx_presence:Elixir.T_shard0", _, Phoenix.PubSub}.
heartbeats_have_phoenix_shape(Config) ->
    #{cpp := Cpp, cpp_ref := CppRef} = Session = connect(Config),
    [begin
         {adapter, Heartbeat} =
             ?AWAIT({adapter, {forward_to_local, _, {pub, heartbeat, _, _, _}, _}}, ?TIMEOUT),
         check_adapter_message(Cpp, Heartbeat)
     end || _ <- [1, 2, 3]],
    {ok, Pid, Ref} = track_cpp(Cpp, <<"room:1">>, <<"carol">>, #{device => <<"cpp">>}),
    Delta = await_delta_heartbeat(Session),
    ct:log("delta heartbeat from the C++ node:~n~p", [Delta]),
    ?assertMatch(#{replica := CppRef, mode := delta}, Delta),
    ?assertEqual([{Pid, <<"room:1">>, <<"carol">>, #{device => <<"cpp">>, phx_ref => Ref}}],
                 maps:values(maps:get(values, Delta))),
    [Tag] = maps:keys(maps:get(values, Delta)),
    ?assertMatch({CppRef, N} when is_integer(N), Tag),
    ?assert(lists:member(Tag, mapset_elements(maps:get(CppRef, maps:get(clouds, Delta))))).

%% Golden 03-07 replayed in order: the C++ node's lists follow the deltas.
golden_deltas_change_the_list(Config) ->
    #{cpp := Cpp, fake_ref := FakeRef} = Session = connect(Config),
    replay(Session, "03_heartbeat_empty"),
    await_replicas(Cpp, #{element(1, FakeRef) => up}),
    ?assertEqual([], cpp_list(Cpp, <<"room:1">>)),
    Model = lists:foldl(
              fun(Name, Model0) ->
                  Message = replay(Session, Name),
                  Model1 = apply_delta(Model0, heartbeat_delta(Message)),
                  await_lists_equal(Cpp, Model1, [<<"room:1">>, <<"room:2">>]),
                  Model1
              end,
              #{},
              ["04_heartbeat_delta_3_joins", "05_heartbeat_delta_update",
               "06_heartbeat_delta_leave"]),
    replay(Session, "07_heartbeat_after_leave"),
    timer:sleep(300),
    await_lists_equal(Cpp, Model, [<<"room:1">>, <<"room:2">>]),
    ?assertMatch([{<<"alice">>, #{n := 2, phx_ref_prev := <<"GO3Kku7Nisbh3gCR">>}}],
                 cpp_list(Cpp, <<"room:1">>)),
    ?assertMatch([{42, #{<<"string_key">> := [1, 2.5, atom, {t, <<"x">>}]}}],
                 cpp_list(Cpp, <<"room:2">>)),
    [{AlicePid, _}] = cpp_call(Cpp, {get_by_key, ?TRACKER, <<"room:1">>, <<"alice">>}),
    ?assertEqual(element(1, FakeRef), node(AlicePid)),
    no_unexpected_messages(Session, [transfer_req]).

%% The golden 09 list: Phoenix's list of room:1 after the golden deltas and
%% a peer's own join of carol. The C++ node, the peer here, lists the same
%% (carol's phx_ref is its own).
list_after_own_delta_equals_golden_09(Config) ->
    #{cpp := Cpp} = Session = connect(Config),
    [replay(Session, Name)
     || Name <- ["03_heartbeat_empty", "04_heartbeat_delta_3_joins", "05_heartbeat_delta_update",
                 "06_heartbeat_delta_leave", "07_heartbeat_after_leave"]],
    {ok, _, CarolRef} = track_cpp(Cpp, <<"room:1">>, <<"carol">>, #{device => <<"cpp">>}),
    [Alice, {<<"carol">>, CarolMeta}] = golden(Config, "09_list_after_cpp_delta"),
    Expected = [Alice, {<<"carol">>, CarolMeta#{phx_ref => CarolRef}}],
    await(fun() -> cpp_list(Cpp, <<"room:1">>) == Expected end, ?TIMEOUT, "list equals 09"),
    no_unexpected_messages(Session, [transfer_req]).

%% A heartbeat whose clock is ahead (golden 07 before any delta) makes the
%% C++ node ask for a transfer; golden 08 (a delta-mode ack) answers it.
transfer_req_answered_with_delta_ack(Config) ->
    #{cpp := Cpp} = Session = connect(Config),
    replay(Session, "03_heartbeat_empty"),
    replay(Session, "07_heartbeat_after_leave"),
    TransferRef = await_transfer_req(Session),
    Ack = replay(Session#{ref => TransferRef}, "08_transfer_ack_full_state"),
    Model = apply_delta(#{}, ack_state(Ack)),
    await_lists_equal(Cpp, Model, [<<"room:1">>, <<"room:2">>]),
    ?assertMatch([{<<"alice">>, #{n := 2}}], cpp_list(Cpp, <<"room:1">>)),
    ?assertMatch([{42, _}], cpp_list(Cpp, <<"room:2">>)),
    no_unexpected_messages(Session).

%% The fake node comes back with a new vsn (golden 08b's): the C++ node drops
%% the old replica's presences, asks the new one for a transfer and merges
%% its whole-state answer ({State, Values}).
new_vsn_permdowns_old_and_full_state_ack_is_merged(Config) ->
    #{cpp := Cpp, fake_ref := {Fake, _}} = Session = connect(Config),
    replay(Session, "03_heartbeat_empty"),
    replay(Session, "04_heartbeat_delta_3_joins"),
    await(fun() -> length(cpp_list(Cpp, <<"room:1">>)) == 2 end, ?TIMEOUT, "04 merged"),
    #{Fake := {up, ?GOLDEN_VSN}} = cpp_replicas(Cpp),

    Restarted = Session#{fake_ref => {Fake, ?GOLDEN_VSN_B},
                         vsn_map => #{?GOLDEN_VSN => ?GOLDEN_VSN_B}},
    replay(Restarted, "07_heartbeat_after_leave"),
    await(fun() -> cpp_list(Cpp, <<"room:1">>) == [] end, ?TIMEOUT, "old replica permdowned"),
    ?assertEqual([], cpp_list(Cpp, <<"room:2">>)),
    ?assertMatch(#{Fake := {up, ?GOLDEN_VSN_B}}, cpp_replicas(Cpp)),
    TransferRef = await_transfer_req(Restarted),
    Ack = replay(Restarted#{ref => TransferRef, vsn_map => #{}},
                 "08b_transfer_ack_normal_mode"),
    Model = apply_delta(#{}, ack_state(Ack)),
    await_lists_equal(Cpp, Model, [<<"room:1">>, <<"room:2">>]),
    ?assertMatch([{<<"alice">>, #{phx_ref := <<"GO3KlSkv05bh3gBx">>}}],
                 cpp_list(Cpp, <<"room:1">>)),
    no_unexpected_messages(Session).

%% Asked for a transfer as a Phoenix shard asks, the C++ node answers with
%% its presences in one of the two shapes Phoenix merges.
transfer_ack_from_cpp_has_state_shape(Config) ->
    #{cpp := Cpp, cpp_ref := CppRef, fake_ref := FakeRef} = Session = connect(Config),
    replay(Session, "03_heartbeat_empty"),
    await_replicas(Cpp, #{element(1, FakeRef) => up}),
    {ok, Pid, PhxRef} = track_cpp(Cpp, <<"room:1">>, <<"carol">>, #{device => <<"cpp">>}),
    Ref = make_ref(),
    Request = {pub, transfer_req, Ref, FakeRef, {FakeRef, #{FakeRef => 0, CppRef => 0}}},
    send_from_fake(Session, {?ADAPTER, Cpp}, forward(Request)),
    {adapter, {forward_to_local, _, {pub, transfer_ack, Ref, CppRef, State}, _} = Ack} =
        ?AWAIT({adapter, {forward_to_local, _, {pub, transfer_ack, Ref, _, _}, _}}, ?TIMEOUT),
    check_adapter_message(Cpp, Ack),
    ct:log("transfer_ack from the C++ node:~n~p", [Ack]),
    Values = case State of
                 {#{mode := normal}, Map} -> Map;
                 #{mode := delta, values := Map} -> Map
             end,
    ?assertEqual([{Pid, <<"room:1">>, <<"carol">>, #{device => <<"cpp">>, phx_ref => PhxRef}}],
                 maps:values(Values)),
    no_unexpected_messages(Session).

%% Golden 10: a Phoenix shard leaving gracefully; the C++ node drops its
%% replica and presences at once.
golden_graceful_permdown_drops_replica(Config) ->
    #{cpp := Cpp, fake_ref := FakeRef} = Session = connect(Config),
    replay(Session, "03_heartbeat_empty"),
    replay(Session, "04_heartbeat_delta_3_joins"),
    await(fun() -> length(cpp_list(Cpp, <<"room:1">>)) == 2 end, ?TIMEOUT, "04 merged"),
    replay(Session, "10_graceful_permdown"),
    await(fun() -> cpp_list(Cpp, <<"room:1">>) == [] end, 1000, "presences dropped"),
    ?assertEqual([], cpp_list(Cpp, <<"room:2">>)),
    ?assertNot(maps:is_key(element(1, FakeRef), cpp_replicas(Cpp))),
    no_unexpected_messages(Session).

%% With permdown_on_shutdown, SIGTERM makes the C++ node broadcast
%% {pub, graceful_permdown, Ref} before it exits.
sigterm_sends_graceful_permdown(Config) ->
    #{cpp := Cpp, cpp_ref := CppRef} = Session = connect(Config, ",permdown_on_shutdown=true"),
    replay(Session, "03_heartbeat_empty"),
    get(cpp_owner) ! {signal, "TERM", self()},
    {adapter, Message} =
        ?AWAIT({adapter, {forward_to_local, _, {pub, graceful_permdown, _}, _}}, ?TIMEOUT),
    ?assertEqual({forward_to_local, ?SHARD_TOPIC, {pub, graceful_permdown, CppRef},
                  'Elixir.Phoenix.PubSub'},
                 Message),
    [check_adapter_message(Cpp, M) || {adapter, M} <- drain()],
    ok.

%%% The session with the C++ node

connect(Config) ->
    connect(Config, "").

%% Starts the C++ node connected to the fake peer, plays pg as Phoenix's
%% scope does (golden 01 and 02 rewritten) and waits for the C++ node's
%% first heartbeat. Returns the session: the nodes, the C++ scope, adapter
%% and replica ref, the fake node's replica ref and pid mapping.
connect(Config, ExtraTrackerOptions) ->
    Fake = ?config(fake, Config),
    Cpp = start_cpp(Config, Fake, ExtraTrackerOptions),
    {scope, {discover, CppScope} = Discover} = ?AWAIT({scope, {discover, _}}, ?TIMEOUT),
    check_scope_message(Cpp, Discover),
    Session0 = #{config => Config, cpp => Cpp, fake => Fake,
                 fake_ref => {Fake, ?GOLDEN_VSN}, vsn_map => #{},
                 pids => golden_pids(Config, Fake)},
    send_from_fake(Session0, CppScope,
                   rewrite(golden(Config, "01_pg_sync_from_phoenix"), Session0)),
    send_from_fake(Session0, CppScope,
                   rewrite(golden(Config, "02_pg_discover_from_phoenix"), Session0)),
    {scope, {'$gen_cast', {sync, CppScope, Groups}} = Sync} =
        ?AWAIT({scope, {'$gen_cast', {sync, _, _}}}, ?TIMEOUT),
    check_scope_message(Cpp, Sync),
    CppAdapter = case lists:keyfind(?ADAPTER, 1, Groups) of
                     {?ADAPTER, [Pid]} -> Pid;
                     _ -> await_join(Cpp)
                 end,
    {adapter, Heartbeat} =
        ?AWAIT({adapter, {forward_to_local, _, {pub, heartbeat, _, _, _}, _}}, ?TIMEOUT),
    check_adapter_message(Cpp, Heartbeat),
    {forward_to_local, _, {pub, heartbeat, CppRef, _, _}, _} = Heartbeat,
    Session0#{cpp_scope => CppScope, cpp_adapter => CppAdapter, cpp_ref => CppRef}.

await_join(Cpp) ->
    {scope, {join, _, ?ADAPTER, Pids} = Join} = ?AWAIT({scope, {join, _, ?ADAPTER, _}}, ?TIMEOUT),
    check_scope_message(Cpp, Join),
    hd(lists:flatten([Pids])).

%% Sends the golden message Name, rewritten for the session, to the C++
%% node as Phoenix would: a broadcast to its adapter pid, or for a
%% transfer_ack a direct broadcast to its registered adapter. Returns the
%% rewritten message.
replay(Session, Name) ->
    #{config := Config, cpp := Cpp, cpp_adapter := CppAdapter} = Session,
    Message = rewrite(golden(Config, Name), Session),
    To = case Message of
             {forward_to_local, _, {pub, transfer_ack, _, _, _}, _} -> {?ADAPTER, Cpp};
             _ -> CppAdapter
         end,
    send_from_fake(Session, To, Message),
    Message.

await_transfer_req(#{cpp := Cpp, cpp_ref := CppRef}) ->
    {adapter, Request} =
        ?AWAIT({adapter, {forward_to_local, _, {pub, transfer_req, _, _, _}, _}}, ?TIMEOUT),
    check_adapter_message(Cpp, Request),
    {forward_to_local, _, {pub, transfer_req, Ref, CppRef, {CppRef, _}}, _} = Request,
    Ref.

%% The next heartbeat of the C++ node that carries a delta.
await_delta_heartbeat(#{cpp := Cpp}) ->
    {adapter, Heartbeat} =
        ?AWAIT({adapter, {forward_to_local, _, {pub, heartbeat, _, #{}, _}, _}}, ?TIMEOUT),
    check_adapter_message(Cpp, Heartbeat),
    {forward_to_local, _, {pub, heartbeat, _, Delta, _}, _} = Heartbeat,
    Delta.

%% Everything the fake received so far must be well formed.
no_unexpected_messages(Session) ->
    no_unexpected_messages(Session, []).

%% ... and none of the shard messages named in Forbidden (e.g. transfer_req,
%% which a replica whose clock dominates every clock it heard never sends)
%% may be among them.
no_unexpected_messages(#{cpp := Cpp}, Forbidden) ->
    timer:sleep(300),
    [case Received of
         {scope, M} ->
             check_scope_message(Cpp, M);
         {adapter, {forward_to_local, _, Inner, _} = M} ->
             check_adapter_message(Cpp, M),
             lists:member(element(2, Inner), Forbidden) andalso ct:fail({unexpected, M});
         {adapter, M} ->
             check_adapter_message(Cpp, M)
     end || Received <- drain()],
    ok.

%%% What Phoenix pattern-matches

%% Messages a BEAM pg scope accepts from a peer scope.
check_scope_message(Cpp, Message) ->
    Ok = case Message of
             {discover, Scope} -> is_pid_of(Cpp, Scope);
             {'$gen_cast', {sync, Scope, Groups}} ->
                 is_pid_of(Cpp, Scope) andalso is_list(Groups) andalso
                     lists:all(fun({_Group, Pids}) -> are_pids_of(Cpp, Pids);
                                  (_) -> false
                               end, Groups);
             {join, Scope, _Group, Pids} ->
                 is_pid_of(Cpp, Scope) andalso are_pids_of(Cpp, lists:flatten([Pids]));
             {leave, Scope, Pids, Groups} ->
                 is_pid_of(Cpp, Scope) andalso are_pids_of(Cpp, lists:flatten([Pids]))
                     andalso is_list(Groups);
             _ -> false
         end,
    Ok orelse ct:fail({bad_pg_message, Message}).

%% Messages a PG2 adapter worker forwards to a tracker shard, with the
%% shard's clauses for each.
check_adapter_message(Cpp, Message) ->
    case Message of
        {forward_to_local, ?SHARD_TOPIC, Inner, 'Elixir.Phoenix.PubSub'} ->
            check_shard_message(Cpp, Inner);
        _ ->
            ct:fail({bad_forward_to_local, Message})
    end.

check_shard_message(Cpp, {pub, heartbeat, {Cpp, _} = Ref, Delta, {Ref, Context}}) ->
    check_replica_ref(Ref),
    check_context(Context),
    case Delta of
        empty -> ok;
        _ -> check_state(Delta, delta)
    end;
check_shard_message(Cpp, {pub, transfer_req, Ref, {Cpp, _} = Replica, {Replica, Context}})
  when is_reference(Ref) ->
    check_replica_ref(Replica),
    check_context(Context);
check_shard_message(Cpp, {pub, transfer_ack, Ref, {Cpp, _} = Replica, State})
  when is_reference(Ref) ->
    check_replica_ref(Replica),
    case State of
        {Normal, Values} -> check_state(Normal, normal), check_values(Values);
        Delta -> check_state(Delta, delta)
    end;
check_shard_message(Cpp, {pub, graceful_permdown, {Cpp, _} = Ref}) ->
    check_replica_ref(Ref);
check_shard_message(_Cpp, Other) ->
    ct:fail({bad_shard_message, Other}).

%% A Phoenix.Tracker.State struct: all nine fields and nothing else. A delta
%% carries its values; a state sent whole has values nil (they travel beside
%% it) and mode normal.
check_state(State, Mode) ->
    Fields = ['__struct__', clouds, context, delta, mode, pids, range, replica, replicas, values],
    ?assertEqual(Fields, lists:sort(maps:keys(State))),
    #{'__struct__' := ?STATE, mode := Mode, replica := Replica, context := Context,
      clouds := Clouds, delta := unset, pids := nil, replicas := Replicas,
      range := {Start, End}, values := Values} = State,
    check_replica_ref(Replica),
    check_context(Context),
    check_context(Start),
    check_context(End),
    ?assert(is_map(Replicas)),
    [check_replica_ref(R) || R <- maps:keys(Replicas)],
    [?assert(lists:member(S, [up, down])) || S <- maps:values(Replicas)],
    maps:foreach(fun(Name, Cloud) -> check_replica_ref(Name), check_mapset(Cloud) end, Clouds),
    case Mode of
        delta -> check_values(Values);
        normal -> ?assertEqual(nil, Values)
    end.

check_values(Values) ->
    ?assert(is_map(Values)),
    maps:foreach(fun({Replica, Clock}, {Pid, Topic, _Key, Meta}) ->
                         check_replica_ref(Replica),
                         ?assert(is_integer(Clock) andalso Clock > 0),
                         ?assert(is_pid(Pid)),
                         ?assert(is_binary(Topic)),
                         ?assert(is_map(Meta)),
                         ?assert(is_binary(maps:get(phx_ref, Meta)));
                    (Tag, Value) ->
                         ct:fail({bad_value, Tag, Value})
                 end,
                 Values).

%% MapSet as Elixir 1.14 builds it: the elements are the keys of map,
%% each with the value [].
check_mapset(Set) ->
    ?assertMatch(#{'__struct__' := 'Elixir.MapSet', map := #{}, version := 2}, Set),
    ?assertEqual(3, map_size(Set)),
    [?assertEqual([], V) || V <- maps:values(maps:get(map, Set))],
    [?assertMatch({{_, _}, C} when is_integer(C), Tag) || Tag <- maps:keys(maps:get(map, Set))],
    ok.

mapset_elements(#{map := Map}) ->
    maps:keys(Map).

check_context(Context) ->
    ?assert(is_map(Context)),
    maps:foreach(fun(Replica, Clock) ->
                         check_replica_ref(Replica),
                         ?assert(is_integer(Clock) andalso Clock >= 0)
                 end, Context).

check_replica_ref({Name, Vsn}) when is_atom(Name), is_integer(Vsn) -> true;
check_replica_ref(Other) -> ct:fail({bad_replica_ref, Other}).

is_pid_of(Node, Pid) ->
    is_pid(Pid) andalso node(Pid) == Node.

are_pids_of(Node, Pids) ->
    is_list(Pids) andalso lists:all(fun(P) -> is_pid_of(Node, P) end, Pids).

%%% What the golden deltas imply

%% The presences a replica holds as #{Tag => {Pid, Topic, Key, Meta}}, after
%% a delta (or the values of a transfer): tags the delta has seen (its
%% clouds) but no longer holds are removed, its values added.
apply_delta(Model, {#{}, Values}) ->
    maps:merge(Model, Values);
apply_delta(Model, #{clouds := Clouds, values := Values}) ->
    Seen = lists:append([mapset_elements(Cloud) || Cloud <- maps:values(Clouds)]),
    maps:merge(maps:without(Seen, Model), Values).

heartbeat_delta({forward_to_local, _, {pub, heartbeat, _, Delta, _}, _}) ->
    Delta.

ack_state({forward_to_local, _, {pub, transfer_ack, _, _, State}, _}) ->
    State.

model_list(Model, Topic) ->
    lists:sort([{Key, Meta} || {_, T, Key, Meta} <- maps:values(Model), T == Topic]).

await_lists_equal(Cpp, Model, Topics) ->
    Expected = [{T, model_list(Model, T)} || T <- Topics],
    Actual = fun() -> [{T, cpp_list(Cpp, T)} || T <- Topics] end,
    case wait_for(fun() -> Actual() == Expected end, ?TIMEOUT) of
        true -> ok;
        false -> ct:fail({lists_differ, {expected, Expected}, {actual, Actual()}})
    end.

%%% Golden captures, rewritten for the fake node

golden(Config, Name) ->
    {ok, Binary} = file:read_file(filename:join(?config(golden, Config), Name ++ ".etf")),
    binary_to_term(Binary).

%% #{GoldenPid => Pid}: a live process of the fake node for every pid in
%% the golden captures.
golden_pids(Config, Fake) ->
    Files = filelib:wildcard(filename:join(?config(golden, Config), "*.etf")),
    Pids = lists:usort(lists:append([pids_in(golden(Config, filename:basename(F, ".etf")))
                                     || F <- Files])),
    maps:from_list([{Pid, erpc:call(Fake, erlang, spawn, [timer, sleep, [infinity]])}
                    || Pid <- Pids]).

pids_in(Term) when is_pid(Term) -> [Term];
pids_in(Term) when is_tuple(Term) -> pids_in(tuple_to_list(Term));
pids_in(Term) when is_list(Term) -> lists:append([pids_in(T) || T <- Term]);
pids_in(Term) when is_map(Term) -> pids_in(maps:to_list(Term));
pids_in(_) -> [].

%% The golden node becomes the fake node (with the session's vsn mapping),
%% the golden peer's replica ref the C++ node's, golden pids the fake's
%% pids (the scope and adapter pids of 01 and 02 the fake scope and
%% adapter), and references the session's ref.
rewrite(Term, Session) ->
    #{fake := Fake, pids := Pids, config := Config, vsn_map := VsnMap} = Session,
    Special = #{scope => ?config(fake_scope, Config), adapter => ?config(fake_adapter, Config)},
    rewrite(Term, Session, Fake, VsnMap, Pids, Special).

rewrite({?GOLDEN_NODE, Vsn}, _Session, Fake, VsnMap, _, _) when is_integer(Vsn) ->
    {Fake, maps:get(Vsn, VsnMap, Vsn)};
rewrite(?GOLDEN_PEER_REF, Session, _, _, _, _) ->
    maps:get(cpp_ref, Session);
rewrite({'$gen_cast', {sync, Scope, [{?ADAPTER, [_]}]}}, _, _, _, _, Special) when is_pid(Scope) ->
    #{scope := FakeScope, adapter := FakeAdapter} = Special,
    {'$gen_cast', {sync, FakeScope, [{?ADAPTER, [FakeAdapter]}]}};
rewrite({discover, Scope}, _, _, _, _, #{scope := FakeScope}) when is_pid(Scope) ->
    {discover, FakeScope};
rewrite(Term, _, _, _, Pids, _) when is_pid(Term) ->
    maps:get(Term, Pids);
rewrite(Term, Session, _, _, _, _) when is_reference(Term) ->
    maps:get(ref, Session);
rewrite(Term, S, F, V, P, X) when is_tuple(Term) ->
    list_to_tuple([rewrite(E, S, F, V, P, X) || E <- tuple_to_list(Term)]);
rewrite(Term, S, F, V, P, X) when is_list(Term) ->
    [rewrite(E, S, F, V, P, X) || E <- Term];
rewrite(Term, S, F, V, P, X) when is_map(Term) ->
    maps:from_list([{rewrite(K, S, F, V, P, X), rewrite(E, S, F, V, P, X)}
                    || {K, E} <- maps:to_list(Term)]);
rewrite(?GOLDEN_NODE, _, Fake, _, _, _) ->
    Fake;
rewrite(Term, _, _, _, _, _) ->
    Term.

%%% The fake Phoenix node

%% A process of the fake node registered as Name that forwards each message
%% to the case as {Tag, Message}.
start_forwarder(Node, Name, Tag) ->
    To = self(),
    Pid = erpc:call(Node, erlang, spawn, [fun() -> forward_loop(To, Tag) end]),
    true = erpc:call(Node, erlang, register, [Name, Pid]),
    Pid.

forward_loop(To, Tag) ->
    receive Message -> To ! {Tag, Message} end,
    forward_loop(To, Tag).

send_from_fake(#{fake := Fake}, To, Message) ->
    erpc:call(Fake, erlang, send, [To, Message]).

forward(Message) ->
    {forward_to_local, ?SHARD_TOPIC, Message, 'Elixir.Phoenix.PubSub'}.

%%% The C++ node

start_cpp(Config, Fake, ExtraTrackerOptions) ->
    Name = ?config(cpp_name, Config),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Node = list_to_atom(Name ++ "@" ++ Host),
    %% The fake node heartbeats only when a case replays one: long down
    %% periods keep it up in between.
    Tracker = "T,pubsub_server=P,broadcast_period=100,max_silent_periods=3,"
              "down_period=60000,permdown_period=120000,log_level=info" ++ ExtraTrackerOptions,
    Args = ["--name", Name, "--cookie", atom_to_list(erlang:get_cookie()), "--connect",
            atom_to_list(Fake), "--pubsub", "P", "--tracker", Tracker, "--control"],
    Log = filename:join(?config(priv_dir, Config), Name ++ ".log"),
    put(cpp_owner, start_port_owner(?config(binary, Config), Args, Log)),
    ct:log("started presence_node ~s (output in ~s)", [lists:join(" ", Args), Log]),
    case wait_for(fun() -> is_map(cpp_replicas(Node)) end, 10000) of
        true -> Node;
        false -> ct:fail({control_process_not_answering, Node})
    end.

%% The owner of presence_node's port: writes its output to Log, sends it
%% signals, and kills it when the case's process (which also runs
%% end_per_testcase) ends.
start_port_owner(Binary, Args, Log) ->
    Case = self(),
    spawn(fun() ->
              Port = open_port({spawn_executable, Binary},
                               [{args, Args}, exit_status, stderr_to_stdout, binary,
                                {line, 4096}]),
              {os_pid, OsPid} = erlang:port_info(Port, os_pid),
              {ok, File} = file:open(Log, [append, raw]),
              monitor(process, Case),
              port_owner_loop(Port, OsPid, File)
          end).

port_owner_loop(Port, OsPid, File) ->
    receive
        {Port, {data, {_, Line}}} ->
            file:write(File, [Line, $\n]),
            port_owner_loop(Port, OsPid, File);
        {Port, {exit_status, Status}} ->
            file:write(File, io_lib:format("== exit status ~b~n", [Status]));
        {signal, Signal, _From} ->
            os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid)),
            port_owner_loop(Port, OsPid, File);
        {'DOWN', _, process, _, _} ->
            os:cmd("kill -KILL " ++ integer_to_list(OsPid))
    end.

cpp_call(Node, Request) ->
    gen_server:call({presence, Node}, Request, ?TIMEOUT).

track_cpp(Cpp, Topic, Key, Meta) ->
    cpp_call(Cpp, {track, ?TRACKER, Topic, Key, Meta}).

cpp_list(Cpp, Topic) ->
    lists:sort(cpp_call(Cpp, {list, ?TRACKER, Topic})).

%% The replica table ([{{Node, Vsn}, Status}] on the wire) as
%% #{Node => {Status, Vsn}}; anything else when the node does not answer yet.
cpp_replicas(Node) ->
    case catch cpp_call(Node, {replicas, ?TRACKER}) of
        Replicas when is_list(Replicas) ->
            maps:from_list([{Name, {Status, Vsn}} || {{Name, Vsn}, Status} <- Replicas]);
        Other ->
            {no_answer, Other}
    end.

await_replicas(Cpp, Expected) ->
    await(fun() -> maps:map(fun(_, {S, _}) -> S end, cpp_replicas(Cpp)) == Expected end,
          ?TIMEOUT, io_lib:format("replicas ~p", [Expected])).

%%% Waiting

%% Messages from the fake node are kept, in arrival order, in an inbox from
%% which cases take the ones they wait for.

%% With a predicate of one argument: takes the first message (received or
%% arriving within Timeout ms) matching it. With one of none: calls it
%% until it returns true.
await(Pred, Timeout, What) when is_function(Pred, 0) ->
    wait_for(Pred, Timeout) orelse ct:fail({timeout, lists:flatten(What)});
await(Pred, Timeout, What) ->
    take(Pred, erlang:monotonic_time(millisecond) + Timeout, What).

take(Pred, Deadline, What) ->
    Inbox = inbox(),
    case lists:splitwith(fun(M) -> not Pred(M) end, Inbox) of
        {Before, [Message | After]} ->
            put(inbox, Before ++ After),
            Message;
        {_, []} ->
            receive
                Message ->
                    put(inbox, Inbox ++ [Message]),
                    take(Pred, Deadline, What)
            after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
                ct:fail({no_message, lists:flatten(What), {received, Inbox}})
            end
    end.

%% Every message not taken yet.
drain() ->
    Messages = inbox() ++ receive_all(),
    put(inbox, []),
    Messages.

receive_all() ->
    receive M -> [M | receive_all()] after 0 -> [] end.

inbox() ->
    case get(inbox) of
        undefined -> [];
        Inbox -> Inbox
    end.

wait_for(Pred, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until(Pred, Deadline).

wait_until(Pred, Deadline) ->
    case catch Pred() of
        true -> true;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> false;
                false -> timer:sleep(10), wait_until(Pred, Deadline)
            end
    end.
