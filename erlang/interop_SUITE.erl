%% The C++ node as a replica beside real Phoenix.Tracker nodes.
%%
%% Three Elixir peer nodes run Phoenix.PubSub and real Phoenix.Tracker pools
%% (the phoenix_pubsub ebin named by PHOENIX_PUBSUB_EBIN); each case starts the
%% real presence_node beside them with the same cookie and drives both sides:
%% the Elixir side with erpc, the C++ side through its control process
%% `presence`. The cases follow phoenix_pubsub's shard replication tests with
%% the C++ node as one of the replicas, in both directions where the C++ node
%% can be observed, and add pools, two trackers, a large transfer, timing,
%% and what happens when the C++ process is killed, stopped or restarted.
%%
%% Elixir diffs reach the case through interop_SUITE_data/interop_phoenix.erl
%% (the tracker callback module loaded on every peer) as events; so do the
%% shards' replica events and the messages a spy sees on a shard's topic.
-module(interop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([heartbeats/1, unseen_node_triggers_up_and_transfer/1,
         old_pids_permdowned_when_node_returns_with_new_vsn/1,
         tempdown_then_permdown_of_elixir_replica/1, tempdown_of_cpp_replica/1,
         joins_and_leaves_reported_as_diffs/1, untrack_forms/1,
         update_sends_phx_ref_prev/1, duplicate_tracking/1,
         graceful_permdown_from_elixir/1, graceful_permdown_from_cpp_on_sigterm/1,
         rolling_node_update/1, pool_of_four_shards/1, two_trackers_at_once/1,
         late_cpp_node_receives_10k_presences_by_transfer/1,
         changes_propagate_within_one_broadcast_period/1,
         killed_cpp_node_leaves_after_down_period_and_restarts/1]).

-define(PUBSUB, 'Elixir.MyApp.PubSub').
%% A second PubSub server with a pool of four adapter groups, as Phoenix's
%% own cluster tests run it.
-define(PUBSUB4, 'Elixir.MyApp.PubSub4').
-define(SCOPE, 'Elixir.Phoenix.PubSub').
-define(TRACKER, 'Elixir.Phoenix.Tracker').
-define(TOPIC, <<"room:lobby">>).
-define(TIMEOUT, 5000).

%% Options of every tracker unless a case says otherwise: short periods so
%% that downs and permdowns happen within a case.
-define(TRACKER_OPTIONS,
        #{broadcast_period => 200, max_silent_periods => 2, down_period => 1600,
          permdown_period => 4000, pool_size => 1}).

%% The first event matching Pattern (already received or arriving within
%% Timeout ms); variables bound before the call are matched, not rebound.
-define(AWAIT(Pattern, Timeout),
        await(fun(Event__) ->
                 case Event__ of
                     Pattern -> true;
                     _ -> false
                 end
              end,
              Timeout, ??Pattern)).
%% Fails when an event matching Pattern arrives within Window ms.
-define(REFUTE(Pattern, Window),
        refute(fun(Event__) ->
                  case Event__ of
                      Pattern -> true;
                      _ -> false
                  end
               end,
               Window, ??Pattern)).

suite() ->
    [{timetrap, {minutes, 4}}].

all() ->
    [heartbeats, unseen_node_triggers_up_and_transfer,
     old_pids_permdowned_when_node_returns_with_new_vsn,
     tempdown_then_permdown_of_elixir_replica, tempdown_of_cpp_replica,
     joins_and_leaves_reported_as_diffs, untrack_forms, update_sends_phx_ref_prev,
     duplicate_tracking, graceful_permdown_from_elixir, graceful_permdown_from_cpp_on_sigterm,
     rolling_node_update, pool_of_four_shards, two_trackers_at_once,
     late_cpp_node_receives_10k_presences_by_transfer,
     changes_propagate_within_one_broadcast_period,
     killed_cpp_node_leaves_after_down_period_and_restarts].

%%% Suite and case setup

init_per_suite(Config) ->
    case os:getenv("PHOENIX_PUBSUB_EBIN", "") of
        "" ->
            {skip, "PHOENIX_PUBSUB_EBIN is not set: interop with a real Phoenix.Tracker skipped"};
        PhoenixEbin ->
            start_cluster(PhoenixEbin, Config)
    end.

end_per_suite(Config) ->
    [peer:stop(Peer) || Peer <- ?config(peer_pids, Config)],
    ?config(keeper, Config) ! stop,
    ok.

init_per_testcase(Case, Config) ->
    catch unregister(interop_events),
    true = register(interop_events, self()),
    erase(events),
    Tracker = list_to_atom("Elixir.Interop." ++ camel_case(atom_to_list(Case))),
    CppName = "cpp_" ++ atom_to_list(Case) ++ "_" ++ os:getpid(),
    [{tracker, Tracker}, {cpp_name, CppName} | Config].

end_per_testcase(_Case, Config) ->
    stop_all_cpp_nodes(),
    [ok = erpc:call(Peer, interop_phoenix, stop_tracker, [T])
     || Peer <- peers(Config), {tracker, T} <- ets:lookup(interop_state, tracker)],
    ets:delete(interop_state, tracker),
    ok.

start_cluster(PhoenixEbin, Config) ->
    Binary = filename:join([os:getenv("PRESENCE_BUILD_DIR", ""), "cnode", "presence_node"]),
    ElixirLib = os:getenv("PRESENCE_ELIXIR_LIB", ""),
    case {filelib:is_dir(ElixirLib), filelib:is_regular(Binary)} of
        {false, _} ->
            {fail, "PRESENCE_ELIXIR_LIB does not name Elixir's lib directory: "
                   "install Elixir and run the suite through scripts/ct"};
        {_, false} ->
            {fail, "presence_node is not built: " ++ Binary};
        {true, true} ->
            start_peers(Binary, PhoenixEbin, ElixirLib, Config)
    end.

start_peers(Binary, PhoenixEbin, ElixirLib, Config) ->
    Keeper = start_keeper(),
    CodePaths = [PhoenixEbin | filelib:wildcard(filename:join(ElixirLib, "*/ebin"))],
    {ok, Module, Beam} =
        compile:file(filename:join(?config(data_dir, Config), "interop_phoenix.erl"),
                     [binary, return_errors]),
    Started = [start_peer(Prefix, CodePaths, Module, Beam)
               || Prefix <- ["phx_a", "phx_b", "phx_c"]],
    Peers = [Node || {_, Node} <- Started],
    [true = erpc:call(A, net_kernel, connect_node, [B]) || A <- Peers, B <- Peers, A < B],
    [{binary, Binary}, {keeper, Keeper}, {peers, Peers}, {peer_pids, [P || {P, _} <- Started]}
     | Config].

