// Phoenix.Tracker.State: the presence CRDT of one tracker shard.
//
// Data model, in Phoenix's vocabulary (see crdt/clock.h for replica, clock,
// tag and context):
//
//   presence  {topic, pid, key} => meta, stamped with the tag of the event
//             that created it. (topic, pid, key) is unique in a state.
//   context   what this replica has seen contiguously from every replica.
//   clouds    replica => clocks seen beyond (or not yet folded into) the
//             context: the "dots". compact() folds contiguous ones into the
//             context. A replica may have an empty cloud; its entry still
//             travels on the wire.
//   values    the presences themselves (Phoenix keeps them in ETS).
//   replicas  replica => up | down. Presences of down replicas stay stored
//             but are hidden from lists and from clocks().
//   delta     the local changes since the last reset_delta(): a Delta whose
//             clouds hold the tags of joins and leaves, whose values hold
//             the joins still present, and whose range says which span of
//             the context the changes cover.
//
// Operations: join bumps the own clock and stamps the presence with it;
// leave removes the presence, keeps its tag in the delta's clouds (so remote
// replicas observe the removal) and bumps the clock; leave_join is an update
// (leave + join in one step). merge() folds a remote delta or a remote whole
// state in: remote values whose tag is unseen here (and whose replica is
// known here) are added; local values of other replicas that the remote has
// seen but no longer holds are removed.
//
// Threading: a State (and a Delta, a WholeState) is a plain value with no
// internal locking; callers serialize all access to one instance (the
// tracker shard owns it on one thread), const calls included: topic lists
// keep each topic's sort order until the topic changes. Copies are
// independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "crdt/clock.h"
#include "crdt/presence_table.h"
#include "crdt/values.h"
#include "term/term.h"

namespace presence {

enum class ReplicaStatus : std::uint8_t { kUp, kDown };
using Replicas = std::map<ReplicaRef, ReplicaStatus>;

// The clocks of one replica's events that a cloud holds. Clouds are small
// and short-lived (compact() empties them after every contiguous run), so an
// ordered set suits them: compaction walks them in clock order.
using Cloud = std::set<Clock>;
// replica => cloud; every tag in clouds[r] has replica r.
using Clouds = std::map<ReplicaRef, Cloud>;

// A delta's span: the context before its first event and after its last.
struct Range {
  Context start;
  Context end;
  friend bool operator==(const Range&, const Range&) = default;
};

// A presence as the state lists it: {{topic, pid, key}, meta, tag}.
struct Presence {
  Term topic;
  Term pid;
  Term key;
  Term meta;
  Tag tag;
  friend bool operator==(const Presence&, const Presence&) = default;
};

struct KeyMeta {
  Term key;
  Term meta;
  friend bool operator==(const KeyMeta&, const KeyMeta&) = default;
};

struct PidMeta {
  Term pid;
  Term meta;
  friend bool operator==(const PidMeta&, const PidMeta&) = default;
};

// A State in Phoenix's :delta mode: the local changes of a span of time, or
// a merge of several such spans (a delta generation), or what a remote
// replica sent in a heartbeat or a transfer_ack.
struct Delta {
  ReplicaRef replica;
  Context context;  // empty in every delta Phoenix makes; kept for the wire
  Clouds clouds;
  Values values;
  Replicas replicas;  // empty in every delta Phoenix makes; kept for the wire
  Range range;
  friend bool operator==(const Delta&, const Delta&) = default;
};

// A whole state as extract() produces it for a transfer: Phoenix's
// {%State{mode: :normal, values: nil}, values}.
struct WholeState {
  ReplicaRef replica;
  Context context;
  Clouds clouds;
  Replicas replicas;
  Range range;  // {%{}, %{}}: a normal-mode state never moves its range
  Values values;
  friend bool operator==(const WholeState&, const WholeState&) = default;
};

// What a transfer_ack carries: a delta generation or the whole state.
using Extracted = std::variant<Delta, WholeState>;

// Presences that appeared and disappeared through a merge, in no particular
// order. An update arriving from a remote replica shows as a leave of the
// old value and a join of the new one.
struct MergeResult {
  std::vector<Presence> joins;
  std::vector<Presence> leaves;
};

// Number of values plus number of cloud tags (State.delta_size).
std::size_t delta_size(const Delta& delta);

// The part of a delta a remote replica can use (State.extract on a delta):
// values of replicas the remote context knows, except values tagged by
// remote_ref itself; clouds and range restricted to the known replicas.
// (Phoenix's shard passes only the asker's node name as remote_ref, which
// never equals a replica ref, so Phoenix peers do send an asker its own
// values; the asker ignores them on merge either way.)
Delta extract(const Delta& delta, const ReplicaRef& remote_ref, const Context& remote_context);

// Joins two deltas into one covering both ranges (State.merge_deltas), or
// nullopt when their ranges are not contiguous (neither reaches the other).
// Local values the remote has seen removed are dropped; remote values the
// local delta has not seen are added. The result keeps local's replica,
// context and replicas. Costs O(size of both).
std::optional<Delta> merge_deltas(const Delta& local, const Delta& remote);

// Drops a permanently gone replica from a delta: its range entries, its
// cloud and its values.
void remove_down_replicas(Delta* delta, const ReplicaRef& replica);

// A delta as reset_delta() makes it: no changes, range {ctx, ctx} where ctx
// holds only the replica's own clock.
Delta empty_delta(const ReplicaRef& replica, Clock own_clock);

class State {
 public:
  // State.new: context {replica => 0}, replicas {replica => up}, an empty
  // delta.
  explicit State(ReplicaRef replica);

