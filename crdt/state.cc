#include "crdt/state.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "term/prefetch.h"

namespace presence {

namespace {

using Id = PresenceTable::Id;

bool in_context(const Context& context, const Tag& tag) {
  auto it = context.find(tag.replica);
  return it != context.end() && it->second >= tag.clock;
}

bool in_clouds(const Clouds& clouds, const Tag& tag) {
  auto it = clouds.find(tag.replica);
  return it != clouds.end() && it->second.contains(tag.clock);
}

// Phoenix's in?/3: the event is covered by the context or is a cloud dot.
bool seen_by(const Context& context, const Clouds& clouds, const Tag& tag) {
  return in_context(context, tag) || in_clouds(clouds, tag);
}

void put_tag(Clouds* clouds, const Tag& tag) {
  (*clouds)[tag.replica].insert(tag.clock);
}

void delete_tag(Clouds* clouds, const Tag& tag) {
  auto it = clouds->find(tag.replica);
  if (it != clouds->end()) it->second.erase(tag.clock);
}

// The count of a replica in a list of join counts, added as 0 when absent.
// The reference lasts until the next addition.
std::size_t& join_count(std::vector<std::pair<ReplicaRef, std::size_t>>* counts,
                        const ReplicaRef& replica) {
  auto it = std::find_if(counts->begin(), counts->end(),
                         [&](const auto& entry) { return entry.first == replica; });
  if (it != counts->end()) return it->second;
  return counts->emplace_back(replica, 0).second;
}

// Records a removal in a delta: the tag becomes a dot, the value goes.
void remove_delta_tag(Delta* delta, const Tag& tag) {
  put_tag(&delta->clouds, tag);
  delta->values.erase(tag);
}

void union_into(Cloud* into, const Cloud& from) {
  into->insert(from.begin(), from.end());
}

template <class Map>
Map take(const Map& map, const Context& keys_of) {
  Map taken;
  for (const auto& entry : keys_of) {
    auto it = map.find(entry.first);
    if (it != map.end()) taken.insert(*it);
  }
  return taken;
}

Context own_entry(const Context& context, const ReplicaRef& replica) {
  Context taken;
  auto it = context.find(replica);
  if (it != context.end()) taken.insert(*it);
  return taken;
}

}  // namespace

std::size_t delta_size(const Delta& delta) {
  std::size_t size = delta.values.size();
  for (const auto& entry : delta.clouds) size += entry.second.size();
  return size;
}

Delta extract(const Delta& delta, const ReplicaRef& remote_ref, const Context& remote_context) {
  Delta extracted;
  extracted.replica = delta.replica;
  extracted.context = delta.context;
  extracted.replicas = delta.replicas;
  extracted.clouds = take(delta.clouds, remote_context);
  extracted.range = {take(delta.range.start, remote_context),
                     take(delta.range.end, remote_context)};
  for (const auto& [tag, value] : delta.values) {
    if (tag.replica != remote_ref && remote_context.contains(tag.replica)) {
      extracted.values.emplace(tag, value);
    }
  }
  return extracted;
}

std::optional<Delta> merge_deltas(const Delta& local, const Delta& remote) {
  // Phoenix tests (a and b) or (b and a): the same condition twice.
  const bool contiguous = dominates_or_equal(remote.range.end, local.range.start) &&
                          dominates_or_equal(local.range.end, remote.range.start);
  if (!contiguous) return std::nullopt;

  Delta merged;
  merged.replica = local.replica;
  merged.context = local.context;
  merged.replicas = local.replicas;
  merged.range = {lowerbound(local.range.start, remote.range.start),
                  upperbound(local.range.end, remote.range.end)};
  // Deltas union every cloud: unlike a state, a delta knows no replica set.
  merged.clouds = local.clouds;
  for (const auto& [replica, cloud] : remote.clouds) union_into(&merged.clouds[replica], cloud);

  merged.values.reserve(local.values.size() + remote.values.size());
  for (const auto& [tag, value] : local.values) {
    if (remote.values.contains(tag) || !seen_by(remote.context, remote.clouds, tag)) {
      merged.values.emplace(tag, value);
    }
  }
  for (const auto& [tag, value] : remote.values) {
    if (!local.values.contains(tag) && !seen_by(local.context, local.clouds, tag)) {
      merged.values.emplace(tag, value);
    }
  }
  return merged;
}

void remove_down_replicas(Delta* delta, const ReplicaRef& replica) {
  delta->range.start.erase(replica);
  delta->range.end.erase(replica);
  delta->clouds.erase(replica);
  delta->values.erase_if([&](const auto& entry) { return entry.first.replica == replica; });
}

Delta empty_delta(const ReplicaRef& replica, Clock own_clock) {
  Delta delta;
  delta.replica = replica;
  delta.range.start = {{replica, own_clock}};
  delta.range.end = delta.range.start;
  return delta;
}

State::State(ReplicaRef replica)
    : replica_(std::move(replica)),
      context_{{replica_, 0}},
      replicas_{{replica_, ReplicaStatus::kUp}} {
  reset_delta();
}

ReplicaClock State::clocks() const {
  ReplicaClock clock{replica_, context_};
  for (const auto& [replica, status] : replicas_) {
    if (status == ReplicaStatus::kDown) clock.context.erase(replica);
  }
  return clock;
}

std::optional<Tag> State::join(const Term& pid, const Term& topic, const Term& key, Term meta) {
  if (values_.find(topic, pid, key) != PresenceTable::kNone) return std::nullopt;
  bump_clock();
  const Tag tag{replica_, own_clock()};
  const Id id = values_.insert(topic, pid, key, meta, tag);
  // The delta shares the stored payloads (the table may have deduplicated
  // pid and key).
  delta_.values[tag] = {values_.pid(id), values_.topic(id), values_.key(id), std::move(meta)};
  return tag;
}

std::optional<Tag> State::leave_join(const Term& pid, const Term& topic, const Term& key,
                                     Term meta) {
  const Id id = values_.find(topic, pid, key);
  if (id == PresenceTable::kNone) return std::nullopt;
  const Tag old_tag = values_.tag(id);
  delete_tag(&clouds_, old_tag);
  remove_delta_tag(&delta_, old_tag);
  bump_clock();

  bump_clock();
  const Tag tag{replica_, own_clock()};
  values_.update(id, meta, tag);
  delta_.values[tag] = {values_.pid(id), values_.topic(id), values_.key(id), std::move(meta)};
  return tag;
}

std::optional<Presence> State::leave(const Term& pid, const Term& topic, const Term& key) {
  const Id id = values_.find(topic, pid, key);
  if (id == PresenceTable::kNone) return std::nullopt;
  Presence removed = presence_of(id);
  remove(id);
  return removed;
}

std::vector<Presence> State::leave(const Term& pid) {
  std::vector<Id> ids = values_.by_pid(pid);
  values_.sort(&ids);
  std::vector<Presence> removed = presences_of(ids);
  for (Id id : ids) remove(id);
  return removed;
}

std::vector<Presence> State::online_list() const {
  std::vector<Id> ids = values_.online();
  values_.sort(&ids);
  return presences_of(ids);
}

std::vector<KeyMeta> State::get_by_topic(const Term& topic) const {
  return key_metas(values_.sorted_topic(topic), /*drop_hidden=*/true);
}

std::vector<KeyMeta> State::tracked_values(const Term& topic) const {
  return key_metas(values_.sorted_topic(topic), /*drop_hidden=*/false);
}

std::vector<PidMeta> State::get_by_key(const Term& topic, const Term& key) const {
  std::vector<Id> ids = values_.by_topic_key(topic, key);
  values_.sort(&ids, /*drop_hidden=*/true);
  std::vector<PidMeta> result;
  result.reserve(ids.size());
  for (Id id : ids) result.push_back({values_.pid(id), values_.meta(id)});
  return result;
}

std::optional<Presence> State::get_by_pid(const Term& pid, const Term& topic,
                                          const Term& key) const {
  const Id id = values_.find(topic, pid, key);
  if (id == PresenceTable::kNone) return std::nullopt;
  return presence_of(id);
}

std::vector<Presence> State::get_by_pid(const Term& pid) const {
  std::vector<Id> ids = values_.by_pid(pid);
  values_.sort(&ids);
  return presences_of(ids);
}

bool State::has_delta() const {
  return std::any_of(delta_.clouds.begin(), delta_.clouds.end(),
                     [](const auto& entry) { return !entry.second.empty(); });
}

void State::reset_delta() {
  delta_ = Delta{};
  delta_.replica = replica_;
  delta_.range.start = own_entry(context_, replica_);
  delta_.range.end = delta_.range.start;
}

WholeState State::extract(const ReplicaRef& remote_ref, const Context& remote_context) const {
  WholeState whole;
  whole.replica = replica_;
  whole.context = take(context_, remote_context);
  whole.clouds = take(clouds_, remote_context);
  whole.replicas = replicas_;
  std::size_t count = 0;
  std::vector<Id> slots;
  for (const auto& entry : remote_context) {
    const Id slot = values_.find_replica(entry.first);
    if (entry.first == remote_ref || slot == PresenceTable::kNone) continue;
    count += values_.count(entry.first);
    slots.push_back(slot);
  }
  whole.values.reserve(count);
  values_.for_each_of(slots, [&](Id id) {
    whole.values.emplace_new(
        values_.tag(id), {values_.pid(id), values_.topic(id), values_.key(id), values_.meta(id)});
  });
  return whole;
}

MergeResult State::merge(const Delta& remote) {
  return merge(remote.context, remote.clouds, remote.values);
}

MergeResult State::merge(const WholeState& remote) {
  return merge(remote.context, remote.clouds, remote.values);
}

std::vector<Presence> State::replica_up(const ReplicaRef& replica) {
  context_.emplace(replica, 0);
  replicas_[replica] = ReplicaStatus::kUp;
  values_.set_down(replica, false);
  return replica_users(replica);
}

std::vector<Presence> State::replica_down(const ReplicaRef& replica) {
  replicas_[replica] = ReplicaStatus::kDown;
  values_.set_down(replica, true);
  return replica_users(replica);
}

void State::remove_down_replicas(const ReplicaRef& replica) {
  context_.erase(replica);
  values_.erase_replica(replica);
  clouds_.erase(replica);
  presence::remove_down_replicas(&delta_, replica);
}

void State::compact() {
  for (auto& [replica, cloud] : clouds_) {
    // Clouds only ever hold replicas of the context (union_clouds takes no
    // others, local tags are the own replica's), so Phoenix's clause that
    // starts an unknown replica at clock 1 has nothing to do here.
    auto known = context_.find(replica);
    assert(known != context_.end());
    if (known == context_.end()) continue;
    for (auto it = cloud.begin(); it != cloud.end();) {
      if (*it == known->second + 1) {
        known->second = *it;
      } else if (*it > known->second) {
        ++it;
        continue;
      }
      it = cloud.erase(it);
    }
  }
  sync_delta_end();
}

MergeResult State::merge(const Context& remote_context, const Clouds& remote_clouds,
                         const Values& remote_values) {
  // Both selections read the table as it was before the merge.
  JoinCounts joins_per_replica;
  const std::vector<const Values::value_type*> joining =
      collect_joins(remote_values, &joins_per_replica);
  const std::vector<Id> leave_ids = collect_leaves(remote_context, remote_clouds, remote_values);

  MergeResult result;
  union_clouds(remote_clouds);
  result.leaves = presences_of(leave_ids);
  for (const Presence& left : result.leaves) {
    delete_tag(&clouds_, left.tag);
    remove_delta_tag(&delta_, left.tag);
  }

  // A join of a key that is also leaving (a remote update) replaces the
  // record in place, as Phoenix's ETS insert does; other leaves go.
  reserve_joins(joining.size(), joins_per_replica);
  result.joins.reserve(joining.size());
  put_joins(joining, &result.joins);
  for (std::size_t i = 0; i < leave_ids.size(); ++i) {
    if (values_.tag(leave_ids[i]) == result.leaves[i].tag) values_.erase(leave_ids[i]);
  }

  for (const auto& [replica, clock] : remote_context) {
    auto it = context_.find(replica);
    if (it != context_.end()) it->second = std::max(it->second, clock);
  }
  sync_delta_end();
  compact();
  return result;
}

void State::put_joins(const std::vector<const Values::value_type*>& joining,
                      std::vector<Presence>* joins) {
  // Each put misses the cache in several indexes; asking for the slots of a
  // put some joins ahead lets those misses overlap. The hashes computed for
  // that are kept for the put, in a ring twice as long as the look-ahead so
  // that a put reads its entry in place while later ones are written.
  constexpr std::size_t kAhead = 8;
  constexpr std::size_t kRing = 2 * kAhead;
  const std::size_t count = joining.size();
  const ReplicaRef* last_replica = nullptr;
  Id last_slot = PresenceTable::kNone;
  auto slot_of = [&](const ReplicaRef& replica) {
    if (last_replica == nullptr || replica != *last_replica) {
      last_replica = &replica;
      last_slot = values_.intern_replica(replica);
    }
    return last_slot;
  };
  PresenceTable::Hashed ahead[kRing];
  auto look_ahead = [&](std::size_t i) {
    // The values a few joins further on, whose terms the next look ahead
    // reads, and the meta that the put and the copy for joins count.
    if (i + kAhead < count) prefetch_read(joining[i + kAhead]);
    const auto& [tag, value] = *joining[i];
    value.meta.prefetch_node();
    // Built in place: a copy of a whole Hashed would read back fields just
    // written, which stalls the loop far more than the copy costs.
    PresenceTable::Hashed* hashed = &ahead[i % kRing];
    hashed->set(value.topic, value.pid, value.key);
    values_.prefetch(hashed, slot_of(tag.replica), tag.clock);
  };
  for (std::size_t i = 0; i < std::min(kAhead, count); ++i) look_ahead(i);
  for (std::size_t i = 0; i < count; ++i) {
    if (i + kAhead < count) look_ahead(i + kAhead);
    const auto& [tag, value] = *joining[i];
    auto [stored_meta, joined_meta] = value.meta.copy_twice();
    values_.put(ahead[i % kRing], std::move(stored_meta), slot_of(tag.replica), tag.clock);
    joins->emplace_back(value.topic, value.pid, value.key, std::move(joined_meta), tag);
  }
}

std::vector<const Values::value_type*> State::collect_joins(const Values& remote_values,
                                                            JoinCounts* per_replica) const {
  std::vector<const Values::value_type*> joins;
  joins.reserve(remote_values.size());
  // Values come grouped by replica more often than not: what is known of the
  // replica is looked up once per run, and its count once per run of joins.
  const ReplicaRef* replica = nullptr;
  const Clock* known = nullptr;  // the replica's context clock; null when unknown
  const Cloud* cloud = nullptr;
  Id slot = PresenceTable::kNone;
  std::size_t* run_count = nullptr;  // the replica's join count, once it has a join
  for (const Values::value_type& entry : remote_values) {
    const Tag& tag = entry.first;
    if (replica == nullptr || tag.replica != *replica) {
      replica = &tag.replica;
      auto in_context = context_.find(tag.replica);
      known = in_context == context_.end() ? nullptr : &in_context->second;
      auto in_clouds = clouds_.find(tag.replica);
      cloud = in_clouds == clouds_.end() ? nullptr : &in_clouds->second;
      slot = values_.find_replica(tag.replica);
      run_count = nullptr;
    }
    if (known == nullptr || tag.clock <= *known) continue;
    if (cloud != nullptr && cloud->contains(tag.clock)) continue;
    // A tag names one presence: a value whose tag is stored already is not
    // new, even if a peer failed to list that tag as seen.
    if (slot != PresenceTable::kNone && values_.find(slot, tag.clock) != PresenceTable::kNone) {
      continue;
    }
    joins.push_back(&entry);
    if (run_count == nullptr) run_count = &join_count(per_replica, tag.replica);
    ++*run_count;
  }
  return joins;
}

std::vector<Id> State::collect_leaves(const Context& remote_context, const Clouds& remote_clouds,
                                      const Values& remote_values) const {
  // Phoenix scans every local value of other replicas; only those whose tag
  // the remote context or clouds cover can leave, so this visits just the
  // replicas of the remote context and the tags of the remote clouds.
  std::vector<Id> leaves;
  std::vector<Id> slots;
  std::vector<Clock> seen_up_to;  // by slot: the remote context's clock
  for (const auto& [replica, clock] : remote_context) {
    const Id slot = values_.find_replica(replica);
    if (replica == replica_ || slot == PresenceTable::kNone) continue;
    slots.push_back(slot);
    if (seen_up_to.size() <= slot) seen_up_to.resize(slot + 1);
    seen_up_to[slot] = clock;
  }
  values_.for_each_of(slots, [&](Id id) {
    const Clock stored = values_.clock(id);
    if (stored <= seen_up_to[values_.replica_slot(id)] &&
        !remote_values.contains(values_.tag(id))) {
      leaves.push_back(id);
    }
  });
  for (const auto& [replica, cloud] : remote_clouds) {
    if (replica == replica_) continue;
    for (Clock clock : cloud) {
      const Tag tag{replica, clock};
      if (in_context(remote_context, tag) || remote_values.contains(tag)) continue;
      const Id id = values_.find(tag);
      if (id != PresenceTable::kNone) leaves.push_back(id);
    }
  }
  return leaves;
}

void State::reserve_joins(std::size_t count, const JoinCounts& per_replica) {
  values_.reserve(count);
  for (const auto& [replica, joins] : per_replica) {
    values_.reserve(values_.intern_replica(replica), joins);
  }
}

void State::union_clouds(const Clouds& remote_clouds) {
  // A state only takes in the clouds of replicas its context knows.
  for (const auto& [replica, cloud] : remote_clouds) {
    if (context_.contains(replica)) union_into(&clouds_[replica], cloud);
  }
}

void State::bump_clock() {
  const Clock clock = ++context_[replica_];
  const Tag tag{replica_, clock};
  put_tag(&clouds_, tag);
  put_tag(&delta_.clouds, tag);
  delta_.range.end[replica_] = clock;
}

void State::sync_delta_end() {
  delta_.range.end[replica_] = own_clock();
}

void State::remove(Id id) {
  const Tag tag = values_.tag(id);
  values_.erase(id);
  delete_tag(&clouds_, tag);
  remove_delta_tag(&delta_, tag);
  bump_clock();
}

bool State::seen(const Tag& tag) const {
  return seen_by(context_, clouds_, tag);
}

Clock State::own_clock() const {
  auto it = context_.find(replica_);
  return it == context_.end() ? 0 : it->second;
}

Presence State::presence_of(Id id) const {
  return {values_.topic(id), values_.pid(id), values_.key(id), values_.meta(id), values_.tag(id)};
}

std::vector<Presence> State::presences_of(const std::vector<Id>& ids) const {
  std::vector<Presence> presences;
  presences.reserve(ids.size());
  for (Id id : ids) presences.push_back(presence_of(id));
  return presences;
}

std::vector<KeyMeta> State::key_metas(const std::vector<Id>& sorted, bool drop_hidden) const {
  std::vector<KeyMeta> result;
  result.reserve(sorted.size());
  // The records are read in sorted order, all over the table, and each meta
  // copy writes to the meta's node: loading records some way ahead, and the
  // nodes they point to nearer, overlaps both kinds of cache miss.
  constexpr std::size_t kRecordsAhead = 16;
  constexpr std::size_t kMetasAhead = 8;
  const std::size_t count = sorted.size();
  for (std::size_t i = 0; i < std::min(count, kRecordsAhead); ++i) values_.prefetch(sorted[i]);
  for (std::size_t i = 0; i < std::min(count, kMetasAhead); ++i) values_.prefetch_meta(sorted[i]);
  for (std::size_t i = 0; i < count; ++i) {
    if (i + kRecordsAhead < count) values_.prefetch(sorted[i + kRecordsAhead]);
    if (i + kMetasAhead < count) values_.prefetch_meta(sorted[i + kMetasAhead]);
    const Id id = sorted[i];
    if (!drop_hidden || !values_.hidden(id)) result.push_back({values_.key(id), values_.meta(id)});
  }
  return result;
}

std::vector<Presence> State::replica_users(const ReplicaRef& replica) const {
  std::vector<Id> ids = values_.by_replica(replica);
  values_.sort(&ids);
  return presences_of(ids);
}

}  // namespace presence
