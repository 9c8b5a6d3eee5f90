#include "crdt/presence_table.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace presence {

namespace {

std::size_t mix(std::size_t a, std::size_t b) {
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

}  // namespace

void PresenceTable::Hashed::set(const Term& topic_term, const Term& pid_term,
                                const Term& key_term) {
  topic = &topic_term;
  pid = &pid_term;
  key = &key_term;
  topic_hash = topic_term.hash();
  pid_hash = pid_term.hash();
  key_hash = key_term.hash();
  topic_hint = kNone;
  topic_key_hash = 0;
}

PresenceTable::Id PresenceTable::find(const Term& topic, const Term& pid, const Term& key) const {
  const Hashed presence(topic, pid, key);
  const Id topic_id = find_topic(topic, presence.topic_hash);
  if (topic_id == kNone) return kNone;
  const Id by_pid = pid_head(pid, presence.pid_hash);
  if (by_pid == kNone) return kNone;
  const Id by_key = topic_key_head(topic_id, key, presence.key_hash);
  if (by_key == kNone) return kNone;
  return walk_chains(by_pid, by_key, topic_id, presence);
}

PresenceTable::Id PresenceTable::find(const Tag& tag) const {
  const Id replica_id = find_replica(tag.replica);
  if (replica_id == kNone) return kNone;
  return find(replica_id, tag.clock);
}

PresenceTable::Id PresenceTable::find(Id replica, Clock clock) const {
  return replicas_[replica].by_clock.find(clock, clock_of());
}

void PresenceTable::reserve(std::size_t count) {
  if (topic_keys_.has_room(topic_keys_.size() + count) && pids_.has_room(pids_.size() + count)) {
    return;
  }
  // Rebuilt together in one pass over the records in storage order, each
  // record's terms hashed once. Chain heads (no previous link) are what the
  // indexes hold.
  topic_keys_.clear_for(topic_keys_.size() + count);
  pids_.clear_for(pids_.size() + count);
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    const std::vector<Record>& chunk = chunks_[c];
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const Record& r = chunk[i];
      if (r.topic == kNone) continue;
      const auto id = static_cast<Id>((c << kChunkBits) | i);
      if (r.pid_link.prev == kNone) pids_.insert_reserved(r.pid.hash(), id);
      if (r.topic_key_link.prev == kNone) {
        topic_keys_.insert_reserved(topic_key_hash(r.topic, r.key.hash()), id);
      }
    }
  }
}

void PresenceTable::reserve(Id replica, std::size_t count) {
  replicas_[replica].by_clock.reserve(count);
}

PresenceTable::Id PresenceTable::insert(const Term& topic, const Term& pid, const Term& key,
                                        Term meta, const Tag& tag) {
  Hashed presence(topic, pid, key);
  const Id topic_id = intern_topic(topic, presence.topic_hash);
  note_topic(&presence, topic_id);
  const Heads heads = locate(topic_id, presence);
  assert(heads.found == kNone);
  return insert_new(topic_id, presence, heads, std::move(meta), intern_replica(tag.replica),
                    tag.clock);
}

void PresenceTable::prefetch(Hashed* presence, Id replica, Clock clock) const {
  const Id topic_id = find_topic(*presence->topic, presence->topic_hash);
  presence->topic_hint = topic_id;
  if (topic_id != kNone) {
    note_topic(presence, topic_id);
    topic_keys_.prefetch(presence->topic_key_hash);
  }
  pids_.prefetch(presence->pid_hash);
  replicas_[replica].by_clock.prefetch(clock);
}

PresenceTable::Id PresenceTable::put(const Hashed& presence, Term meta, Id replica, Clock clock) {
  if (presence.topic_hint != kNone) {
    assert(topics_[presence.topic_hint].topic == *presence.topic);
    return put_into(presence.topic_hint, presence, std::move(meta), replica, clock);
  }
  // The topic was absent at the prefetch; earlier puts may have added it.
  Hashed interned = presence;
  const Id topic_id = intern_topic(*presence.topic, presence.topic_hash);
  note_topic(&interned, topic_id);
  return put_into(topic_id, interned, std::move(meta), replica, clock);
}