  const ReplicaRef& replica() const { return replica_; }
  const Context& context() const { return context_; }
  const Clouds& clouds() const { return clouds_; }
  const Replicas& replicas() const { return replicas_; }
  // All stored presences, including those of down replicas.
  std::size_t size() const { return values_.size(); }

  // {replica, context without the down replicas}: what heartbeats and
  // transfer requests carry. Down replicas are left out because deltas leave
  // them out too; otherwise a replica that came up after one went down
  // would look dominated by this one and keep asking for full transfers.
  ReplicaClock clocks() const;

  // Local changes. pid/topic/key/meta are any terms (Phoenix: a pid, a
  // binary topic, any key, a map meta).
  //
  // join: tracks a new presence stamped with a fresh tag, which it returns.
  // Returns nullopt and changes nothing when (topic, pid, key) is already
  // tracked (Phoenix's shard checks get_by_pid first; use leave_join to
  // change meta).
  std::optional<Tag> join(const Term& pid, const Term& topic, const Term& key, Term meta);
  // Replaces the meta of a tracked presence: the old tag is recorded as
  // removed and the presence gets a new tag (two clock bumps), which it
  // returns. nullopt and no change when the presence is not tracked.
  std::optional<Tag> leave_join(const Term& pid, const Term& topic, const Term& key, Term meta);
  // Untracks one presence and returns it; nullopt when it was not tracked.
  std::optional<Presence> leave(const Term& pid, const Term& topic, const Term& key);
  // Untracks every presence of pid and returns them (sorted as get_by_pid).
  std::vector<Presence> leave(const Term& pid);

  // Queries. Lists exclude presences of down replicas unless said otherwise,
  // and come in Phoenix's order (its values table is an ordered set keyed by
  // {topic, pid, key}). Each costs O(r log r) for a result of r presences
  // (for the filtered lists, r counts the hidden ones too), independent of
  // the size of the state; listing a topic that has not changed since its
  // last list costs O(r).
  //
  // Every presence of up replicas, sorted by (topic, pid, key).
  std::vector<Presence> online_list() const;
  // {key, meta} of a topic's presences, sorted by (pid, key).
  std::vector<KeyMeta> get_by_topic(const Term& topic) const;
  // As get_by_topic but including down replicas (State.tracked_values with
  // no down replicas: what Phoenix's dirty_list reads).
  std::vector<KeyMeta> tracked_values(const Term& topic) const;
  // {pid, meta} of the presences of (topic, key), sorted by pid.
  std::vector<PidMeta> get_by_key(const Term& topic, const Term& key) const;
  // The presence (topic, pid, key), whatever its replica's status.
  std::optional<Presence> get_by_pid(const Term& pid, const Term& topic, const Term& key) const;
  // Every presence of pid, whatever its replica's status, sorted by
  // (topic, key).
  std::vector<Presence> get_by_pid(const Term& pid) const;

