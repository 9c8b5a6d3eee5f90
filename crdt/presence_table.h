// The presences of a State with their indexes (internal to crdt/; Phoenix
// keeps the same data in two ETS tables, `values` and `pids`).
//
// Each presence is one 72-byte record in a chunked array, named by a 32-bit
// id. Records are indexed by
//   tag                per replica, unique  (merges, replica up/down/remove):
//                      mostly an array by clock (crdt/clock_index.h)
//   topic              a member array per topic, and its sorted order
//                      until the topic changes    (get_by_topic)
//   {topic, key}       a chain per pair     (get_by_key)
//   pid                a chain per pid      (leave(pid), get_by_pid(pid))
// so every query costs what its result costs. Chains are doubly linked
// through the records; chain heads live in IdTables. A presence is found by
// {topic, pid, key} by walking its pid's chain and its {topic, key} chain in
// turns: it belongs to both, so the first chain to end without it proves it
// absent, and a lookup costs the shorter chain (one record, as a rule: a
// process tracks itself under few keys, a key is rarely held by many pids).
//
// Memory: topics are interned (a record holds a topic id), equal pids and
// equal keys of a topic share one Term payload, a record holds its replica
// as a small id, its meta map as one word (PackedTerm) and its clock in 32
// bits (the rare clock beyond that, and the rare meta that is not a map,
// sit in side tables). Measured at 100,000 presences: about 95 bytes per
// presence for record and indexes, besides the payloads of long pids, keys
// and metas (which the Terms share with whoever else holds them).
//
// Not thread-safe; owned by one State.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "crdt/clock.h"
#include "crdt/clock_index.h"
#include "crdt/id_table.h"
#include "term/prefetch.h"
#include "term/term.h"

namespace presence {

class PresenceTable {
 public:
  using Id = IdTable::Id;
  static constexpr Id kNone = IdTable::kNone;

  std::size_t size() const { return size_; }

  // Lookups; kNone when absent.
  Id find(const Term& topic, const Term& pid, const Term& key) const;
  Id find(const Tag& tag) const;
  // By tag, the replica given as its slot (find_replica / intern_replica).
  Id find(Id replica, Clock clock) const;

  // The slot of a replica, kNone when it has never been seen here; slots
  // are never reused, so callers may keep them for the table's lifetime.
  Id find_replica(const ReplicaRef& replica) const;
  Id intern_replica(const ReplicaRef& replica);

  // Room for `count` more presences, so that adding them grows no index
  // shared by all replicas; with a replica slot, room for `count` more
  // presences of that replica in its own index.
  void reserve(std::size_t count);
  void reserve(Id replica, std::size_t count);

  // Adds a presence. Precondition: (topic, pid, key) and tag are absent.
  Id insert(const Term& topic, const Term& pid, const Term& key, Term meta, const Tag& tag);
  // The identifying terms of a presence with their hashes, computed once
  // for all the lookups of an operation. Points to the terms, which must
  // outlive it.
  struct Hashed {
    Hashed() = default;
    Hashed(const Term& topic, const Term& pid, const Term& key) { set(topic, pid, key); }
    // Points to other terms, hashed anew; no topic slot noted.
    void set(const Term& topic, const Term& pid, const Term& key);
    const Term* topic = nullptr;
    const Term* pid = nullptr;
    const Term* key = nullptr;
    std::size_t topic_hash = 0;
    std::size_t pid_hash = 0;
    std::size_t key_hash = 0;
    Id topic_hint = kNone;  // the topic's slot as prefetch() found it
    // With a topic_hint: the presence's key in the (topic, key) index.
    std::size_t topic_key_hash = 0;
  };
  // Starts loading what put() of this presence will read first (a hint; no
  // effect on the contents), so that a loop of puts can overlap its cache
  // misses. Notes the topic's slot and index keys in *presence for put().
  void prefetch(Hashed* presence, Id replica, Clock clock) const;
  // Adds the presence, or when (topic, pid, key) is present gives it the new
  // meta and tag. Preconditions: the tag (replica slot and clock) is absent;
  // the table changed by put() only since prefetch() noted a topic_hint (a
  // topic slot then lasts: puts add topics, never release them).
  Id put(const Hashed& presence, Term meta, Id replica, Clock clock);
  // Gives an existing presence a new meta and tag. Precondition: the new
  // tag is absent (or equal to the old one).
  void update(Id id, Term meta, const Tag& tag);
  void erase(Id id);

