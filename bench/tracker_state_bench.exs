# Times Phoenix.Tracker.State (the Elixir original) on the operations the C++
# CRDT is benchmarked on, on the same data, and prints one line per figure.
#
#   elixir -pa "$PHOENIX_PUBSUB_EBIN" bench/tracker_state_bench.exs
#
# Data shape (the C++ benchmark builds exactly the same presences):
#
#   Replicas   A = {:"a@127.0.0.1", 1} receives; B = {:"b@127.0.0.1", 2} is
#              the source of every presence in the merge and extract figures.
#   Presence i (i = 0, 1, 2, ...):
#     topic    "topic:<rem(i, 100)>"         (100 topics; in a set of 1,000,000
#                                            presences "topic:0" holds 10,000)
#     pid      the remote pid with node :"client@127.0.0.1", id i, serial 0,
#              creation 1 (built from its NEW_PID_EXT encoding), one per presence
#     key      "user:<i>"
#     meta     %{phx_ref: <i as 16 lower-case hex digits, zero-padded>,
#                name: "user <i>"}
#   Presences are joined in order of i. While a set is being built, every
#   10,000 joins the state is compacted and its delta reset, as a shard's
#   broadcasts would do, so that the built state holds no pending delta.
#
# Figures (each the median of several runs; setup is not timed):
#   merge_into_empty      A, which knows B (replica_up) but holds nothing,
#                         merges extract(B -> A) of B's 100,000 presences.
#   merge_into_overlap    A already holds presences 0..49,999 (from merging B's
#                         state when B had only those); A merges extract(B -> A)
#                         of B's 100,000 presences (50% shared).
#   merge_delta           A holds B's 100,000 presences; B joins presences
#                         100,000..100,999 after resetting its delta; A merges
#                         B's delta (1,000 presences).
#   get_by_topic          A holds 1,000,000 presences joined locally;
#                         get_by_topic(A, "topic:0") returns 10,000.
#   extract               extract(B, A, A's context) for a transfer of B's
#                         100,000 presences.
#   bytes_per_presence    (ets memory of the values and pids tables, in words,
#                         plus :erts_debug.size of clouds and context) * word
#                         size / presences, for the 100,000-presence state
#                         after merge_into_empty, and for the 1,000,000 one.
#
# Prints "skipped: PHOENIX_PUBSUB_EBIN is not set" and exits 0 when that
# variable is unset.

# The module below names Phoenix.Tracker.State's struct, so the check comes
# before it is compiled.
ebin = System.get_env("PHOENIX_PUBSUB_EBIN", "")

if ebin == "" do
  IO.puts("skipped: PHOENIX_PUBSUB_EBIN is not set")
  System.halt(0)
end

Code.prepend_path(ebin)

unless Code.ensure_loaded?(Phoenix.Tracker.State) do
  IO.puts(:stderr, "Phoenix.Tracker.State not found in #{ebin}")
  System.halt(1)
end