void PresenceTable::note_topic(Hashed* presence, Id topic) {
  presence->topic_hint = topic;
  presence->topic_key_hash = topic_key_hash(topic, presence->key_hash);
}

PresenceTable::Id PresenceTable::put_into(Id topic_id, const Hashed& presence, Term meta,
                                          Id replica, Clock clock) {
  const Heads heads = locate(topic_id, presence);
  if (heads.found == kNone) {
    return insert_new(topic_id, presence, heads, std::move(meta), replica, clock);
  }
  set_meta(heads.found, std::move(meta));
  retag(heads.found, replica, clock);
  return heads.found;
}

PresenceTable::Heads PresenceTable::locate(Id topic, const Hashed& presence) const {
  Heads heads;
  heads.pid =
      pids_.locate(presence.pid_hash, [&](Id id) { return record(id).pid == *presence.pid; });
  heads.topic_key = topic_keys_.locate(presence.topic_key_hash, [&](Id id) {
    const Record& r = record(id);
    return r.topic == topic && r.key == *presence.key;
  });
  if (heads.pid.found != kNone && heads.topic_key.found != kNone) {
    heads.found = walk_chains(heads.pid.found, heads.topic_key.found, topic, presence);
  }
  return heads;
}

PresenceTable::Id PresenceTable::walk_chains(Id pid_head, Id topic_key_head, Id topic,
                                             const Hashed& presence) const {
  // Every record of the pid chain has the pid, every record of the other
  // has the topic and key: each step checks the missing part.
  Id by_pid = pid_head;
  Id by_key = topic_key_head;
  while (by_pid != kNone && by_key != kNone) {
    const Record& p = record(by_pid);
    if (p.topic == topic && p.key == *presence.key) return by_pid;
    const Record& k = record(by_key);
    if (k.pid == *presence.pid) return by_key;
    by_pid = p.pid_link.next;
    by_key = k.topic_key_link.next;
  }
  return kNone;
}

PresenceTable::Id PresenceTable::insert_new(Id topic_id, const Hashed& presence, const Heads& heads,
                                            Term meta, Id replica_id, Clock clock) {
  assert(find(replica_id, clock) == kNone);
  // Share the payload of an equal pid / key already stored.
  const Id same_pid = heads.pid.found;
  const Id same_key = heads.topic_key.found;
  TopicSlot& slot = topics_[topic_id];
  const Id id = allocate(same_pid == kNone ? *presence.pid : record(same_pid).pid,
                         same_key == kNone ? *presence.key : record(same_key).key);
  Record& r = record(id);
  r.topic = topic_id;
  r.replica = replica_id;
  r.topic_pos = static_cast<Id>(slot.members.size());
  // A fresh record holds no meta and clock 0: the side tables have nothing
  // of it to drop.
  if (PackedTerm::fits(meta)) [[likely]] {
    r.meta = PackedTerm(std::move(meta));
  } else {
    set_meta(id, std::move(meta));
  }
  if (clock >= 0 && clock < kWideClock) [[likely]] {
    r.clock = static_cast<std::uint32_t>(clock);
  } else {
    set_clock(id, clock);
  }

  if (same_pid == kNone) {
    pids_.insert_at(heads.pid, id, [this](Id other) { return record(other).pid.hash(); });
  } else {
    link_after(same_pid, id, &Record::pid_link);
  }
  if (same_key == kNone) {
    topic_keys_.insert_at(heads.topic_key, id,
                          [this](Id other) { return topic_key_hash_of(other); });
  } else {
    link_after(same_key, id, &Record::topic_key_link);
  }
  slot.members.push_back(id);
  topic_changed(&slot);

  replicas_[replica_id].by_clock.insert(clock, id, clock_of());
  ++size_;
  return id;
}

void PresenceTable::update(Id id, Term meta, const Tag& tag) {
  set_meta(id, std::move(meta));
  retag(id, intern_replica(tag.replica), tag.clock);
}

void PresenceTable::set_meta(Id id, Term meta) {
  Record& r = record(id);
  if (PackedTerm::fits(meta)) [[likely]] {
    if (r.meta.empty() && !loose_metas_.empty()) loose_metas_.erase(id);
    r.meta = PackedTerm(std::move(meta));
  } else {
    r.meta.reset();
    loose_metas_.insert_or_assign(id, std::move(meta));
  }
}

