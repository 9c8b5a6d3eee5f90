#include "crdt/presence_table.h"

#include <algorithm>
#include <cassert>

namespace presence {

namespace {

std::size_t mix(std::size_t a, std::size_t b) {
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

std::size_t clock_hash(Clock clock) {
  return std::hash<Clock>()(clock);
}

}  // namespace

PresenceTable::Id PresenceTable::find(const Term& topic, const Term& pid, const Term& key) const {
  const Id topic_id = find_topic(topic);
  if (topic_id == kNone) return kNone;
  return entries_.find(entry_hash(topic_id, pid, key), [&](Id id) {
    const Record& r = record(id);
    return r.topic == topic_id && r.pid == pid && r.key == key;
  });
}

PresenceTable::Id PresenceTable::find(const Tag& tag) const {
  const Id replica_id = find_replica(tag.replica);
  if (replica_id == kNone) return kNone;
  return replicas_[replica_id].by_clock.find(clock_hash(tag.clock),
                                             [&](Id id) { return record(id).clock == tag.clock; });
}

PresenceTable::Id PresenceTable::insert(const Term& topic, const Term& pid, const Term& key,
                                        Term meta, const Tag& tag) {
  assert(find(topic, pid, key) == kNone);
  assert(find(tag) == kNone);
  const Id topic_id = intern_topic(topic);
  const Id replica_id = intern_replica(tag.replica);
  const Id id = allocate();
  Record& r = record(id);
  r.topic = topic_id;
  r.replica = replica_id;
  r.clock = tag.clock;
  r.meta = std::move(meta);

  // Share the payload of an equal pid / key already stored.
  const Id same_pid = pid_head(pid);
  r.pid = same_pid == kNone ? pid : record(same_pid).pid;
  const Id same_key = topic_key_head(topic_id, key);
  r.key = same_key == kNone ? key : record(same_key).key;

  if (same_pid == kNone) {
    pids_.insert(pid.hash(), id);
  } else {
    link_after(same_pid, id, &Record::pid_link);
  }
  if (same_key == kNone) {
    topic_keys_.insert(topic_key_hash(topic_id, key), id);
  } else {
    link_after(same_key, id, &Record::topic_key_link);
  }
  TopicSlot& slot = topics_[topic_id];
  if (slot.head == kNone) {
    slot.head = id;
  } else {
    link_after(slot.head, id, &Record::topic_link);
  }
  ++slot.count;

  entries_.insert(entry_hash(topic_id, pid, key), id);
  replicas_[replica_id].by_clock.insert(clock_hash(tag.clock), id);
  ++size_;
  return id;
}

void PresenceTable::update(Id id, Term meta, const Tag& tag) {
  Record& r = record(id);
  r.meta = std::move(meta);
  const Id replica_id = intern_replica(tag.replica);
  if (replica_id == r.replica && tag.clock == r.clock) return;
  assert(find(tag) == kNone);
  replicas_[r.replica].by_clock.erase(clock_hash(r.clock), id);
  r.replica = replica_id;
  r.clock = tag.clock;
  replicas_[replica_id].by_clock.insert(clock_hash(tag.clock), id);
}

void PresenceTable::erase(Id id) {
  Record& r = record(id);
  assert(r.topic != kNone);
  entries_.erase(entry_hash(r.topic, r.pid, r.key), id);
  replicas_[r.replica].by_clock.erase(clock_hash(r.clock), id);

  // A chain head is what the index points to: hand that over to the next
  // record of the chain, or drop the index entry with the chain.
  if (r.pid_link.prev == kNone) {
    if (r.pid_link.next == kNone) {
      pids_.erase(r.pid.hash(), id);
    } else {
      pids_.replace(r.pid.hash(), id, r.pid_link.next);
    }
  }
  unlink(id, &Record::pid_link);
  if (r.topic_key_link.prev == kNone) {
    const std::size_t hash = topic_key_hash(r.topic, r.key);
    if (r.topic_key_link.next == kNone) {
      topic_keys_.erase(hash, id);
    } else {
      topic_keys_.replace(hash, id, r.topic_key_link.next);
    }
  }
  unlink(id, &Record::topic_key_link);
  TopicSlot& slot = topics_[r.topic];
  if (slot.head == id) slot.head = r.topic_link.next;
  unlink(id, &Record::topic_link);
  if (--slot.count == 0) release_topic(r.topic);

  release(id);
  --size_;
}

void PresenceTable::set_down(const ReplicaRef& replica, bool down) {
  replicas_[intern_replica(replica)].down = down;
}

std::vector<PresenceTable::Id> PresenceTable::by_topic(const Term& topic) const {
  const Id topic_id = find_topic(topic);
  if (topic_id == kNone) return {};
  return chain(topics_[topic_id].head, &Record::topic_link);
}

std::vector<PresenceTable::Id> PresenceTable::by_topic_key(const Term& topic,
                                                           const Term& key) const {
  const Id topic_id = find_topic(topic);
  if (topic_id == kNone) return {};
  return chain(topic_key_head(topic_id, key), &Record::topic_key_link);
}

std::vector<PresenceTable::Id> PresenceTable::by_pid(const Term& pid) const {
  return chain(pid_head(pid), &Record::pid_link);
}

std::vector<PresenceTable::Id> PresenceTable::by_replica(const ReplicaRef& replica) const {
  std::vector<Id> ids;
  const Id replica_id = find_replica(replica);
  if (replica_id == kNone) return ids;
  ids.reserve(replicas_[replica_id].by_clock.size());
  replicas_[replica_id].by_clock.for_each([&](Id id) { ids.push_back(id); });
  return ids;
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

void PresenceTable::sort(std::vector<Id>* ids) const {
  std::sort(ids->begin(), ids->end(), [&](Id a, Id b) {
    const Record& ra = record(a);
    const Record& rb = record(b);
    if (ra.topic != rb.topic) {
      return topics_[ra.topic].topic < topics_[rb.topic].topic;
    }
    if (auto c = ra.pid <=> rb.pid; c != 0) return c < 0;
    return ra.key < rb.key;
  });
}

PresenceTable::Id PresenceTable::allocate() {
  if (free_ != kNone) {
    const Id id = free_;
    free_ = record(id).pid_link.next;
    record(id) = Record{};
    return id;
  }
  assert(allocated_ < kNone);
  if (chunks_.empty() || chunks_.back().size() == kChunkSize) {
    chunks_.emplace_back();
    chunks_.back().reserve(kChunkSize);
  }
  chunks_.back().emplace_back();
  return allocated_++;
}

void PresenceTable::release(Id id) {
  // Drop the Terms now so their payloads are freed with the presence.
  Record& r = record(id);
  r = Record{};
  r.pid_link.next = free_;
  free_ = id;
}

PresenceTable::Id PresenceTable::find_topic(const Term& topic) const {
  return topic_index_.find(topic.hash(), [&](Id id) { return topics_[id].topic == topic; });
}

PresenceTable::Id PresenceTable::intern_topic(const Term& topic) {
  const Id found = find_topic(topic);
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
  topic_index_.insert(topic.hash(), id);
  return id;
}

void PresenceTable::release_topic(Id topic) {
  TopicSlot& slot = topics_[topic];
  assert(slot.count == 0 && slot.head == kNone);
  topic_index_.erase(slot.topic.hash(), topic);
  slot = TopicSlot{};
  free_topics_.push_back(topic);
}

PresenceTable::Id PresenceTable::find_replica(const ReplicaRef& replica) const {
  auto it = replica_index_.find(replica);
  return it == replica_index_.end() ? kNone : it->second;
}

PresenceTable::Id PresenceTable::intern_replica(const ReplicaRef& replica) {
  auto [it, inserted] = replica_index_.emplace(replica, static_cast<Id>(replicas_.size()));
  if (inserted) replicas_.push_back(ReplicaSlot{replica, {}, false});
  return it->second;
}

PresenceTable::Id PresenceTable::topic_key_head(Id topic, const Term& key) const {
  return topic_keys_.find(topic_key_hash(topic, key), [&](Id id) {
    const Record& r = record(id);
    return r.topic == topic && r.key == key;
  });
}

PresenceTable::Id PresenceTable::pid_head(const Term& pid) const {
  return pids_.find(pid.hash(), [&](Id id) { return record(id).pid == pid; });
}

std::size_t PresenceTable::entry_hash(Id topic, const Term& pid, const Term& key) const {
  return mix(mix(topic, pid.hash()), key.hash());
}

std::size_t PresenceTable::topic_key_hash(Id topic, const Term& key) const {
  return mix(topic, key.hash());
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