  // Fields of a live record.
  const Term& topic(Id id) const { return topics_[record(id).topic].topic; }
  const Term& pid(Id id) const { return record(id).pid; }
  const Term& key(Id id) const { return record(id).key; }
  Term meta(Id id) const {
    const Record& r = record(id);
    return r.meta.empty() ? loose_metas_.at(id) : r.meta.get();
  }
  Tag tag(Id id) const { return {replicas_[record(id).replica].ref, clock(id)}; }
  Clock clock(Id id) const {
    const Record& r = record(id);
    return r.clock != kWideClock ? r.clock : wide_clocks_.at(id);
  }
  // True when the record's replica is marked down.
  bool hidden(Id id) const { return replicas_[record(id).replica].down; }

  // Replica status as the State's replicas map holds it, cached here so
  // that list filters need no map lookup per record.
  void set_down(const ReplicaRef& replica, bool down);

  // The records of a topic in Phoenix's order (pid, key). The order is kept
  // until the topic next changes, so listing an unchanged topic again sorts
  // nothing (it costs 4 bytes per member meanwhile). The reference lasts
  // until the next change of the table.
  const std::vector<Id>& sorted_topic(const Term& topic) const;

  // Ids of the records of a topic / a (topic, key) / a pid / a replica, in
  // no particular order.
  std::vector<Id> by_topic(const Term& topic) const;
  std::vector<Id> by_topic_key(const Term& topic, const Term& key) const;
  std::vector<Id> by_pid(const Term& pid) const;
  std::vector<Id> by_replica(const ReplicaRef& replica) const;
  // Number of presences of a replica.
  std::size_t count(const ReplicaRef& replica) const;
  // Calls f(id) for every presence of the replicas in the given slots (no
  // slot twice), in no particular order; f must not change the table. When
  // they hold a good part of the table the records are read in storage
  // order, which is far cheaper than one replica index after another.
  template <class F>
  void for_each_of(const std::vector<Id>& replica_slots, F f) const {
    std::size_t wanted = 0;
    for (Id slot : replica_slots) wanted += replicas_[slot].by_clock.size();
    if (wanted * 4 < size_) {
      for (Id slot : replica_slots) replicas_[slot].by_clock.for_each(f);
      return;
    }
    std::vector<bool> chosen(replicas_.size());
    for (Id slot : replica_slots) chosen[slot] = true;
    for (const std::vector<Record>& chunk : chunks_) {
      for (const Record& r : chunk) {
        if (r.topic != kNone && chosen[r.replica]) f(id_of(chunk, r));
      }
    }
  }
  // The replica slot of a presence.
  Id replica_slot(Id id) const { return record(id).replica; }
  // Every record of every replica not marked down.
  std::vector<Id> online() const;

  // Erases every record of a replica. Its status stays: a shard keeps
  // permanently gone replicas marked down (one small slot each).
  void erase_replica(const ReplicaRef& replica);

  // Sorts ids in Phoenix's ETS order: (topic, pid, key). With drop_hidden,
  // also drops the presences of replicas marked down.
  void sort(std::vector<Id>* ids, bool drop_hidden = false) const;

  // Asks the processor to load a record's terms (a hint, for loops that
  // read records all over the table).
  void prefetch(Id id) const {
    const Record& r = record(id);
    prefetch_read(&r.pid);
    prefetch_read(&r.pid_link);
  }
  // Asks the processor to load the node of a record's meta, which a copy of
  // the meta writes to. Reads the record: prefetch(id) it well before.
  void prefetch_meta(Id id) const { record(id).meta.prefetch_node(); }

 private:
  struct Link {
    Id prev = kNone;
    Id next = kNone;
  };
  // Clocks from 0 up to here are kept in the record; this value says the
  // clock is in wide_clocks_.
  static constexpr std::uint32_t kWideClock = 0xFFFFFFFF;
  struct Record {
    Record() = default;
    Record(const Term& pid, const Term& key) : pid(pid), key(key) {}
    Term pid;
    Term key;
    PackedTerm meta;  // empty when the meta cannot be packed: in loose_metas_
    std::uint32_t clock = 0;
    Id topic = kNone;      // kNone: the record is free
    Id replica = kNone;    // index into replicas_
    Id topic_pos = kNone;  // index in its topic's members
    Link topic_key_link;   // records of the same (topic, key)
    Link pid_link;         // records of the same pid; next chains free records
  };
  static_assert(sizeof(void*) != 8 || sizeof(Record) == 72, "a record is 72 bytes on 64 bits");
  struct TopicSlot {
    Term topic;
    std::vector<Id> members;  // the topic's records, in no particular order
    // The members in Phoenix's order, kept from the last sorted_topic()
    // until the topic changes (then empty and invalid).
    mutable std::vector<Id> sorted;
    mutable bool sorted_valid = false;
  };
  struct ReplicaSlot {
    ReplicaRef ref;
    ClockIndex by_clock;  // record ids by their clock
    bool down = false;
  };