defmodule TrackerStateBench do
  alias Phoenix.Tracker.State

  @replica_a {:"a@127.0.0.1", 1}
  @replica_b {:"b@127.0.0.1", 2}
  @client_node "client@127.0.0.1"
  @topics 100
  @batch 10_000
  @runs 9

  def run do
    report_merge_into_empty()
    report_merge_into_overlap()
    report_merge_delta()
    report_extract()
    report_get_by_topic()
  end

  # ---------------------------------------------------------------------------
  # Figures

  defp report_merge_into_empty do
    source = build(@replica_b, :bench_b, 100_000)

    times =
      for _ <- 1..@runs do
        {micros, merged} = merge_all(source)
        100_000 = :ets.info(merged.values, :size)
        drop(merged)
        micros
      end

    print("merge_into_empty", "presences=100000", times)
    {_micros, merged} = merge_all(source)
    print_memory("bytes_per_presence", merged, 100_000)
    drop(merged)
    drop(source)
  end

  defp report_merge_into_overlap do
    times =
      for _ <- 1..@runs do
        half = build(@replica_b, :bench_b, 50_000)
        receiver = knowing_b(:bench_a)

        {receiver, _, _} =
          State.merge(receiver, State.extract(half, @replica_a, receiver.context))

        source = join_range(half, 50_000, 100_000)
        transfer = State.extract(source, @replica_a, receiver.context)
        {micros, {merged, joins, []}} = timed(fn -> State.merge(receiver, transfer) end)
        {50_000, 100_000} = {length(joins), :ets.info(merged.values, :size)}
        drop(merged)
        drop(source)
        micros
      end

    print("merge_into_overlap", "presences=100000 shared=50000", times)
  end

  defp report_merge_delta do
    times =
      for _ <- 1..@runs do
        source = build(@replica_b, :bench_b, 100_000)
        {_micros, receiver} = merge_all(source)
        source = source |> State.reset_delta() |> join_each(100_000..100_999)
        delta = State.extract(source.delta, @replica_a, receiver.context)
        {micros, {merged, joins, []}} = timed(fn -> State.merge(receiver, delta) end)
        {1_000, 101_000} = {length(joins), :ets.info(merged.values, :size)}
        drop(merged)
        drop(source)
        micros
      end

    print("merge_delta", "state=100000 delta=1000", times)
  end

  defp report_extract do
    source = build(@replica_b, :bench_b, 100_000)
    receiver = knowing_b(:bench_a)

    times =
      for _ <- 1..@runs do
        {micros, {_state, values}} =
          timed(fn -> State.extract(source, @replica_a, receiver.context) end)

        100_000 = map_size(values)
        micros
      end

    print("extract", "presences=100000", times)
    drop(source)
    drop(receiver)
  end

  defp report_get_by_topic do
    state = build(@replica_a, :bench_a, 1_000_000)

    times =
      for _ <- 1..@runs do
        {micros, list} = timed(fn -> State.get_by_topic(state, "topic:0") end)
        10_000 = length(list)
        micros
      end

    print("get_by_topic", "presences=1000000 topic_size=10000", times)
    print_memory("bytes_per_presence", state, 1_000_000)
    drop(state)
  end

  # ---------------------------------------------------------------------------
  # Data

  defp presence(i) do
    pid = pid(i)
    topic = "topic:" <> Integer.to_string(rem(i, @topics))
    key = "user:" <> Integer.to_string(i)
    ref = i |> Integer.to_string(16) |> String.downcase() |> String.pad_leading(16, "0")
    {pid, topic, key, %{phx_ref: ref, name: "user " <> Integer.to_string(i)}}
  end

  # NEW_PID_EXT: tag 88, the node as ATOM_UTF8_EXT, id, serial, creation.
  defp pid(i) do
    node = @client_node

    :erlang.binary_to_term(
      <<131, 88, 118, byte_size(node)::16, node::binary, i::32, 0::32, 1::32>>
    )
  end

  defp build(replica, table, count) do
    replica |> State.new(table) |> join_range(0, count)
  end

  # Joins presences from..to-1, compacting and resetting the delta after every
  # @batch joins.
  defp join_range(state, from, to) when from >= to, do: state

  defp join_range(state, from, to) do
    batch_end = min(to, (div(from, @batch) + 1) * @batch)
    state = join_each(state, from..(batch_end - 1))
    join_range(state |> State.compact() |> State.reset_delta(), batch_end, to)
  end

  defp join_each(state, range) do
    Enum.reduce(range, state, fn i, acc ->
      {pid, topic, key, meta} = presence(i)
      State.join(acc, pid, topic, key, meta)
    end)
  end

  defp knowing_b(table) do
    {state, _, _} = State.replica_up(State.new(@replica_a, table), @replica_b)
    state
  end

  # A fresh A that knows B merges B's whole state; only the merge is timed.
  defp merge_all(source) do
    receiver = knowing_b(:bench_a)
    transfer = State.extract(source, @replica_a, receiver.context)
    {micros, {merged, _joins, _leaves}} = timed(fn -> State.merge(receiver, transfer) end)
    {micros, merged}
  end

  defp drop(%State{values: values, pids: pids}) do
    if is_reference(values) or is_atom(values), do: safe_delete(values)
    if is_reference(pids) or is_atom(pids), do: safe_delete(pids)
    :ok
  end

  defp safe_delete(table) do
    if :ets.info(table) != :undefined, do: :ets.delete(table)
  end

  # ---------------------------------------------------------------------------
  # Measuring

  defp timed(fun) do
    :erlang.garbage_collect()
    :timer.tc(fun)
  end

  defp print(name, shape, micros) do
    sorted = Enum.sort(micros)
    median = Enum.at(sorted, div(length(sorted), 2))
    runs = Enum.map_join(sorted, ",", &format_ms/1)
    IO.puts("#{name} #{shape} median_ms=#{format_ms(median)} runs_ms=#{runs}")
  end

  defp format_ms(micros), do: :erlang.float_to_binary(micros / 1000, decimals: 2)

  defp print_memory(name, %State{} = state, count) do
    word = :erlang.system_info(:wordsize)
    ets_words = :ets.info(state.values, :memory) + :ets.info(state.pids, :memory)
    term_words = :erts_debug.size(state.clouds) + :erts_debug.size(state.context)
    bytes = (ets_words + term_words) * word

    IO.puts(
      "#{name} presences=#{count} bytes=#{:erlang.float_to_binary(bytes / count, decimals: 1)} " <>
        "ets_words=#{ets_words} clouds_context_words=#{term_words}"
    )
  end
end

TrackerStateBench.run()