void PresenceTable::set_clock(Id id, Clock clock) {
  Record& r = record(id);
  if (r.clock == kWideClock) [[unlikely]]
    wide_clocks_.erase(id);
  if (clock >= 0 && clock < kWideClock) [[likely]] {
    r.clock = static_cast<std::uint32_t>(clock);
  } else {
    r.clock = kWideClock;
    wide_clocks_.insert_or_assign(id, clock);
  }
}

void PresenceTable::retag(Id id, Id replica_id, Clock clock) {
  Record& r = record(id);
  const Clock old_clock = this->clock(id);
  if (replica_id == r.replica && clock == old_clock) return;
  assert(find(replica_id, clock) == kNone);
  replicas_[r.replica].by_clock.erase(old_clock, id, clock_of());
  r.replica = replica_id;
  set_clock(id, clock);
  replicas_[replica_id].by_clock.insert(clock, id, clock_of());
}

void PresenceTable::erase(Id id) {
  Record& r = record(id);
  assert(r.topic != kNone);
  const std::size_t pid_hash = r.pid.hash();
  const std::size_t key_hash = r.key.hash();
  replicas_[r.replica].by_clock.erase(clock(id), id, clock_of());

  // A chain head is what the index points to: hand that over to the next
  // record of the chain, or drop the index entry with the chain.
  if (r.pid_link.prev == kNone) {
    if (r.pid_link.next == kNone) {
      pids_.erase(pid_hash, id);
    } else {
      pids_.replace(pid_hash, id, r.pid_link.next);
    }
  }
  unlink(id, &Record::pid_link);
  if (r.topic_key_link.prev == kNone) {
    const std::size_t hash = topic_key_hash(r.topic, key_hash);
    if (r.topic_key_link.next == kNone) {
      topic_keys_.erase(hash, id);
    } else {
      topic_keys_.replace(hash, id, r.topic_key_link.next);
    }
  }
  unlink(id, &Record::topic_key_link);
  // The topic's last member takes the place of the leaving one.
  TopicSlot& slot = topics_[r.topic];
  const Id moved = slot.members.back();
  slot.members[r.topic_pos] = moved;
  record(moved).topic_pos = r.topic_pos;
  slot.members.pop_back();
  topic_changed(&slot);
  if (slot.members.empty()) release_topic(r.topic);

  release(id);
  --size_;
}

void PresenceTable::set_down(const ReplicaRef& replica, bool down) {
  replicas_[intern_replica(replica)].down = down;
}

void PresenceTable::topic_changed(TopicSlot* slot) {
  slot->sorted_valid = false;
  if (!slot->sorted.empty()) std::vector<Id>().swap(slot->sorted);
}

const std::vector<PresenceTable::Id>& PresenceTable::sorted_topic(const Term& topic) const {
  static const std::vector<Id> kEmpty;
  const Id topic_id = find_topic(topic, topic.hash());
  if (topic_id == kNone) return kEmpty;
  const TopicSlot& slot = topics_[topic_id];
  if (!slot.sorted_valid) {
    slot.sorted = slot.members;
    sort(&slot.sorted);
    slot.sorted_valid = true;
  }
  return slot.sorted;
}

std::vector<PresenceTable::Id> PresenceTable::by_topic(const Term& topic) const {
  const Id topic_id = find_topic(topic, topic.hash());
  if (topic_id == kNone) return {};
  return topics_[topic_id].members;
}

std::vector<PresenceTable::Id> PresenceTable::by_topic_key(const Term& topic,
                                                           const Term& key) const {
  const Id topic_id = find_topic(topic, topic.hash());
  if (topic_id == kNone) return {};
  return chain(topic_key_head(topic_id, key, key.hash()), &Record::topic_key_link);
}

std::vector<PresenceTable::Id> PresenceTable::by_pid(const Term& pid) const {
  return chain(pid_head(pid, pid.hash()), &Record::pid_link);
}