  static constexpr std::size_t kChunkBits = 10;
  static constexpr std::size_t kChunkSize = std::size_t{1} << kChunkBits;

  Record& record(Id id) { return chunks_[id >> kChunkBits][id & (kChunkSize - 1)]; }
  const Record& record(Id id) const { return chunks_[id >> kChunkBits][id & (kChunkSize - 1)]; }
  Id id_of(const std::vector<Record>& chunk, const Record& r) const {
    const auto chunk_index = static_cast<Id>(&chunk - chunks_.data());
    return (chunk_index << kChunkBits) | static_cast<Id>(&r - chunk.data());
  }
  // A record of pid and key, all else default, reusing a free one if any;
  // returns its id.
  Id allocate(const Term& pid, const Term& key);
  void release(Id id);

  Id find_topic(const Term& topic, std::size_t hash) const;
  Id intern_topic(const Term& topic, std::size_t hash);
  void release_topic(Id topic);

  // A topic's membership changed: its kept order is dropped.
  void topic_changed(TopicSlot* slot);
  // Where a presence's chains start: the heads of its pid and of its
  // (topic, key), found or not, and the presence itself if stored.
  struct Heads {
    IdTable::Spot pid;
    IdTable::Spot topic_key;
    Id found = kNone;
  };
  Heads locate(Id topic, const Hashed& presence) const;
  // The presence in the chains from these heads (both found), or kNone.
  Id walk_chains(Id pid_head, Id topic_key_head, Id topic, const Hashed& presence) const;
  // Notes a topic's slot and the keys under it in *presence.
  static void note_topic(Hashed* presence, Id topic);
  // put() of a presence noted with its topic's slot.
  Id put_into(Id topic, const Hashed& presence, Term meta, Id replica, Clock clock);
  // Adds a presence whose (topic, pid, key) locate() found absent; presence
  // holds its topic's slot and index keys.
  Id insert_new(Id topic, const Hashed& presence, const Heads& heads, Term meta, Id replica,
                Clock clock);
  void retag(Id id, Id replica, Clock clock);
  // A record's meta and clock, in the record or in the side tables.
  void set_meta(Id id, Term meta);
  void set_clock(Id id, Clock clock);

  Id topic_key_head(Id topic, const Term& key, std::size_t key_hash) const;
  Id pid_head(const Term& pid, std::size_t pid_hash) const;
  static std::size_t topic_key_hash(Id topic, std::size_t key_hash);
  // The hashes a record's id is indexed under, for growing the indexes.
  std::size_t topic_key_hash_of(Id id) const;
  // Reads a record's clock back, for the replica indexes.
  auto clock_of() const {
    return [this](Id id) { return clock(id); };
  }

  // Chain surgery over one of the three links.
  void link_after(Id head, Id id, Link Record::*link);
  void unlink(Id id, Link Record::*link);
  std::vector<Id> chain(Id head, Link Record::*link) const;

  // Fixed-size chunks: growing never copies the records already stored.
  std::vector<std::vector<Record>> chunks_;
  Id allocated_ = 0;  // records ever allocated (live and free)
  Id free_ = kNone;   // free records, chained through pid_link.next
  std::size_t size_ = 0;

  std::vector<TopicSlot> topics_;
  std::vector<Id> free_topics_;
  IdTable topic_index_;  // topic slot ids keyed by topic

  std::vector<ReplicaSlot> replicas_;
  std::unordered_map<ReplicaRef, Id, ReplicaRefHash> replica_index_;

  IdTable topic_keys_;  // chain heads keyed by (topic, key)
  IdTable pids_;        // chain heads keyed by pid

  // The exceptions to the compact record: clocks of kWideClock and beyond,
  // and metas that PackedTerm cannot hold (metas are maps but for callers
  // of the State API that pass something else).
  std::unordered_map<Id, Clock> wide_clocks_;
  std::unordered_map<Id, Term> loose_metas_;
};

}  // namespace presence
