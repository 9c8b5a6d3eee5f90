%% The Elixir side of interop_SUITE: runs on each Elixir peer node.
%%
%% It is a Phoenix.Tracker callback module (init/1, handle_diff/2) whose diffs
%% go to a process on the Common Test node, plus the few helpers the suite
%% calls on a peer with erpc: starting Phoenix.PubSub and trackers under a
%% holder process that outlives the call, spying on a shard's PubSub topic,
%% and making presence pids.
-module(interop_phoenix).

-export([init/1, handle_diff/2, handle_info/2]).
-export([start_pubsub/1, start_tracker/3, stop_tracker/1, kill_tracker/1, kill_shard/2,
         suspend_shard/2, resume_shard/2, spy/3, spawn_presence/0, track_many/4]).

-define(PG_SCOPE, 'Elixir.Phoenix.PubSub').

%% Phoenix.Tracker callbacks.

%% Args: report_to (a pid or {Name, Node} receiving the diffs) and tracker
%% (the tracker's name, repeated in every report).
init(Args) ->
    {ok, #{report_to => proplists:get_value(report_to, Args),
           tracker => proplists:get_value(tracker, Args)}}.

%% Every diff goes to report_to (unless it is nil) as
%% {presence_diff, Node, Tracker, SystemTimeMs, #{Topic => {Joins, Leaves}}}.
handle_diff(_Diff, #{report_to := nil} = State) ->
    {ok, State};
handle_diff(Diff, #{report_to := To, tracker := Tracker} = State) ->
    To ! {presence_diff, node(), Tracker, erlang:system_time(millisecond), Diff},
    {ok, State}.

handle_info(_Message, State) ->
    {noreply, State}.

%% Starts a PubSub server (Options are Phoenix.PubSub's: name, pool_size
%% ...) and, the first time, the pg scope it uses, each owned by a process
%% that lives until the node stops.
start_pubsub(Options) ->
    {ok, _} = application:ensure_all_started(elixir),
    {ok, _} = application:ensure_all_started(logger),
    ok = case whereis(?PG_SCOPE) of
             undefined -> hold(fun() -> {ok, _} = pg:start_link(?PG_SCOPE), ok end);
             _ -> ok
         end,
    hold(fun() ->
             {ok, _} = 'Elixir.Phoenix.PubSub.Supervisor':start_link(Options),
             ok
         end).

%% Starts tracker Name with the pool options Options (pubsub_server,
%% pool_size, broadcast_period ...), reporting diffs to ReportTo and replica
%% events ({{replica_up, Node}, OwnNode} ...) to the same process; nil
%% reports nothing.
start_tracker(Name, Options, ReportTo) ->
    PoolOptions = [{name, Name}, {report_events_to, ReportTo} | Options],
    Args = [{report_to, ReportTo}, {tracker, Name}],
    hold(fun() ->
             {ok, _} = 'Elixir.Phoenix.Tracker':start_link(?MODULE, Args, PoolOptions),
             ok
         end).

%% Stops a tracker, if it runs, as its application would stop it, without
%% graceful_permdown (no shutdown handler).
stop_tracker(Name) ->
    case whereis(Name) of
        undefined -> ok;
        _ -> 'Elixir.Supervisor':stop(Name)
    end.

%% Kills a tracker's supervisor: its shards, and the processes they track,
%% die without telling anyone.
kill_tracker(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.

%% Kills shard N of a tracker; its supervisor starts a new one, which is a
%% new replica (new vsn) with no presences.
kill_shard(Name, N) ->
    exit(whereis(shard_name(Name, N)), kill),
    ok.

suspend_shard(Name, N) ->
    sys:suspend(shard_name(Name, N)).

resume_shard(Name, N) ->
    sys:resume(shard_name(Name, N)).

%% Subscribes a new process to Topic of PubSub; it sends {spy, Node, SystemTimeMs,
%% Message} to To for every message published there, until the node stops.
spy(PubSub, Topic, To) ->
    Parent = self(),
    Pid = spawn(fun() ->
                    ok = 'Elixir.Phoenix.PubSub':subscribe(PubSub, Topic),
                    Parent ! {self(), subscribed},
                    spy_loop(To)
                end),
    receive {Pid, subscribed} -> {ok, Pid} after 5000 -> {error, timeout} end.

spy_loop(To) ->
    receive
        Message ->
            To ! {spy, node(), erlang:system_time(millisecond), Message},
            spy_loop(To)
    end.

%% A process to track presences for; it lives until it is told to stop or
%% the node stops.
spawn_presence() ->
    spawn(fun() -> receive stop -> ok end end).

%% Tracks Count presences with keys 1..Count on Topic for one new process,
%% each with MetaBase plus n => Key. Returns the process.
track_many(Tracker, Topic, Count, MetaBase) ->
    Pid = spawn_presence(),
    lists:foreach(fun(Key) ->
                      {ok, _} = 'Elixir.Phoenix.Tracker':track(Tracker, Pid, Topic, Key,
                                                               MetaBase#{n => Key})
                  end,
                  lists:seq(1, Count)),
    Pid.

shard_name(Name, N) ->
    list_to_atom(atom_to_list(Name) ++ "_shard" ++ integer_to_list(N)).

%% Runs Start in a new process that keeps what Start linked to it alive,
%% and waits for Start to finish. Returns ok or {error, Reason}.
hold(Start) ->
    Parent = self(),
    Ref = make_ref(),
    Holder = spawn(fun() ->
                       Result = try Start() catch Class:Reason -> {error, {Class, Reason}} end,
                       Parent ! {Ref, Result},
                       receive stop -> ok end
                   end),
    MonitorRef = monitor(process, Holder),
    receive
        {Ref, Result} -> demonitor(MonitorRef, [flush]), Result;
        {'DOWN', MonitorRef, process, Holder, Reason} -> {error, Reason}
    after 15000 -> {error, timeout}
    end.
