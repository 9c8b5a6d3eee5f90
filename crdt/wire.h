// Phoenix.Tracker.State values as the terms Phoenix peers exchange.
//
// A delta (heartbeats, transfer_acks answered from a delta generation) is
// the State struct itself in :delta mode:
//
//   %{__struct__: Phoenix.Tracker.State, replica: {node, vsn}, context: %{},
//     clouds: %{ref => %{__struct__: MapSet, map: %{tag => []}, version: 2}},
//     values: %{tag => {pid, topic, key, meta}}, pids: nil, mode: :delta,
//     delta: :unset, replicas: %{}, range: {start_ctx, end_ctx}}
//
// A whole state (transfer_acks that no generation covers) is a pair of the
// struct in :normal mode with values: nil, and the values map:
//
//   {%{__struct__: Phoenix.Tracker.State, ..., values: nil, mode: :normal,
//      replicas: %{ref => :up | :down}, range: {%{}, %{}}},
//    %{tag => {pid, topic, key, meta}}}
//
// Atoms: module names are 'Elixir.Phoenix.Tracker.State' and
// 'Elixir.MapSet'; nil is the atom nil. Phoenix pattern-matches these shapes
// and crashes on anything else, so the encoders write exactly them.
//
// Decoders validate every field before building anything: a malformed term
// gives a WireError (what was wrong, and where) and no value. They accept
// exactly the shapes above: all nine struct fields and no others, each of
// the right type; tags {{atom, integer}, integer >= 0}; cloud tags of the
// cloud's own replica; values {pid, topic, key, meta} with a pid and a map
// meta (Phoenix.Tracker.track's guards); MapSet version 2.
//
// Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "crdt/clock.h"
#include "crdt/state.h"
#include "term/term.h"

namespace presence {

enum class WireErrc {
  kNotAStruct,    // not a map with __struct__, or not the {state, values} pair
  kWrongStruct,   // __struct__ is not Phoenix.Tracker.State (or MapSet)
  kMissingField,  // a struct field is absent
  kUnknownField,  // a key that the struct does not have
  kBadReplica,    // not {atom, integer}
  kBadContext,    // not a map of replica => integer >= 0
  kBadClouds,     // not a map of replica => MapSet of that replica's tags
  kBadValues,     // not a map of tag => {pid, topic, key, map}
  kBadTag,        // not {replica, integer >= 0}
  kBadField,      // pids, delta or values of the wrong constant
  kBadMode,       // mode is not the one this shape requires
  kBadReplicas,   // not a map of replica => up | down
  kBadRange,      // not {context, context}
};

const char* to_string(WireErrc code);

struct WireError {
  WireErrc code;
  std::string detail;           // which field, and the offending term (truncated)
  std::string message() const;  // e.g. "bad clouds: ..."
};

// A decoded value or the reason there is none.
template <class T>
class WireResult {
 public:
  WireResult(T value) : result_(std::move(value)) {}
  WireResult(WireError error) : result_(std::move(error)) {}

  bool ok() const { return result_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<0>(result_); }
  T&& value() && { return std::get<0>(std::move(result_)); }
  const WireError& error() const { return std::get<1>(result_); }

 private:
  std::variant<T, WireError> result_;
};

// {node, vsn}
Term encode_replica_ref(const ReplicaRef& ref);
WireResult<ReplicaRef> decode_replica_ref(const Term& term);

// {replica_ref, clock}
Term encode_tag(const Tag& tag);
WireResult<Tag> decode_tag(const Term& term);

// %{replica_ref => clock}
Term encode_context(const Context& context);
WireResult<Context> decode_context(const Term& term);

// {replica_ref, context}: the clocks of heartbeats and transfer requests.
Term encode_replica_clock(const ReplicaClock& clock);
WireResult<ReplicaClock> decode_replica_clock(const Term& term);

// The struct in :delta mode.
Term encode_delta(const Delta& delta);
WireResult<Delta> decode_delta(const Term& term);

// The {struct, values} pair.
Term encode_whole_state(const WholeState& state);
WireResult<WholeState> decode_whole_state(const Term& term);

// Either of the two, as a transfer_ack carries it.
Term encode_extracted(const Extracted& extracted);
WireResult<Extracted> decode_extracted(const Term& term);

}  // namespace presence