  // The local delta.
  bool has_delta() const;  // true when the delta's clouds hold any tag
  const Delta& delta() const { return delta_; }
  void reset_delta();

  // A whole-state transfer for a remote replica (State.extract, normal
  // mode): context and clouds restricted to the replicas remote_context
  // knows; values of those replicas except those tagged by remote_ref (see
  // extract(Delta) on why Phoenix peers never match it); replicas and range
  // as they are. Costs O(presences of the known replicas).
  WholeState extract(const ReplicaRef& remote_ref, const Context& remote_context) const;

  // Folds a remote delta or whole state in (State.merge) and compacts.
  // Values of replicas missing from this context are ignored (a replica
  // becomes known through replica_up). Costs O(remote values + remote
  // cloud tags + local presences of the replicas in the remote context): for
  // a delta, whose context is empty, that is the size of the delta.
  // Removals are also recorded in the local delta, as Phoenix does.
  MergeResult merge(const Delta& remote);
  MergeResult merge(const WholeState& remote);

  // Marks a replica up, adding it to the context at clock 0 if new, and
  // returns its stored presences, which reappear in lists (sorted by
  // (topic, pid, key)).
  std::vector<Presence> replica_up(const ReplicaRef& replica);
  // Marks a replica down and returns its presences, which lists now hide.
  std::vector<Presence> replica_down(const ReplicaRef& replica);
  // Deletes everything of a permanently gone replica: its presences, its
  // context entry and cloud, and its part of the local delta. Its entry in
  // replicas() stays (as in Phoenix), so it stays hidden if it reappears.
  void remove_down_replicas(const ReplicaRef& replica);

  // Folds every cloud's contiguous clocks into the context (and drops those
  // already covered). Clouds stay in the map, possibly empty.
  void compact();

 private:
  using Id = PresenceTable::Id;

  MergeResult merge(const Context& remote_context, const Clouds& remote_clouds,
                    const Values& remote_values);
  // Number of joins per replica, replicas in the order of their first join.
  using JoinCounts = std::vector<std::pair<ReplicaRef, std::size_t>>;
  // The remote values that are new here.
  std::vector<const Values::value_type*> collect_joins(const Values& remote_values,
                                                       JoinCounts* per_replica) const;
  // Adds the selected values to the table, and to *joins as presences.
  void put_joins(const std::vector<const Values::value_type*>& joining,
                 std::vector<Presence>* joins);
  std::vector<Id> collect_leaves(const Context& remote_context, const Clouds& remote_clouds,
                                 const Values& remote_values) const;
  // Room in the presence table for the joins of a merge.
  void reserve_joins(std::size_t count, const JoinCounts& per_replica);
  void union_clouds(const Clouds& remote_clouds);
  void bump_clock();
  // Phoenix's put_context: the delta's range ends at the own clock.
  void sync_delta_end();
  void remove(Id id);
  bool seen(const Tag& tag) const;
  Clock own_clock() const;

  Presence presence_of(Id id) const;
  std::vector<Presence> presences_of(const std::vector<Id>& ids) const;
  // {key, meta} of sorted ids; with drop_hidden, without those of down
  // replicas.
  std::vector<KeyMeta> key_metas(const std::vector<Id>& sorted, bool drop_hidden) const;
  std::vector<Presence> replica_users(const ReplicaRef& replica) const;

  ReplicaRef replica_;
  Context context_;
  Clouds clouds_;
  Replicas replicas_;
  PresenceTable values_;
  Delta delta_;
};

}  // namespace presence