start_peer(Prefix, CodePaths, Module, Beam) ->
    Args = ["-setcookie", atom_to_list(erlang:get_cookie()), "-pa" | CodePaths],
    {ok, Peer, Node} =
        peer:start(#{name => peer:random_name(Prefix), args => Args, wait_boot => 30000}),
    {module, Module} = erpc:call(Node, code, load_binary, [Module, "interop_phoenix.erl", Beam]),
    ok = erpc:call(Node, interop_phoenix, start_pubsub, [[{name, ?PUBSUB}]]),
    ok = erpc:call(Node, interop_phoenix, start_pubsub, [[{name, ?PUBSUB4}, {pool_size, 4}]]),
    {Peer, Node}.

%% A process owning the suite's table of the C++ nodes ({cpp, Node, Owner})
%% and Elixir trackers ({tracker, Name}) a case started, which outlives the
%% processes of single cases.
start_keeper() ->
    Parent = self(),
    Keeper = spawn(fun() ->
                       ets:new(interop_state, [named_table, public, bag]),
                       Parent ! {self(), ready},
                       receive stop -> ok end
                   end),
    receive {Keeper, ready} -> Keeper end.

%%% Cases

%% Phoenix: "heartbeats". Each side hears the other's heartbeats and marks it up.
heartbeats(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    spy_on_shard(A, T, 0),
    Cpp = start_cpp(Config, #{}),
    ?AWAIT({replica, replica_up, A, Cpp}, ?TIMEOUT),
    ?AWAIT({replica, replica_up, B, Cpp}, ?TIMEOUT),
    await_cpp_replicas(Cpp, T, #{A => up, B => up}),
    [begin
         flush_events(),
         Heartbeat = await_heartbeat(A, Cpp),
         assert_heartbeat_shape(Cpp, Heartbeat)
     end || _ <- [1, 2, 3]].

%% Phoenix: "gossip from unseen node triggers nodeup and transfer request".
%% A C++ node joining after the presences' deltas went out asks for a
%% transfer and gets them; an Elixir tracker starting late asks the C++
%% node and gets its presences.
unseen_node_triggers_up_and_transfer(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A], T, ?TRACKER_OPTIONS),
    spy_on_shard(A, T, 0),
    track_elixir(A, T, ?TOPIC, <<"elixir1">>, #{}),
    ?AWAIT({spy, A, _, {pub, heartbeat, {A, _}, #{}, _}}, ?TIMEOUT),
    Cpp = start_cpp(Config, #{}),
    ?AWAIT({replica, replica_up, A, Cpp}, ?TIMEOUT),
    ?AWAIT({spy, A, _, {pub, transfer_req, _, {Cpp, _}, {{Cpp, _}, _}}}, ?TIMEOUT),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"elixir1">>] end),

    {ok, _, _} = track_cpp(Cpp, T, ?TOPIC, <<"cpp1">>, #{from => <<"cpp">>}),
    ?AWAIT({spy, A, _, {pub, heartbeat, {Cpp, _}, #{}, _}}, ?TIMEOUT),
    spy_on_shard(B, T, 0),
    start_elixir_trackers(Config, [B], T, ?TRACKER_OPTIONS),
    ?AWAIT({replica, replica_up, B, Cpp}, ?TIMEOUT),
    Ack = ?AWAIT({spy, B, _, {pub, transfer_ack, _, {Cpp, _}, _}}, ?TIMEOUT),
    ct:log("transfer_ack from the C++ node to ~p:~n~p", [B, Ack]),
    ?AWAIT({join, B, T, ?TOPIC, <<"cpp1">>, #{from := <<"cpp">>}, _}, ?TIMEOUT),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]).

%% Phoenix: "old pids from a node are permdowned when the node comes back
%% up", with each side restarting.
old_pids_permdowned_when_node_returns_with_new_vsn(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A, B]),
    {ok, OldPid, _} = track_cpp(Cpp, T, ?TOPIC, <<"cpp">>, #{}),
    [?AWAIT({join, Peer, T, ?TOPIC, <<"cpp">>, _, _}, ?TIMEOUT) || Peer <- [A, B]],
    OldVsn = elixir_replica_vsn(A, T, Cpp),

    %% The C++ node comes back (same name, new vsn) before down_period.
    kill_cpp(Cpp),
    Cpp = start_cpp(Config, #{}),
    [begin
         ?AWAIT({replica, replica_permdown, Peer, Cpp}, ?TIMEOUT),
         ?AWAIT({leave, Peer, T, ?TOPIC, <<"cpp">>, _, _}, ?TIMEOUT)
     end || Peer <- [A, B]],
    {ok, NewPid, _} = track_cpp(Cpp, T, ?TOPIC, <<"cpp">>, #{}),
    [?AWAIT({join, Peer, T, ?TOPIC, <<"cpp">>, _, _}, ?TIMEOUT) || Peer <- [A, B]],
    ?assertNotEqual(OldVsn, elixir_replica_vsn(A, T, Cpp)),
    [begin
         Values = elixir_values(Peer, T, 0),
         ?assertEqual([], [V || {_, _, {Ref, _}} = V <- Values, Ref == {Cpp, OldVsn}]),
         ?assertEqual([], [V || {{_, Pid, _}, _, _} = V <- Values, Pid == OldPid]),
         ?assertMatch([_], [V || {{_, Pid, _}, _, _} = V <- Values, Pid == NewPid])
     end || Peer <- [A, B]],

    %% An Elixir shard comes back (new vsn, and the processes it tracked are
    %% killed with it): the C++ node drops the old presences.
    track_elixir(A, T, ?TOPIC, <<"elixir">>, #{}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> lists:member(<<"elixir">>, keys(List)) end),
    ok = erpc:call(A, interop_phoenix, kill_shard, [T, 0]),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> not lists:member(<<"elixir">>, keys(List)) end),
    ElixirPid = track_elixir(A, T, ?TOPIC, <<"elixir-back">>, #{}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"cpp">>, <<"elixir-back">>] end),
    ?assertEqual([], cpp_call(Cpp, {get_by_key, T, ?TOPIC, <<"elixir">>})),
    ?assertMatch([{ElixirPid, _}], cpp_call(Cpp, {get_by_key, T, ?TOPIC, <<"elixir-back">>})),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]).

%% Phoenix: "tempdowns with nodeups of new vsn, and permdowns", as the C++
%% node sees an Elixir replica.
tempdown_then_permdown_of_elixir_replica(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A, B]),
    track_elixir(A, T, ?TOPIC, <<"a">>, #{}),
    track_elixir(B, T, ?TOPIC, <<"b">>, #{}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"a">>, <<"b">>] end),
    #{A := {up, VsnBefore}} = cpp_replicas(Cpp, T),

    %% Netsplit: A's shard is silent, then speaks again with the same vsn.
    ok = erpc:call(A, interop_phoenix, suspend_shard, [T, 0]),
    await_cpp_replicas(Cpp, T, #{A => down, B => up}),
    ?assertEqual([<<"b">>], keys(cpp_list(Cpp, T, ?TOPIC))),
    ok = erpc:call(A, interop_phoenix, resume_shard, [T, 0]),
    await_cpp_replicas(Cpp, T, #{A => up, B => up}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"a">>, <<"b">>] end),
    ?assertMatch(#{A := {up, VsnBefore}}, cpp_replicas(Cpp, T)),

    %% Crash: down, then a new vsn comes up and the old presences are gone.
    stop_elixir_tracker(A, T),
    await_cpp_replicas(Cpp, T, #{A => down, B => up}),
    ?assertEqual([<<"b">>], keys(cpp_list(Cpp, T, ?TOPIC))),
    start_elixir_trackers(Config, [A], T, ?TRACKER_OPTIONS),
    track_elixir(A, T, ?TOPIC, <<"a-back">>, #{}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"a-back">>, <<"b">>] end),
    #{A := {up, VsnAfter}} = cpp_replicas(Cpp, T),
    ?assertNotEqual(VsnBefore, VsnAfter),

    %% Crash again and stay away: down, then permdown removes the entry.
    stop_elixir_tracker(A, T),
    await_cpp_replicas(Cpp, T, #{A => down, B => up}),
    ?assertEqual([<<"b">>], keys(cpp_list(Cpp, T, ?TOPIC))),
    await_cpp_replicas(Cpp, T, #{B => up}),
    ?assertEqual([<<"b">>], keys(cpp_list(Cpp, T, ?TOPIC))).

%% The same as an Elixir replica sees the C++ node: stopped (SIGSTOP) it goes
%% down and its presences leave; continued (SIGCONT) they join again.
tempdown_of_cpp_replica(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A, B]),
    {ok, _, _} = track_cpp(Cpp, T, ?TOPIC, <<"cpp">>, #{name => <<"c">>}),
    ?AWAIT({join, A, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, ?TIMEOUT),
    VsnBefore = elixir_replica_vsn(A, T, Cpp),

    signal_cpp(Cpp, "STOP"),
    ?AWAIT({replica, replica_down, A, Cpp}, ?TIMEOUT),
    ?AWAIT({leave, A, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, ?TIMEOUT),
    ?AWAIT({leave, B, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, ?TIMEOUT),
    ?assertEqual([], elixir_list(A, T, ?TOPIC)),
    signal_cpp(Cpp, "CONT"),
    ?AWAIT({replica, replica_up, A, Cpp}, ?TIMEOUT),
    ?AWAIT({join, A, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, ?TIMEOUT),
    ?AWAIT({join, B, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, ?TIMEOUT),
    ?assertEqual(VsnBefore, elixir_replica_vsn(A, T, Cpp)),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]),

    %% Gone for good: after permdown_period the replica is forgotten.
    signal_cpp(Cpp, "KILL"),
    ?AWAIT({replica, replica_down, A, Cpp}, ?TIMEOUT),
    ?AWAIT({replica, replica_permdown, A, Cpp}, 2 * maps:get(permdown_period, ?TRACKER_OPTIONS)),
    ?assertNot(is_map_key(Cpp, elixir_replicas(A, T))),
    ?assertEqual([], elixir_values(A, T, 0)).

%% Phoenix: "node detects and locally broadcasts presence_join/leave", with
%% joins and leaves on both sides.
joins_and_leaves_reported_as_diffs(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A, B]),

    %% C++ joins: Elixir nodes report them with the exact meta.
    {ok, Pid1, Ref1} = track_cpp(Cpp, T, ?TOPIC, <<"me">>, #{name => <<"me">>}),
    {ok, Pid2, _} = track_cpp(Cpp, T, ?TOPIC, <<"me2">>, #{name => <<"me2">>, n => 2}),
    [begin
         ?AWAIT({join, Peer, T, ?TOPIC, <<"me">>, #{name := <<"me">>, phx_ref := Ref1}, _},
                ?TIMEOUT),
         ?AWAIT({join, Peer, T, ?TOPIC, <<"me2">>, #{name := <<"me2">>, n := 2}, _}, ?TIMEOUT)
     end || Peer <- [A, B]],
    ?assertEqual([Pid1], [P || {P, _} <- elixir_get_by_key(A, T, ?TOPIC, <<"me">>)]),

    %% Elixir joins: the C++ node lists them with the exact meta.
    ElixirPid = track_elixir(A, T, ?TOPIC, <<"node1">>, #{name => <<"s1">>}),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]),
    ?assertMatch([{ElixirPid, #{name := <<"s1">>}}],
                 cpp_call(Cpp, {get_by_key, T, ?TOPIC, <<"node1">>})),

    %% A C++ presence process ending is a leave everywhere.
    exit(Pid2, kill),
    [?AWAIT({leave, Peer, T, ?TOPIC, <<"me2">>, #{name := <<"me2">>, n := 2}, _}, ?TIMEOUT)
     || Peer <- [A, B]],

    %% An Elixir presence process dying is a leave on the C++ node.
    ElixirPid ! stop,
    ?AWAIT({leave, B, T, ?TOPIC, <<"node1">>, #{name := <<"s1">>}, _}, ?TIMEOUT),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"me">>] end),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]).

%% Phoenix: "untrack with no tracked topic is a noop", "untrack with topic",
%% "untrack from all topics", through the control process.
untrack_forms(Config) ->
    T = ?config(tracker, Config),
    [A | _] = peers(Config),
    start_elixir_trackers(Config, [A], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A]),
    {ok, Pid, _} = track_cpp(Cpp, T, ?TOPIC, <<"user1">>, #{name => <<"user1">>}),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, <<"no:topic">>, <<"foo">>})),

    {ok, _} = cpp_call(Cpp, {track, T, Pid, <<"another:topic">>, <<"user2">>,
                             #{name => <<"user2">>}}),
    ?AWAIT({join, A, T, <<"another:topic">>, <<"user2">>, _, _}, ?TIMEOUT),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, ?TOPIC, <<"user1">>})),
    ?assertEqual([], cpp_list(Cpp, T, ?TOPIC)),
    ?assertMatch([{<<"user2">>, _}], cpp_list(Cpp, T, <<"another:topic">>)),
    ?AWAIT({leave, A, T, ?TOPIC, <<"user1">>, #{name := <<"user1">>}, _}, ?TIMEOUT),
    ?assertMatch([{<<"user2">>, _}], elixir_list(A, T, <<"another:topic">>)),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, <<"another:topic">>, <<"user2">>})),
    ?AWAIT({leave, A, T, <<"another:topic">>, <<"user2">>, _, _}, ?TIMEOUT),

    %% untrack/2: every presence of the pid.
    {ok, _} = cpp_call(Cpp, {track, T, Pid, ?TOPIC, <<"user1">>, #{}}),
    {ok, _} = cpp_call(Cpp, {track, T, Pid, <<"another:topic">>, <<"user2">>, #{}}),
    ?AWAIT({join, A, T, <<"another:topic">>, <<"user2">>, _, _}, ?TIMEOUT),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid})),
    ?assertEqual([], cpp_list(Cpp, T, ?TOPIC)),
    ?assertEqual([], cpp_list(Cpp, T, <<"another:topic">>)),
    ?AWAIT({leave, A, T, ?TOPIC, <<"user1">>, _, _}, ?TIMEOUT),
    ?AWAIT({leave, A, T, <<"another:topic">>, <<"user2">>, _, _}, ?TIMEOUT),
    ?assertEqual([], elixir_list(A, T, ?TOPIC)),
    ?assertEqual([], elixir_list(A, T, <<"another:topic">>)).

%% Phoenix: "updating presence sends join/leave and phx_ref_prev" and
%% "updating with no prior presence", each side updating.
update_sends_phx_ref_prev(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A, B]),

    {ok, Pid, Ref} = track_cpp(Cpp, T, ?TOPIC, <<"u1">>, #{name => <<"u1">>}),
    ?AWAIT({join, A, T, ?TOPIC, <<"u1">>, #{phx_ref := Ref}, _}, ?TIMEOUT),
    {ok, NewRef} = cpp_call(Cpp, {update, T, Pid, ?TOPIC, <<"u1">>, #{name => <<"u1-updated">>}}),
    ?assertNotEqual(Ref, NewRef),
    Updated = #{name => <<"u1-updated">>, phx_ref => NewRef, phx_ref_prev => Ref},
    ?assertEqual([{<<"u1">>, Updated}], cpp_list(Cpp, T, ?TOPIC)),
    [begin
         ?AWAIT({leave, Peer, T, ?TOPIC, <<"u1">>, #{name := <<"u1">>, phx_ref := Ref}, _},
                ?TIMEOUT),
         ?AWAIT({join, Peer, T, ?TOPIC, <<"u1">>, Updated, _}, ?TIMEOUT)
     end || Peer <- [A, B]],
    ?assertEqual({error, nopresence},
                 cpp_call(Cpp, {update, T, Pid, ?TOPIC, <<"nobody">>, #{}})),

    ElixirPid = track_elixir(A, T, ?TOPIC, <<"e1">>, #{name => <<"e1">>}),
    [{_, #{phx_ref := ElixirRef}}] = elixir_get_by_key(A, T, ?TOPIC, <<"e1">>),
    {ok, ElixirNewRef} =
        erpc:call(A, ?TRACKER, update, [T, ElixirPid, ?TOPIC, <<"e1">>, #{name => <<"e1-up">>}]),
    ElixirUpdated = #{name => <<"e1-up">>, phx_ref => ElixirNewRef, phx_ref_prev => ElixirRef},
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> lists:member({<<"e1">>, ElixirUpdated}, List) end),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]).

%% Phoenix: "duplicate tracking", answered as Phoenix answers it.
duplicate_tracking(Config) ->
    T = ?config(tracker, Config),
    [A | _] = peers(Config),
    start_elixir_trackers(Config, [A], T, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{}),
    await_connected(Cpp, T, [A]),
    {ok, Pid, _} = track_cpp(Cpp, T, ?TOPIC, <<"u1">>, #{}),
    ?assertEqual({error, {already_tracked, Pid, ?TOPIC, <<"u1">>}},
                 cpp_call(Cpp, {track, T, Pid, ?TOPIC, <<"u1">>, #{}})),
    ?assertMatch({ok, _}, cpp_call(Cpp, {track, T, Pid, <<"another:topic">>, <<"u1">>, #{}})),
    ?assertMatch({ok, _}, cpp_call(Cpp, {track, T, Pid, ?TOPIC, <<"anotherkey">>, #{}})),
    ?AWAIT({join, A, T, ?TOPIC, <<"anotherkey">>, _, _}, ?TIMEOUT),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, ?TOPIC, <<"u1">>})),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, <<"another:topic">>, <<"u1">>})),
    ?assertEqual(ok, cpp_call(Cpp, {untrack, T, Pid, ?TOPIC, <<"anotherkey">>})),
    await_same_lists(Cpp, [A], T, [?TOPIC, <<"another:topic">>]),
    ?assertEqual([], elixir_list(A, T, ?TOPIC)),

    %% The same sequence against Phoenix gives the same shapes.
    ElixirPid = erpc:call(A, interop_phoenix, spawn_presence, []),
    {ok, _} = erpc:call(A, ?TRACKER, track, [T, ElixirPid, ?TOPIC, <<"u1">>, #{}]),
    ?assertEqual({error, {already_tracked, ElixirPid, ?TOPIC, <<"u1">>}},
                 erpc:call(A, ?TRACKER, track, [T, ElixirPid, ?TOPIC, <<"u1">>, #{}])).

%% Phoenix: "graceful exits with permdown", an Elixir tracker leaving: the C++
%% node drops it and its presences at once.
graceful_permdown_from_elixir(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    Options = (?TRACKER_OPTIONS)#{down_period => 20000, permdown_period => 60000},
    start_elixir_trackers(Config, [A, B], T, Options),
    Cpp = start_cpp(Config, #{tracker_options => Options}),
    await_connected(Cpp, T, [A, B]),
    track_elixir(A, T, ?TOPIC, <<"node1">>, #{name => <<"s1">>}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> keys(List) == [<<"node1">>] end),
    Start = now_ms(),
    ok = erpc:call(A, ?TRACKER, graceful_permdown, [T]),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> List == [] end),
    await_cpp_replicas(Cpp, T, #{B => up}),
    Elapsed = now_ms() - Start,
    ct:log("the C++ node dropped the replica ~b ms after graceful_permdown", [Elapsed]),
    ?assert(Elapsed < 2000).

%% The C++ node with permdown_on_shutdown, sent SIGTERM: Elixir nodes see
%% its presences leave at once, long before down_period.
graceful_permdown_from_cpp_on_sigterm(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    Options = (?TRACKER_OPTIONS)#{down_period => 20000, permdown_period => 60000},
    start_elixir_trackers(Config, [A, B], T, Options),
    Cpp = start_cpp(Config, #{tracker_options => Options#{permdown_on_shutdown => true}}),
    await_connected(Cpp, T, [A, B]),
    {ok, _, _} = track_cpp(Cpp, T, ?TOPIC, <<"cpp">>, #{name => <<"c">>}),
    [?AWAIT({join, Peer, T, ?TOPIC, <<"cpp">>, _, _}, ?TIMEOUT) || Peer <- [A, B]],
    Start = now_ms(),
    signal_cpp(Cpp, "TERM"),
    [?AWAIT({leave, Peer, T, ?TOPIC, <<"cpp">>, #{name := <<"c">>}, _}, 2000) || Peer <- [A, B]],
    [?AWAIT({replica, replica_permdown, Peer, Cpp}, 2000) || Peer <- [A, B]],
    ct:log("leaves arrived ~b ms after SIGTERM", [now_ms() - Start]),
    ?assertEqual([], elixir_list(A, T, ?TOPIC)),
    ?assertEqual(0, await_cpp_exit(Cpp, 5000)).

%% Phoenix: "rolling node update". An Elixir replica is killed and stays
%% down; the C++ node starts afterwards, knowing nothing of it: it asks the
%% primary for a transfer exactly once, gets the primary's presences, and
%% the primary permdowns the killed replica in due time.
rolling_node_update(Config) ->
    T = ?config(tracker, Config),
    [Primary, Node1 | _] = peers(Config),
    Options = (?TRACKER_OPTIONS)#{permdown_period => 4000},
    start_elixir_trackers(Config, [Primary, Node1], T, Options),
    ?AWAIT({replica, replica_up, Primary, Node1}, ?TIMEOUT),
    track_elixir(Primary, T, ?TOPIC, <<"primary">>, #{}),
    spy_on_shard(Primary, T, 0),

    stop_elixir_tracker(Node1, T),
    ?AWAIT({replica, replica_down, Primary, Node1}, ?TIMEOUT),
    Cpp = start_cpp(Config, #{tracker_options => Options, connect => [Primary]}),
    ?AWAIT({replica, replica_up, Primary, Cpp}, ?TIMEOUT),
    ?AWAIT({spy, Primary, _, {pub, transfer_req, _, {Cpp, _}, _}}, ?TIMEOUT),
    ?REFUTE({spy, Primary, _, {pub, transfer_req, _, {Cpp, _}, _}}, 2000),
    ?assertEqual([<<"primary">>], keys(cpp_list(Cpp, T, ?TOPIC))),
    ?AWAIT({replica, replica_permdown, Primary, Node1}, 2 * 4000),
    await_cpp_replicas(Cpp, T, #{Primary => up}).

%% pool_size: 4 on both sides, on a PubSub with four adapter groups: topics
%% spread over four shards by phash2, shard messages travel through every
%% group, and every node lists the same presences per topic.
pool_of_four_shards(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    Options = (?TRACKER_OPTIONS)#{pool_size => 4, pubsub_server => ?PUBSUB4},
    start_elixir_trackers(Config, [A, B], T, Options),
    Cpp = start_cpp(Config, #{tracker_options => Options}),
    await_connected(Cpp, T, [A, B]),
    Topics = [<<"topic:", (integer_to_binary(N))/binary>> || N <- lists:seq(1, 24)],
    ?assertEqual([0, 1, 2, 3], lists:usort([erlang:phash2(Tp, 4) || Tp <- Topics])),
    [begin
         {ok, _, _} = track_cpp(Cpp, T, Topic, <<"cpp">>, #{topic => Topic}),
         track_elixir(A, T, Topic, <<"elixir">>, #{topic => Topic})
     end || Topic <- Topics],
    await_same_lists(Cpp, [A, B], T, Topics),
    [?assertEqual([<<"cpp">>, <<"elixir">>], keys(elixir_list(B, T, Topic))) || Topic <- Topics].

%% Two trackers on the same PubSub at once: each keeps its own presences.
two_trackers_at_once(Config) ->
    T1 = ?config(tracker, Config),
    T2 = list_to_atom(atom_to_list(T1) ++ "Second"),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T1, ?TRACKER_OPTIONS),
    start_elixir_trackers(Config, [A, B], T2, ?TRACKER_OPTIONS),
    Cpp = start_cpp(Config, #{trackers => [{T1, ?TRACKER_OPTIONS}, {T2, ?TRACKER_OPTIONS}]}),
    await_connected(Cpp, T1, [A, B]),
    await_connected(Cpp, T2, [A, B]),
    {ok, _, _} = track_cpp(Cpp, T1, ?TOPIC, <<"cpp-in-1">>, #{}),
    {ok, _, _} = track_cpp(Cpp, T2, ?TOPIC, <<"cpp-in-2">>, #{}),
    track_elixir(A, T1, ?TOPIC, <<"elixir-in-1">>, #{}),
    track_elixir(A, T2, ?TOPIC, <<"elixir-in-2">>, #{}),
    await_cpp_list(Cpp, T2, ?TOPIC,
                   fun(List) -> keys(List) == [<<"cpp-in-2">>, <<"elixir-in-2">>] end),
    await_same_lists(Cpp, [A, B], T1, [?TOPIC]),
    await_same_lists(Cpp, [A, B], T2, [?TOPIC]),
    ?assertEqual([<<"cpp-in-1">>, <<"elixir-in-1">>], keys(elixir_list(B, T1, ?TOPIC))),
    ?assertEqual([<<"cpp-in-2">>, <<"elixir-in-2">>], keys(elixir_list(B, T2, ?TOPIC))).

%% 10,000 presences tracked on Elixir before the C++ node exists reach it by
%% transfer, identical.
late_cpp_node_receives_10k_presences_by_transfer(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    start_elixir_trackers(Config, [A, B], T, ?TRACKER_OPTIONS, nil),
    Count = 10000,
    erpc:call(A, interop_phoenix, track_many, [T, ?TOPIC, Count, #{source => <<"elixir">>}],
              60000),
    await(fun() -> length(elixir_list(B, T, ?TOPIC)) == Count end, 20000, "B has all presences"),
    Start = now_ms(),
    Cpp = start_cpp(Config, #{}),
    await_cpp_list(Cpp, T, ?TOPIC, fun(List) -> length(List) == Count end, 30000),
    ct:log("the C++ node listed ~b presences ~b ms after it started", [Count, now_ms() - Start]),
    ?assertEqual(elixir_list(A, T, ?TOPIC), cpp_list(Cpp, T, ?TOPIC)),
    ?assertEqual(elixir_list(B, T, ?TOPIC), cpp_list(Cpp, T, ?TOPIC)).

%% A change made on one side is seen on the other within one
%% broadcast_period + 100 ms of an Elixir peer seeing the same change.
changes_propagate_within_one_broadcast_period(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    Period = 300,
    Options = (?TRACKER_OPTIONS)#{broadcast_period => Period, down_period => 3000,
                                  permdown_period => 10000},
    start_elixir_trackers(Config, [A, B], T, Options),
    Cpp = start_cpp(Config, #{tracker_options => Options}),
    await_connected(Cpp, T, [A, B]),
    Bound = Period + 100,
    [begin
         Key = <<"round", (integer_to_binary(Round))/binary>>,
         elixir_to_cpp_delay(Cpp, A, B, T, Key, Bound),
         cpp_to_elixir_delay(Cpp, A, B, T, Key, Bound)
     end || Round <- lists:seq(1, 5)],
    await_same_lists(Cpp, [A, B], T, [?TOPIC]).

%% The C++ node killed (SIGKILL): Elixir nodes report its presences as leaves
%% after down_period (counted from its last heartbeat, which may precede the
%% kill by up to max_silent_periods + 1 periods), not at once; started again,
%% the old replica is permdowned and the new presences join.
killed_cpp_node_leaves_after_down_period_and_restarts(Config) ->
    T = ?config(tracker, Config),
    [A, B | _] = peers(Config),
    DownPeriod = 1600,
    Period = maps:get(broadcast_period, ?TRACKER_OPTIONS),
    Options = (?TRACKER_OPTIONS)#{down_period => DownPeriod, permdown_period => 30000},
    start_elixir_trackers(Config, [A, B], T, Options),
    Cpp = start_cpp(Config, #{tracker_options => Options}),
    await_connected(Cpp, T, [A, B]),
    {ok, _, _} = track_cpp(Cpp, T, ?TOPIC, <<"old">>, #{}),
    [?AWAIT({join, Peer, T, ?TOPIC, <<"old">>, _, _}, ?TIMEOUT) || Peer <- [A, B]],
    flush_events(),

    Killed = now_ms(),
    kill_cpp(Cpp),
    [begin
         {leave, _, _, _, _, _, At} = ?AWAIT({leave, Peer, T, ?TOPIC, <<"old">>, _, _}, ?TIMEOUT),
         ct:log("~p reported the leave ~b ms after the kill", [Peer, At - Killed]),
         ?assert(At - Killed >= DownPeriod - 4 * Period),
         ?assert(At - Killed =< DownPeriod + 2 * Period + 300)
     end || Peer <- [A, B]],
    ?AWAIT({replica, replica_down, A, Cpp}, ?TIMEOUT),

    Cpp = start_cpp(Config, #{tracker_options => Options}),
    {ok, _, _} = track_cpp(Cpp, T, ?TOPIC, <<"new">>, #{}),
    [begin
         ?AWAIT({replica, replica_permdown, Peer, Cpp}, ?TIMEOUT),
         ?AWAIT({join, Peer, T, ?TOPIC, <<"new">>, _, _}, ?TIMEOUT)
     end || Peer <- [A, B]],
    ?REFUTE({join, _, T, ?TOPIC, <<"old">>, _, _}, 1000),
    await_same_lists(Cpp, [A, B], T, [?TOPIC]),
    ?assertEqual([<<"new">>], keys(elixir_list(B, T, ?TOPIC))).

%%% Timing

%% Tracks Key on Elixir node A; B (another Elixir node) reports the join at
%% some time; the C++ node must list it within Bound ms of that.
elixir_to_cpp_delay(Cpp, A, B, T, Key, Bound) ->
    Pid = track_elixir(A, T, ?TOPIC, <<"e-", Key/binary>>, #{round => Key}),
    CppSeen = poll_until(fun() -> lists:keymember(<<"e-", Key/binary>>, 1,
                                                  cpp_list(Cpp, T, ?TOPIC)) end),
    {join, _, _, _, _, _, PeerSeen} = ?AWAIT({join, B, T, ?TOPIC, <<"e-", Key/binary>>, _, _},
                                             ?TIMEOUT),
    Pid ! stop,
    CppGone = poll_until(fun() -> not lists:keymember(<<"e-", Key/binary>>, 1,
                                                      cpp_list(Cpp, T, ?TOPIC)) end),
    {leave, _, _, _, _, _, PeerGone} = ?AWAIT({leave, B, T, ?TOPIC, <<"e-", Key/binary>>, _, _},
                                              ?TIMEOUT),
    ct:log("Elixir -> C++: join seen by C++ ~b ms after ~p, leave ~b ms after",
           [CppSeen - PeerSeen, B, CppGone - PeerGone]),
    ?assert(CppSeen - PeerSeen =< Bound),
    ?assert(CppGone - PeerGone =< Bound).

%% Tracks Key through the control process and a twin key on Elixir node A at
%% the same moment; every Elixir node must report the C++ join within Bound
%% ms of B reporting the twin's join (and the same for the leaves).
cpp_to_elixir_delay(Cpp, A, B, T, Key, Bound) ->
    CppKey = <<"c-", Key/binary>>,
    TwinKey = <<"t-", Key/binary>>,
    {ok, Pid, _} = track_cpp(Cpp, T, ?TOPIC, CppKey, #{round => Key}),
    Twin = track_elixir(A, T, ?TOPIC, TwinKey, #{round => Key}),
    {join, _, _, _, _, _, TwinSeen} = ?AWAIT({join, B, T, ?TOPIC, TwinKey, _, _}, ?TIMEOUT),
    [begin
         {join, _, _, _, _, _, Seen} = ?AWAIT({join, Peer, T, ?TOPIC, CppKey, _, _}, ?TIMEOUT),
         ct:log("C++ -> Elixir: join seen by ~p ~b ms after the twin", [Peer, Seen - TwinSeen]),
         ?assert(Seen - TwinSeen =< Bound)
     end || Peer <- [A, B]],
    ok = cpp_call(Cpp, {untrack, T, Pid}),
    Twin ! stop,
    {leave, _, _, _, _, _, TwinGone} = ?AWAIT({leave, B, T, ?TOPIC, TwinKey, _, _}, ?TIMEOUT),
    [begin
         {leave, _, _, _, _, _, Gone} = ?AWAIT({leave, Peer, T, ?TOPIC, CppKey, _, _}, ?TIMEOUT),
         ct:log("C++ -> Elixir: leave seen by ~p ~b ms after the twin", [Peer, Gone - TwinGone]),
         ?assert(Gone - TwinGone =< Bound)
     end || Peer <- [A, B]].

%% Calls Fun every 5 ms until it returns true; returns the time it did.
poll_until(Fun) ->
    await(Fun, ?TIMEOUT, "poll"),
    now_ms().

%%% The C++ node

%% Starts presence_node for the case (name from the config unless given) and
%% waits until it answers pings and its control process answers. Options:
%% trackers ([{Tracker, TrackerOptions}]), tracker_options (for the case's
%% tracker), connect (peers to connect to; all by default). Returns the node.
start_cpp(Config, Options) ->
    Name = maps:get(name, Options, ?config(cpp_name, Config)),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Node = list_to_atom(Name ++ "@" ++ Host),
    TrackerOptions = maps:get(tracker_options, Options, ?TRACKER_OPTIONS),
    Trackers = maps:get(trackers, Options, [{?config(tracker, Config), TrackerOptions}]),
    Connect = maps:get(connect, Options, peers(Config)),
    Args = ["--name", Name, "--cookie", atom_to_list(erlang:get_cookie()),
            "--pubsub", elixir_alias(?PUBSUB), "--pubsub", elixir_alias(?PUBSUB4) ++ ",pool_size=4",
            "--control"]
           ++ lists:append([["--connect", atom_to_list(P)] || P <- Connect])
           ++ lists:append([["--tracker", tracker_flag(T, TO)] || {T, TO} <- Trackers]),
    Log = filename:join(?config(priv_dir, Config), Name ++ ".log"),
    Owner = start_port_owner(?config(binary, Config), Args, Log),
    ets:insert(interop_state, {cpp, Node, Owner}),
    ct:log("started ~s ~s (output in ~s)", [?config(binary, Config), lists:join(" ", Args), Log]),
    await(fun() -> net_adm:ping(Node) == pong end, 10000, "presence_node answers ping"),
    {FirstTracker, _} = hd(Trackers),
    await(fun() -> is_map(cpp_replicas(Node, FirstTracker)) end, 10000,
          "the control process answers"),
    Node.

%% A process owning the port of one presence_node; it writes the node's
%% output to Log and kills the OS process when asked or when the suite's
%% keeper ends.
start_port_owner(Binary, Args, Log) ->
    Parent = self(),
    Owner = spawn(fun() ->
                      Port = open_port({spawn_executable, Binary},
                                       [{args, Args}, exit_status, stderr_to_stdout, binary,
                                        {line, 4096}]),
                      {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                      {ok, File} = file:open(Log, [append, raw]),
                      Parent ! {self(), OsPid},
                      port_owner_loop(Port, OsPid, File, undefined)
                  end),
    receive {Owner, _OsPid} -> Owner end.

port_owner_loop(Port, OsPid, File, ExitWaiter) ->
    receive
        {Port, {data, {_, Line}}} ->
            file:write(File, [Line, $\n]),
            port_owner_loop(Port, OsPid, File, ExitWaiter);
        {Port, {exit_status, Status}} ->
            file:write(File, io_lib:format("== exit status ~b~n", [Status])),
            file:close(File),
            reply_exit(ExitWaiter, Status),
            exited_loop(Status);
        {signal, Signal, From} ->
            os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid)),
            From ! {self(), signalled},
            port_owner_loop(Port, OsPid, File, ExitWaiter);
        {await_exit, From} ->
            port_owner_loop(Port, OsPid, File, From)
    end.

exited_loop(Status) ->
    receive
        {signal, _, From} -> From ! {self(), signalled}, exited_loop(Status);
        {await_exit, From} -> reply_exit(From, Status), exited_loop(Status)
    end.

reply_exit(undefined, _) -> ok;
reply_exit(From, Status) -> From ! {self(), exit_status, Status}.

signal_cpp(Node, Signal) ->
    Owner = cpp_owner(Node),
    Owner ! {signal, Signal, self()},
    receive {Owner, signalled} -> ok after ?TIMEOUT -> ct:fail({no_port_owner, Node}) end.

%% SIGKILL, then waits for the process to be gone and its name free in EPMD.
kill_cpp(Node) ->
    signal_cpp(Node, "KILL"),
    await_cpp_exit(Node, ?TIMEOUT),
    ets:match_delete(interop_state, {cpp, Node, '_'}),
    [Name, _] = string:split(atom_to_list(Node), "@"),
    await(fun() -> {ok, Names} = erl_epmd:names(), not lists:keymember(Name, 1, Names) end,
          ?TIMEOUT, "EPMD forgets " ++ Name).

await_cpp_exit(Node, Timeout) ->
    Owner = cpp_owner(Node),
    Owner ! {await_exit, self()},
    receive
        {Owner, exit_status, Status} -> Status
    after Timeout -> ct:fail({still_running, Node})
    end.

cpp_owner(Node) ->
    case ets:match(interop_state, {cpp, Node, '$1'}) of
        [[Owner] | _] -> Owner;
        [] -> ct:fail({not_started, Node})
    end.

stop_all_cpp_nodes() ->
    [begin
         Owner ! {signal, "KILL", self()},
         receive {Owner, signalled} -> ok after 1000 -> ok end
     end || {cpp, _, Owner} <- ets:lookup(interop_state, cpp)],
    ets:delete(interop_state, cpp).

%% NAME,pubsub_server=PUBSUB,option=value... for the tracker's options.
tracker_flag(Tracker, Options) ->
    PubSub = maps:get(pubsub_server, Options, ?PUBSUB),
    Settings = [io_lib:format("~s=~p", [Key, Value])
                || {Key, Value} <- lists:sort(maps:to_list(maps:remove(pubsub_server, Options)))],
    lists:flatten(lists:join(",", [elixir_alias(Tracker), "pubsub_server=" ++ elixir_alias(PubSub),
                                   "log_level=info" | Settings])).

%% 'Elixir.MyApp.PubSub' as written on the command line: MyApp.PubSub.
elixir_alias(Module) ->
    "Elixir." ++ Alias = atom_to_list(Module),
    Alias.

cpp_call(Node, Request) ->
    gen_server:call({presence, Node}, Request, ?TIMEOUT).

track_cpp(Node, Tracker, Topic, Key, Meta) ->
    cpp_call(Node, {track, Tracker, Topic, Key, Meta}).

cpp_list(Node, Tracker, Topic) ->
    lists:sort(cpp_call(Node, {list, Tracker, Topic})).

%% The C++ node's replica table ([{{Node, Vsn}, Status}] on the wire) as
%% #{Node => {Status, Vsn}}.
cpp_replicas(Node, Tracker) ->
    maps:from_list([{Name, {Status, Vsn}}
                    || {{Name, Vsn}, Status} <- cpp_call(Node, {replicas, Tracker})]).

%% Waits until the C++ node's replica table has exactly these nodes with
%% these statuses.
await_cpp_replicas(Node, Tracker, Expected) ->
    await(fun() ->
              maps:map(fun(_, {Status, _}) -> Status end, cpp_replicas(Node, Tracker))
                  == Expected
          end,
          10000, io_lib:format("C++ replicas ~p", [Expected])).

await_cpp_list(Node, Tracker, Topic, Pred) ->
    await_cpp_list(Node, Tracker, Topic, Pred, 10000).

await_cpp_list(Node, Tracker, Topic, Pred, Timeout) ->
    await(fun() -> Pred(cpp_list(Node, Tracker, Topic)) end, Timeout,
          io_lib:format("C++ list of ~s", [Topic])).

%% Waits until each side has marked the other up.
await_connected(Cpp, Tracker, Peers) ->
    await_cpp_replicas(Cpp, Tracker, maps:from_list([{P, up} || P <- Peers])),
    [await(fun() -> is_map_key(Cpp, elixir_replicas(P, Tracker)) end, 10000,
           "Elixir replica table holds the C++ node")
     || P <- Peers],
    ok.

%%% The Elixir side

peers(Config) ->
    ?config(peers, Config).

start_elixir_trackers(Config, Peers, Tracker, Options) ->
    start_elixir_trackers(Config, Peers, Tracker, Options, {interop_events, node()}).

%% ReportTo nil: diffs and replica events are not reported.
start_elixir_trackers(_Config, Peers, Tracker, Options, ReportTo) ->
    ets:insert(interop_state, {tracker, Tracker}),
    PoolOptions = maps:to_list(maps:merge(#{pubsub_server => ?PUBSUB}, Options)),
    [ok = erpc:call(Peer, interop_phoenix, start_tracker, [Tracker, PoolOptions, ReportTo])
     || Peer <- Peers],
    ok.

%% Kills the tracker's supervisor: its shards die without a goodbye.
stop_elixir_tracker(Peer, Tracker) ->
    ok = erpc:call(Peer, interop_phoenix, kill_tracker, [Tracker]).

%% Tracks Key for a new process of Peer; returns the process.
track_elixir(Peer, Tracker, Topic, Key, Meta) ->
    Pid = erpc:call(Peer, interop_phoenix, spawn_presence, []),
    {ok, _} = erpc:call(Peer, ?TRACKER, track, [Tracker, Pid, Topic, Key, Meta]),
    Pid.

elixir_list(Peer, Tracker, Topic) ->
    lists:sort(erpc:call(Peer, ?TRACKER, list, [Tracker, Topic], 30000)).

elixir_get_by_key(Peer, Tracker, Topic, Key) ->
    erpc:call(Peer, ?TRACKER, get_by_key, [Tracker, Topic, Key]).

%% The shard's replica table, #{Node => Replica struct}.
elixir_replicas(Peer, Tracker) ->
    gen_server:call({shard_name(Tracker, 0), Peer}, replicas, ?TIMEOUT).

elixir_replica_vsn(Peer, Tracker, Node) ->
    #{Node := #{vsn := Vsn}} = elixir_replicas(Peer, Tracker),
    Vsn.

%% Every {{Topic, Pid, Key}, Meta, Tag} the shard holds, down replicas' too.
elixir_values(Peer, Tracker, Shard) ->
    [Value || [Value] <- gen_server:call({shard_name(Tracker, Shard), Peer}, values, ?TIMEOUT)].

%% Subscribes a spy to shard N's topic on Peer: every message published
%% there arrives as {spy, Peer, Time, Message}.
spy_on_shard(Peer, Tracker, N) ->
    Topic = iolist_to_binary(["phx_presence:", atom_to_list(shard_name(Tracker, N))]),
    {ok, _} = erpc:call(Peer, interop_phoenix, spy, [?PUBSUB, Topic, {interop_events, node()}]).

shard_name(Tracker, N) ->
    list_to_atom(atom_to_list(Tracker) ++ "_shard" ++ integer_to_list(N)).

await_heartbeat(Peer, Cpp) ->
    {spy, _, _, Heartbeat} = ?AWAIT({spy, Peer, _, {pub, heartbeat, {Cpp, _}, _, _}}, ?TIMEOUT),
    Heartbeat.

%% {pub, heartbeat, {Node, Vsn}, empty | Delta, {{Node, Vsn}, Context}}.
assert_heartbeat_shape(Cpp, {pub, heartbeat, {Cpp, Vsn} = Ref, Delta, {Ref, Context}}) ->
    ?assert(is_integer(Vsn)),
    ?assert(is_map(Context)),
    ?assert(Delta == empty orelse
            maps:get('__struct__', Delta, undefined) == 'Elixir.Phoenix.Tracker.State').

%% Waits until the C++ node and every given Elixir node list the same
%% presences (keys and metas) for every topic.
await_same_lists(Cpp, Peers, Tracker, Topics) ->
    Lists = fun() ->
                [{Topic, cpp_list(Cpp, Tracker, Topic),
                  [elixir_list(Peer, Tracker, Topic) || Peer <- Peers]}
                 || Topic <- Topics]
            end,
    Same = fun() -> lists:all(fun({_, L, Ls}) -> lists:all(fun(E) -> E == L end, Ls) end,
                              Lists())
           end,
    case wait_for(Same, 10000) of
        true -> ok;
        false -> ct:fail({lists_differ, Lists()})
    end.

keys(List) ->
    lists:sort([Key || {Key, _} <- List]).

%%% Events

%% Messages to the case arrive as diffs, replica events and spy reports; they
%% are kept, in arrival order, as events:
%%   {join | leave, Node, Tracker, Topic, Key, Meta, SystemTimeMs}
%%   {replica, replica_up | replica_down | replica_permdown, Node, OfNode}
%%   {spy, Node, SystemTimeMs, Message}

%% With a predicate of one argument: takes the first event matching it.
%% With a predicate of none: calls it until it returns true.
await(Pred, Timeout, What) when is_function(Pred, 0) ->
    case wait_for(Pred, Timeout) of
        true -> ok;
        false -> ct:fail({timeout, lists:flatten(What)})
    end;
await(Pred, Timeout, What) ->
    Deadline = now_ms() + Timeout,
    case take_event(Pred, Deadline) of
        {ok, Event} -> Event;
        timeout -> ct:fail({no_event, lists:flatten(What), {seen, lists:reverse(get_events())}})
    end.

refute(Pred, Window, What) ->
    case take_event(Pred, now_ms() + Window) of
        {ok, Event} -> ct:fail({unexpected_event, lists:flatten(What), Event});
        timeout -> ok
    end.

take_event(Pred, Deadline) ->
    Events = get_events(),
    case lists:splitwith(fun(E) -> not Pred(E) end, lists:reverse(Events)) of
        {Before, [Event | After]} ->
            put(events, lists:reverse(Before ++ After)),
            {ok, Event};
        {_, []} ->
            receive
                Message ->
                    put(events, lists:reverse(to_events(Message)) ++ Events),
                    take_event(Pred, Deadline)
            after max(0, Deadline - now_ms()) -> timeout
            end
    end.

flush_events() ->
    receive _ -> flush_events() after 0 -> put(events, []) end.

get_events() ->
    case get(events) of undefined -> []; Events -> Events end.

to_events({presence_diff, Node, Tracker, Time, Diff}) ->
    [{Kind, Node, Tracker, Topic, Key, Meta, Time}
     || {Topic, {Joins, Leaves}} <- maps:to_list(Diff),
        {Kind, Presences} <- [{leave, Leaves}, {join, Joins}],
        {Key, Meta} <- Presences];
to_events({{Event, OfNode}, Node}) when is_atom(Event) ->
    [{replica, Event, Node, OfNode}];
to_events({spy, _, _, _} = Spy) ->
    [Spy];
to_events(Other) ->
    ct:log("unexpected message: ~p", [Other]),
    [].

%%% Helpers

wait_for(Pred, Timeout) ->
    wait_until(Pred, now_ms() + Timeout).

wait_until(Pred, Deadline) ->
    case catch Pred() of
        true -> true;
        _ ->
            case now_ms() > Deadline of
                true -> false;
                false -> timer:sleep(5), wait_until(Pred, Deadline)
            end
    end.

now_ms() ->
    erlang:system_time(millisecond).

camel_case(Name) ->
    lists:append([[string:to_upper(C) | Rest] || [C | Rest] <- string:split(Name, "_", all)]).
