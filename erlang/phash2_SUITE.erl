%% The C++ node's erlang:phash2 against the BEAM's own, on random terms.
%%
%% Starts the port program $PRESENCE_BUILD_DIR/cnode/phash2_port, sends it
%% {Term, Range} (or {Term}) and compares its answer with erlang:phash2/2
%% (or /1) computed here. The random data come from one seed, printed at the
%% start of the suite and of each case; set PHASH2_SEED to rerun with it.
-module(phash2_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([topics_pick_the_same_shard_for_every_pool_size/1,
         long_and_unicode_topics_agree/1,
         integers_agree_around_every_encoding_boundary/1,
         floats_agree_including_both_zeros/1,
         atoms_agree_including_unicode/1,
         strings_and_byte_lists_agree/1,
         improper_lists_agree/1,
         nested_tuples_lists_and_maps_agree/1,
         small_and_large_maps_agree/1,
         bitstrings_agree/1,
         local_and_remote_pids_agree/1,
         references_agree/1,
         ports_agree/1,
         funs_agree/1,
         phash2_without_range_agrees/1,
         ranges_up_to_two_to_the_32_agree/1]).

-define(PORT_TIMEOUT, 5000).

all() ->
    [topics_pick_the_same_shard_for_every_pool_size,
     long_and_unicode_topics_agree,
     integers_agree_around_every_encoding_boundary,
     floats_agree_including_both_zeros,
     atoms_agree_including_unicode,
     strings_and_byte_lists_agree,
     improper_lists_agree,
     nested_tuples_lists_and_maps_agree,
     small_and_large_maps_agree,
     bitstrings_agree,
     local_and_remote_pids_agree,
     references_agree,
     ports_agree,
     funs_agree,
     phash2_without_range_agrees,
     ranges_up_to_two_to_the_32_agree].

%% ---------------------------------------------------------------------
%% Setup

init_per_suite(Config) ->
    case os:getenv("PRESENCE_BUILD_DIR") of
        false ->
            {fail, "PRESENCE_BUILD_DIR is not set"};
        BuildDir ->
            Program = filename:join([BuildDir, "cnode", "phash2_port"]),
            case filelib:is_regular(Program) of
                false ->
                    {fail, {not_built, Program}};
                true ->
                    Seed = seed(),
                    ct:pal("phash2_SUITE seed ~b (rerun with PHASH2_SEED=~b)", [Seed, Seed]),
                    [{program, Program}, {seed, Seed} | Config]
            end
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Seed = ?config(seed, Config),
    rand:seed(exsss, {Seed, erlang:phash2(Case), 16#5eed}),
    ct:pal("~p: seed ~b", [Case, Seed]),
    Port = open_port({spawn_executable, ?config(program, Config)},
                     [{packet, 4}, binary, exit_status]),
    [{port, Port} | Config].

end_per_testcase(_Case, Config) ->
    Port = ?config(port, Config),
    catch port_close(Port),
    ok.

seed() ->
    case os:getenv("PHASH2_SEED") of
        false -> erlang:unique_integer([positive]) bxor erlang:system_time(microsecond);
        Text -> list_to_integer(Text)
    end.

%% ---------------------------------------------------------------------
%% Cases

topics_pick_the_same_shard_for_every_pool_size(Config) ->
    Topics = [<<"room:1">>, <<"room:lobby">>, <<"users:123">>, <<>>]
        ++ [topic() || _ <- lists:seq(1, 1000)],
    agree(Config, [{T, PoolSize} || T <- Topics, PoolSize <- lists:seq(1, 8)]).

long_and_unicode_topics_agree(Config) ->
    Unicode = [unicode:characters_to_binary([rand_char() || _ <- lists:seq(1, rand:uniform(40))])
               || _ <- lists:seq(1, 1000)],
    Long = [rand:bytes(rand:uniform(20000)) || _ <- lists:seq(1, 200)],
    Bytes = [rand:bytes(N) || N <- lists:seq(0, 100)],
    agree(Config, [{T, range()} || T <- Unicode ++ Long ++ Bytes]).

integers_agree_around_every_encoding_boundary(Config) ->
    Edges = [S * ((1 bsl B) + D) || B <- lists:seq(0, 300), D <- [-1, 0, 1], S <- [1, -1]],
    Random = [rand_integer() || _ <- lists:seq(1, 2000)],
    agree(Config, [{I, range()} || I <- Edges ++ Random]).

floats_agree_including_both_zeros(Config) ->
    Fixed = [0.0, -0.0, 1.0, -1.0, 5.0e-324, -5.0e-324, 2.2250738585072014e-308,
             1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1.0e15, 1.0e16],
    Random = [F || _ <- lists:seq(1, 2000), F <- [rand_float()]],
    agree(Config, [{F, range()} || F <- Fixed ++ Random]).

atoms_agree_including_unicode(Config) ->
    Fixed = ['', ok, true, false, nil, undefined, 'Elixir.Phoenix.Tracker', node(),
             'é', 'ÿ', '日本', 'a€b', 'Ω', list_to_atom([16#10FFFF])],
    Random = [list_to_atom([rand_char() || _ <- lists:seq(1, rand:uniform(30))])
              || _ <- lists:seq(1, 1500)],
    agree(Config, [{A, range()} || A <- Fixed ++ Random]).

strings_and_byte_lists_agree(Config) ->
    Strings = [[rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(40) - 1)]
               || _ <- lists:seq(1, 1000)],
    Mixed = [[case rand:uniform(6) of 1 -> 256 + rand:uniform(1000); 2 -> -rand:uniform(5);
                  _ -> rand:uniform(256) - 1 end
              || _ <- lists:seq(1, rand:uniform(30))]
             || _ <- lists:seq(1, 1000)],
    agree(Config, [{L, range()} || L <- [[], "hello", "abcd", "abcde"] ++ Strings ++ Mixed]).

improper_lists_agree(Config) ->
    Lists = [improper([rand_term(1) || _ <- lists:seq(1, rand:uniform(6))], rand_leaf())
             || _ <- lists:seq(1, 1000)]
        ++ [improper([rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(9))], rand_leaf())
            || _ <- lists:seq(1, 500)],
    agree(Config, [{L, range()} || L <- [[a | b], [1, 2 | 3] | Lists]]).

nested_tuples_lists_and_maps_agree(Config) ->
    agree(Config, [{rand_term(4), range()} || _ <- lists:seq(1, 2000)]).

small_and_large_maps_agree(Config) ->
    Maps = [maps:from_list([{rand_leaf(), rand_term(1)} || _ <- lists:seq(1, N)])
            || N <- lists:seq(0, 100) ++ [rand:uniform(300) || _ <- lists:seq(1, 50)]],
    Presences = [#{phx_ref => rand:bytes(16), name => <<"user ", (integer_to_binary(I))/binary>>}
                 || I <- lists:seq(1, 200)],
    agree(Config, [{M, range()} || M <- Maps ++ Presences]).

bitstrings_agree(Config) ->
    Bits = [begin
                Size = rand:uniform(200) - 1,
                <<B:Size/bitstring, _/bitstring>> = rand:bytes(26),
                B
            end || _ <- lists:seq(1, 1500)],
    %% A sub-binary starting in the middle of a byte.
    Unaligned = [begin <<_:3, B:N/bitstring, _/bitstring>> = rand:bytes(40), B end
                 || N <- lists:seq(0, 300)],
    agree(Config, [{B, range()} || B <- Bits ++ Unaligned]).

local_and_remote_pids_agree(Config) ->
    Local = [self(), whereis(init), whereis(code_server)]
        ++ [spawn(fun() -> ok end) || _ <- lists:seq(1, 50)],
    Remote = [remote_pid(node_name(), rand:uniform(1 bsl 32) - 1, rand:uniform(1 bsl 13) - 1,
                         rand:uniform(1 bsl 32) - 1)
              || _ <- lists:seq(1, 1500)],
    Small = [remote_pid(node_name(), Id, 0, 1) || Id <- lists:seq(0, 100) ++ [32767, 32768]],
    agree(Config, [{P, range()} || P <- Local ++ Remote ++ Small]
          ++ [{P, GroupCount} || P <- Local, GroupCount <- lists:seq(1, 8)]).

references_agree(Config) ->
    Local = [make_ref() || _ <- lists:seq(1, 200)],
    Remote = [remote_ref(node_name(), rand:uniform(1 bsl 32) - 1,
                         [rand:uniform(1 bsl 32) - 1 || _ <- lists:seq(1, Words)])
              || _ <- lists:seq(1, 300), Words <- [1, 2, 3, 4, 5]],
    agree(Config, [{R, range()} || R <- Local ++ Remote]).

ports_agree(Config) ->
    Local = erlang:ports(),
    Remote = [remote_port(node_name(), rand:uniform(1 bsl 64) - 1, rand:uniform(1 bsl 32) - 1)
              || _ <- lists:seq(1, 1000)]
        ++ [remote_port(node_name(), rand:uniform(1 bsl 28) - 1, 1) || _ <- lists:seq(1, 200)],
    agree(Config, [{P, range()} || P <- Local ++ Remote]).

funs_agree(Config) ->
    Captured = [make_fun(rand_term(2), rand_term(2)) || _ <- lists:seq(1, 500)],
    Plain = [fun(X) -> X end, fun() -> ok end, fun lists:map/2, fun erlang:self/0,
             fun ?MODULE:all/0],
    agree(Config, [{F, range()} || F <- Plain ++ Captured]).

phash2_without_range_agrees(Config) ->
    agree(Config, [{rand_term(3)} || _ <- lists:seq(1, 2000)]
          ++ [{topic()} || _ <- lists:seq(1, 1000)]).

ranges_up_to_two_to_the_32_agree(Config) ->
    Ranges = [1, 2, 1 bsl 27, (1 bsl 31) + 1, (1 bsl 32) - 1, 1 bsl 32]
        ++ [rand:uniform(1 bsl 32) || _ <- lists:seq(1, 100)],
    agree(Config, [{rand_term(2), R} || R <- Ranges, _ <- lists:seq(1, 10)]).

%% ---------------------------------------------------------------------
%% Comparison

%% Sends every request to the port and fails with the first few requests
%% whose answers differ from the BEAM's.
agree(Config, Requests) ->
    Port = ?config(port, Config),
    Mismatches = [{Request, {beam, Beam}, {cpp, Cpp}}
                  || Request <- Requests,
                     Beam <- [beam_hash(Request)],
                     Cpp <- [port_hash(Port, Request)],
                     Beam =/= Cpp],
    ct:pal("~b requests, ~b mismatches", [length(Requests), length(Mismatches)]),
    case Mismatches of
        [] -> ok;
        _ -> ct:fail({mismatches, length(Mismatches), lists:sublist(Mismatches, 5)})
    end.

beam_hash({Term}) -> erlang:phash2(Term);
beam_hash({Term, Range}) -> erlang:phash2(Term, Range).

port_hash(Port, Request) ->
    true = port_command(Port, term_to_binary(Request)),
    receive
        {Port, {data, Reply}} -> binary_to_term(Reply);
        {Port, {exit_status, Status}} -> ct:fail({port_exited, Status, Request})
    after ?PORT_TIMEOUT ->
        ct:fail({port_timeout, Request})
    end.

%% ---------------------------------------------------------------------
%% Random data

topic() ->
    Prefix = lists:nth(rand:uniform(4), [<<"room:">>, <<"topic:">>, <<"users:">>, <<"chat:">>]),
    <<Prefix/binary, (integer_to_binary(rand:uniform(1000000)))/binary>>.

range() ->
    case rand:uniform(4) of
        1 -> rand:uniform(8);
        2 -> rand:uniform(64);
        3 -> rand:uniform(1 bsl 16);
        4 -> rand:uniform(1 bsl 32)
    end.

%% Mostly ASCII, some Latin-1, some from the rest of Unicode.
rand_char() ->
    case rand:uniform(10) of
        N when N =< 5 -> $a + rand:uniform(26) - 1;
        N when N =< 7 -> 127 + rand:uniform(129);
        8 -> 16#370 + rand:uniform(16#400);
        9 -> 16#4E00 + rand:uniform(16#5000);
        10 -> 16#1F300 + rand:uniform(16#300)
    end.

rand_integer() ->
    Bits = rand:uniform(200),
    Magnitude = rand:uniform(1 bsl Bits) - 1,
    case rand:uniform(2) of 1 -> Magnitude; 2 -> -Magnitude end.

%% A float from random bits; infinities and NaNs do not exist in Erlang.
rand_float() ->
    Bits = rand:uniform(1 bsl 64) - 1,
    case <<Bits:64>> of
        <<F:64/float>> -> F;
        _ -> rand:uniform() * 1.0e10
    end.

rand_leaf() ->
    case rand:uniform(10) of
        1 -> rand:uniform(256) - 1;
        2 -> rand_integer();
        3 -> rand_float();
        4 -> lists:nth(rand:uniform(5), [ok, error, nil, 'é', phx_ref]);
        5 -> rand:bytes(rand:uniform(30) - 1);
        6 -> topic();
        7 -> [];
        8 -> {};
        9 -> self();
        10 -> remote_pid(node_name(), rand:uniform(1000), 0, rand:uniform(4))
    end.

rand_term(0) ->
    rand_leaf();
rand_term(Depth) ->
    Width = rand:uniform(5) - 1,
    case rand:uniform(6) of
        1 -> list_to_tuple([rand_term(Depth - 1) || _ <- lists:seq(1, Width)]);
        2 -> [rand_term(Depth - 1) || _ <- lists:seq(1, Width)];
        3 -> maps:from_list([{rand_leaf(), rand_term(Depth - 1)} || _ <- lists:seq(1, Width)]);
        4 -> maps:from_list([{I, rand_leaf()} || I <- lists:seq(1, 30 + rand:uniform(10))]);
        _ -> rand_leaf()
    end.

improper(Elements, Tail) when is_list(Tail) -> improper(Elements, {Tail});
improper(Elements, Tail) -> lists:foldr(fun(E, Acc) -> [E | Acc] end, Tail, Elements).

make_fun(A, B) -> fun(X) -> {X, A, B} end.

node_name() ->
    list_to_atom("n" ++ integer_to_list(rand:uniform(20)) ++ "@host" ++
                 integer_to_list(rand:uniform(3))).

%% Pids, references and ports of another node, built from their external
%% encoding (NEW_PID_EXT, NEWER_REFERENCE_EXT, V4_PORT_EXT).
remote_pid(Node, Id, Serial, Creation) ->
    binary_to_term(<<131, 88, (atom_ext(Node))/binary, Id:32, Serial:32, Creation:32>>).

remote_ref(Node, Creation, Words) ->
    binary_to_term(<<131, 90, (length(Words)):16, (atom_ext(Node))/binary, Creation:32,
                     << <<W:32>> || W <- Words >>/binary>>).

remote_port(Node, Id, Creation) ->
    binary_to_term(<<131, 120, (atom_ext(Node))/binary, Id:64, Creation:32>>).

atom_ext(Atom) ->
    Text = atom_to_binary(Atom, utf8),
    <<118, (byte_size(Text)):16, Text/binary>>.