std::vector<PresenceTable::Id> PresenceTable::by_replica(const ReplicaRef& replica) const {
  std::vector<Id> ids;
  const Id replica_id = find_replica(replica);
  if (replica_id == kNone) return ids;
  ids.reserve(replicas_[replica_id].by_clock.size());
  replicas_[replica_id].by_clock.for_each([&](Id id) { ids.push_back(id); });
  return ids;
}

std::size_t PresenceTable::count(const ReplicaRef& replica) const {
  const Id replica_id = find_replica(replica);
  return replica_id == kNone ? 0 : replicas_[replica_id].by_clock.size();
}

std::vector<PresenceTable::Id> PresenceTable::online() const {
  std::vector<Id> ids;
  for (const ReplicaSlot& slot : replicas_) {
    if (!slot.down) slot.by_clock.for_each([&](Id id) { ids.push_back(id); });
  }
  return ids;
}

void PresenceTable::erase_replica(const ReplicaRef& replica) {
  for (Id id : by_replica(replica)) erase(id);
}

void PresenceTable::sort(std::vector<Id>* ids, bool drop_hidden) const {
  // What decides most comparisons is read once per presence: the topic's
  // rank among the topics present, and a pid's serial and number, which
  // Erlang compares first. Full term comparisons remain for ties.
  struct Item {
    std::uint64_t pid_order;  // serial << 32 | number, when the pid is a pid
    Id topic;                 // the topic slot, then its rank
    Id id;
    bool is_pid;
  };
  std::vector<Item> items;
  items.reserve(ids->size());
  std::vector<Id> topic_ids;
  constexpr std::size_t kAhead = 8;
  for (std::size_t i = 0; i < ids->size(); ++i) {
    if (i + kAhead < ids->size()) prefetch((*ids)[i + kAhead]);
    const Id id = (*ids)[i];
    const Record& r = record(id);
    if (drop_hidden && replicas_[r.replica].down) continue;
    Item item{0, r.topic, id, r.pid.is_pid()};
    if (item.is_pid) {
      const PidValue pid = r.pid.as_pid();
      item.pid_order = (std::uint64_t{pid.serial} << 32) | pid.id;
    }
    items.push_back(item);
    if (topic_ids.empty() || topic_ids.back() != r.topic) topic_ids.push_back(r.topic);
  }
  std::sort(topic_ids.begin(), topic_ids.end());
  topic_ids.erase(std::unique(topic_ids.begin(), topic_ids.end()), topic_ids.end());
  if (topic_ids.size() > 1) {
    // rank_of[i]: the rank of topic slot topic_ids[i] in term order.
    std::vector<Id> by_term = topic_ids;
    std::sort(by_term.begin(), by_term.end(),
              [&](Id a, Id b) { return topics_[a].topic < topics_[b].topic; });
    std::vector<Id> rank_of(topic_ids.size());
    for (std::size_t rank = 0; rank < by_term.size(); ++rank) {
      const auto at = std::lower_bound(topic_ids.begin(), topic_ids.end(), by_term[rank]);
      rank_of[static_cast<std::size_t>(at - topic_ids.begin())] = static_cast<Id>(rank);
    }
    for (Item& item : items) {
      const auto at = std::lower_bound(topic_ids.begin(), topic_ids.end(), item.topic);
      item.topic = rank_of[static_cast<std::size_t>(at - topic_ids.begin())];
    }
  }
  std::sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    if (a.topic != b.topic) return a.topic < b.topic;
    if (a.is_pid && b.is_pid && a.pid_order != b.pid_order) return a.pid_order < b.pid_order;
    const Record& ra = record(a.id);
    const Record& rb = record(b.id);
    if (auto c = ra.pid <=> rb.pid; c != 0) return c < 0;
    return ra.key < rb.key;
  });
  ids->resize(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) (*ids)[i] = items[i].id;
}

PresenceTable::Id PresenceTable::allocate(const Term& pid, const Term& key) {
  if (free_ != kNone) {
    const Id id = free_;
    Record& r = record(id);
    free_ = r.pid_link.next;
    r.pid_link = Link{};
    r.pid = pid;
    r.key = key;
    return id;
  }
  if (allocated_ > IdTable::kMaxId) throw std::length_error("presence table full");
  if (chunks_.empty() || chunks_.back().size() == kChunkSize) {
    chunks_.emplace_back();
    chunks_.back().reserve(kChunkSize);
  }
  chunks_.back().emplace_back(pid, key);
  return allocated_++;
}

void PresenceTable::release(Id id) {
  // Drop the Terms now so their payloads are freed with the presence.
  Record& r = record(id);
  if (r.meta.empty() && !loose_metas_.empty()) loose_metas_.erase(id);
  if (r.clock == kWideClock) wide_clocks_.erase(id);
  r = Record{};  // a free record is a default one, but for its link
  r.pid_link.next = free_;
  free_ = id;
}

PresenceTable::Id PresenceTable::find_topic(const Term& topic, std::size_t hash) const {
  return topic_index_.find(hash, [&](Id id) { return topics_[id].topic == topic; });
}

PresenceTable::Id PresenceTable::intern_topic(const Term& topic, std::size_t hash) {
  const Id found = find_topic(topic, hash);
  if (found != kNone) return found;
  Id id;
  if (free_topics_.empty()) {
    id = static_cast<Id>(topics_.size());
    topics_.emplace_back();
  } else {
    id = free_topics_.back();
    free_topics_.pop_back();
  }
  topics_[id].topic = topic;
  // Every put looks its topic up: the index stays at most half full, which
  // keeps those lookups near one probe for 4 bytes more per topic.
  auto hash_of = [this](Id other) { return topics_[other].topic.hash(); };
  const std::size_t wanted = 2 * (topic_index_.size() + 1);
  if (!topic_index_.has_room(wanted)) topic_index_.reserve(wanted, hash_of);
  topic_index_.insert(hash, id, hash_of);
  return id;
}

void PresenceTable::release_topic(Id topic) {
  TopicSlot& slot = topics_[topic];
  assert(slot.members.empty());
  topic_index_.erase(slot.topic.hash(), topic);
  slot = TopicSlot{};
  free_topics_.push_back(topic);
}

PresenceTable::Id PresenceTable::find_replica(const ReplicaRef& replica) const {
  auto it = replica_index_.find(replica);
  return it == replica_index_.end() ? kNone : it->second;
}

PresenceTable::Id PresenceTable::intern_replica(const ReplicaRef& replica) {
  const Id found = find_replica(replica);
  if (found != kNone) return found;
  const auto id = static_cast<Id>(replicas_.size());
  replica_index_.emplace(replica, id);
  replicas_.push_back(ReplicaSlot{replica, {}, false});
  return id;
}

PresenceTable::Id PresenceTable::topic_key_head(Id topic, const Term& key,
                                                std::size_t key_hash) const {
  return topic_keys_.find(topic_key_hash(topic, key_hash), [&](Id id) {
    const Record& r = record(id);
    return r.topic == topic && r.key == key;
  });
}

PresenceTable::Id PresenceTable::pid_head(const Term& pid, std::size_t pid_hash) const {
  return pids_.find(pid_hash, [&](Id id) { return record(id).pid == pid; });
}

std::size_t PresenceTable::topic_key_hash(Id topic, std::size_t key_hash) {
  return mix(topic, key_hash);
}

std::size_t PresenceTable::topic_key_hash_of(Id id) const {
  const Record& r = record(id);
  return topic_key_hash(r.topic, r.key.hash());
}

void PresenceTable::link_after(Id head, Id id, Link Record::*link) {
  Link& head_link = record(head).*link;
  Link& new_link = record(id).*link;
  new_link.prev = head;
  new_link.next = head_link.next;
  if (head_link.next != kNone) (record(head_link.next).*link).prev = id;
  head_link.next = id;
}

void PresenceTable::unlink(Id id, Link Record::*link) {
  Link& l = record(id).*link;
  if (l.prev != kNone) (record(l.prev).*link).next = l.next;
  if (l.next != kNone) (record(l.next).*link).prev = l.prev;
  l = Link{};
}

std::vector<PresenceTable::Id> PresenceTable::chain(Id head, Link Record::*link) const {
  std::vector<Id> ids;
  for (Id id = head; id != kNone; id = (record(id).*link).next) ids.push_back(id);
  return ids;
}

}  // namespace presence
