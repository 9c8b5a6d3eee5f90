// Erlang terms as C++ values.
//
// A Term is an immutable value of 16 bytes. Immediate kinds (integers that fit
// in 64 bits, floats, atoms and the empty list), binaries of up to
// kInlineBinaryBytes bytes and pids live inside it; every other kind points
// to a shared, reference-counted, immutable node (one allocation holding the
// count, the size and the contents), so copying a Term never copies more
// than 16 bytes and Terms may be shared across threads.
//
// Kinds and how they map to the external term format:
//
//   Integer     SMALL_INTEGER / INTEGER / SMALL_BIG that fits in int64_t
//   BigInteger  SMALL_BIG / LARGE_BIG beyond int64_t (sign + magnitude)
//   Float       NEW_FLOAT
//   Atom        ATOM_EXT when Latin-1 can spell it (as OTP 25 writes it),
//               else SMALL_ATOM_UTF8 / ATOM_UTF8; any atom tag on input.
//               Interned: equal atoms share one entry, compared by address
//   Reference   NEWER_REFERENCE (node, creation, up to 5 id words)
//   Fun         kept opaque: the exact bytes of its encoding
//   Port        NEW_PORT for ids of up to 28 bits, else V4_PORT
//   Pid         NEW_PID
//   Tuple       SMALL_TUPLE / LARGE_TUPLE
//   Map         MAP, entries kept sorted in Erlang term order of their keys
//   List        NIL / LIST / STRING. A proper list has the empty list as its
//               tail; an improper one keeps its tail. A string ("abc" in
//               Erlang) is a list of small integers, as on the BEAM; the
//               encoder writes STRING_EXT whenever term_to_binary would.
//   Binary      BINARY
//   BitString   BIT_BINARY (bytes plus the number of bits used in the last)
//
// Comparison follows Erlang's term order (number < atom < reference < fun <
// port < pid < tuple < map < nil < list < bitstring), with exact equality
// (=:=): 1 and 1.0 are different terms.
#pragma once

#include <atomic>
#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "term/prefetch.h"

namespace presence {

namespace detail {
struct AtomEntry;  // an interned atom's text and number, defined in term.cc

// The header of every boxed payload (the kinds are defined in term.cc). The
// count is the only thing that changes once a node is built, and it is
// atomic so Terms may be shared across threads.
struct Node {
  std::atomic<std::uint32_t> refs{1};
  std::uint32_t size = 0;  // bytes, elements or entries of the sized kinds
};
}  // namespace detail

enum class TermType : std::uint8_t {
  kInteger,
  kBigInteger,
  kFloat,
  kAtom,
  kReference,
  kFun,
  kPort,
  kPid,
  kTuple,
  kMap,
  kList,
  kBinary,
  kBitString,
};

const char* to_string(TermType type);

// An interned atom. Two Atoms are equal exactly when their texts are equal.
// The atom table lives for the whole process and is safe to use from any
// thread.
class Atom {
 public:
  Atom();  // the empty atom ''
  explicit Atom(std::string_view utf8);

  std::string_view text() const;
  bool operator==(const Atom& other) const { return entry_ == other.entry_; }
  // Erlang orders atoms by their text.
  std::strong_ordering operator<=>(const Atom& other) const;
  std::size_t hash() const { return std::hash<const void*>()(entry_); }

 private:
  friend class Term;  // a Term stores an atom as its interned entry
  explicit Atom(const detail::AtomEntry* entry) : entry_(entry) {}

  const detail::AtomEntry* entry_;
};

class Term;
class MapEntries;

struct PidValue {
  Atom node;
  std::uint32_t id = 0;
  std::uint32_t serial = 0;
  std::uint32_t creation = 0;
  friend bool operator==(const PidValue&, const PidValue&) = default;
};

struct PortValue {
  Atom node;
  std::uint64_t id = 0;
  std::uint32_t creation = 0;
  friend bool operator==(const PortValue&, const PortValue&) = default;
};

struct RefValue {
  Atom node;
  std::uint32_t creation = 0;
  std::vector<std::uint32_t> ids;  // 1 to 5 words, as the BEAM made them
  friend bool operator==(const RefValue&, const RefValue&) = default;
};

// A big integer: sign and magnitude, least significant byte first (the order
// of SMALL_BIG_EXT). Only used for values outside int64_t.
struct BigIntValue {
  bool negative = false;
  std::vector<std::uint8_t> magnitude;
  friend bool operator==(const BigIntValue&, const BigIntValue&) = default;
};

class Term {
 public:
  // The empty list [].
  Term() noexcept : Term(TermType::kList) {}
  ~Term() {
    if (holds_node()) release();
  }
  Term(const Term& other) noexcept {
    std::memcpy(static_cast<void*>(this), &other, sizeof(Term));
    if (holds_node()) node_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Term(Term&& other) noexcept {
    std::memcpy(static_cast<void*>(this), &other, sizeof(Term));
    other.clear();
  }
  Term& operator=(const Term& other) noexcept {
    Term copy(other);
    return *this = std::move(copy);
  }
  Term& operator=(Term&& other) noexcept {
    if (this != &other) {
      if (holds_node()) release();
      std::memcpy(static_cast<void*>(this), &other, sizeof(Term));
      other.clear();
    }
    return *this;
  }

  // Construction. Each returns a new value; nothing is ever modified in place.
  static Term integer(std::int64_t value);
  static Term big_integer(BigIntValue value);  // normalised to Integer if it fits
  static Term floating(double value);
  static Term atom(Atom value);
  static Term atom(std::string_view utf8) { return atom(Atom(utf8)); }
  static Term boolean(bool value) { return atom(value ? "true" : "false"); }
  // Binaries of up to kInlineBinaryBytes bytes are stored inside the Term.
  // Throws std::length_error beyond 2^32 - 1 bytes, which the external
  // format cannot carry.
  static Term binary(std::string_view bytes);
  static Term bitstring(std::string_view bytes, unsigned bits_in_last_byte);
  static Term tuple(std::vector<Term> elements);
  static Term tuple(std::initializer_list<Term> elements);
  // Takes the elements: moves them out of the span.
  static Term tuple(std::span<Term> elements);
  static Term list(std::vector<Term> elements, Term tail = Term());
  static Term list(std::initializer_list<Term> elements);
  static Term string(std::string_view latin1);                  // a list of small integers
  static Term map(std::vector<std::pair<Term, Term>> entries);  // last duplicate wins
  static Term map(std::initializer_list<std::pair<Term, Term>> entries);
  // Takes the entries: moves them out of the span. Last duplicate wins.
  static Term map(std::span<std::pair<Term, Term>> entries);
  static Term pid(PidValue value);
  static Term port(PortValue value);
  static Term reference(RefValue value);
  // `encoded` is the complete external encoding of the fun, tag byte included.
  static Term fun(std::string_view encoded);

  TermType type() const { return static_cast<TermType>(tag_ & 0x0F); }
  bool is_integer() const { return type() == TermType::kInteger; }
  bool is_atom() const { return type() == TermType::kAtom; }
  bool is_atom(std::string_view text) const;
  bool is_binary() const { return type() == TermType::kBinary; }
  bool is_tuple() const { return type() == TermType::kTuple; }
  bool is_tuple(std::size_t arity) const;
  bool is_map() const { return type() == TermType::kMap; }
  bool is_list() const { return type() == TermType::kList; }
  bool is_nil() const;          // the empty list
  bool is_proper_list() const;  // [] or a list whose tail is []
  bool is_pid() const { return type() == TermType::kPid; }
  bool is_reference() const { return type() == TermType::kReference; }

  // Accessors. Each asserts the kind; check type() first on untrusted input.
  std::int64_t as_integer() const;
  const BigIntValue& as_big_integer() const;
  double as_float() const;
  Atom as_atom() const;
  // Binary, or the bytes of a BitString. The view lives as long as this
  // Term object (a short binary's bytes are inside it): not past its
  // destruction, assignment or move, even when a copy lives on.
  std::string_view as_binary() const;
  unsigned bits_in_last_byte() const;  // BitString only; 8 for a Binary
  PidValue as_pid() const;
  const PortValue& as_port() const;
  const RefValue& as_reference() const;
  std::string_view fun_encoding() const;

  // Tuples and lists share element access. For a list, elements() holds the
  // heads and tail() what follows the last one ([] for a proper list).
  std::span<const Term> elements() const;
  std::size_t size() const { return elements().size(); }
  const Term& operator[](std::size_t index) const { return elements()[index]; }
  const Term& tail() const;
  // The characters of a list of integers 0..255; false if it is not one.
  bool as_string(std::string* out) const;

  // Maps.
  MapEntries map_entries() const;
  const Term* find(const Term& key) const;  // nullptr when absent
  const Term* find(std::string_view atom_key) const { return find(Term::atom(atom_key)); }
  // A copy of this map with key set to value.
  Term map_put(Term key, Term value) const;

  // Erlang term order and exact equality.
  std::strong_ordering compare(const Term& other) const;
  bool operator==(const Term& other) const {
    // Values held inside a Term have one representation each (see the
    // layout below), so bytes decide unless both point to nodes. Floats
    // compare by value: 0.0 and -0.0 are equal with different bits.
    if (type() != TermType::kFloat && other.type() != TermType::kFloat) {
      if (std::memcmp(this, &other, sizeof(Term)) == 0) return true;
      if (!holds_node() || !other.holds_node()) return false;
    }
    return compare(other) == 0;
  }
  std::strong_ordering operator<=>(const Term& other) const { return compare(other); }
  std::size_t hash() const {
    // A value held inside the Term hashes by its bytes (floats by value).
    if (type() == TermType::kFloat || holds_node()) return node_hash();
    std::uint64_t words[2];
    std::memcpy(words, static_cast<const void*>(this), sizeof words);
    std::uint64_t h = (words[0] * 0x9E3779B97F4A7C15ULL) ^ words[1];
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    return static_cast<std::size_t>(h ^ (h >> 32));
  }

  // Two copies of this Term for one update of its node's count: a counted
  // update is an atomic read-modify-write, costly in loops that copy many
  // Terms.
  std::pair<Term, Term> copy_twice() const {
    std::pair<Term, Term> copies;
    std::memcpy(static_cast<void*>(&copies.first), this, sizeof(Term));
    std::memcpy(static_cast<void*>(&copies.second), this, sizeof(Term));
    if (holds_node()) node_->refs.fetch_add(2, std::memory_order_relaxed);
    return copies;
  }

  // Asks the processor to load this Term's node, if any, ready to be
  // written, for a copy (which updates the node's count): a hint, for loops
  // that copy many Terms from all over memory.
  void prefetch_node() const {
    if (holds_node()) prefetch_write(node_);
  }

  // Erlang-like rendering for logs and test failures, e.g.
  // {pub,heartbeat,{a@vm,17},empty} or #{phx_ref => <<"x">>}. Very large
  // terms are cut short with "...".
  std::string to_string() const;

  static constexpr std::size_t kInlineBinaryBytes = 14;

 private:
  friend class PackedTerm;  // keeps a Term's node and type in one word
  // Layout: byte 0 holds the type (low 4 bits) and, for a binary or pid
  // stored inside the Term, a non-zero inline mark (high 4 bits: a binary's
  // length + 1, or 1 for a pid). Bytes 1..7 and the word at 8..15 hold the
  // value: a short binary's bytes from byte 2 on; an inline pid's node atom
  // number (bytes 1..3), creation (4..7), id (8..11) and serial (12..15); a
  // boxed bitstring's used bits in its last byte (byte 1); else the word.
  // Unused bytes are zero, so equal non-float immediates are equal bytewise.
  explicit Term(TermType type) noexcept
      : tag_(static_cast<std::uint8_t>(type)), small_{}, integer_(0) {}
  const detail::Node& node() const;
  // Drops this Term's count on its node, freeing the node with the last one.
  void release();
  // hash() of a float or of a Term that points to a node.
  std::size_t node_hash() const;
  // Makes this Term [] without releasing anything (after a move).
  void clear() {
    tag_ = static_cast<std::uint8_t>(TermType::kList);
    std::memset(small_, 0, sizeof small_);
    node_ = nullptr;
  }
  bool is_inline() const { return (tag_ & 0xF0) != 0; }
  // True when node_ points to a payload: a boxed kind that is not inline and
  // not [] (a kList with no node).
  bool holds_node() const {
    constexpr unsigned kUnboxed = (1u << static_cast<unsigned>(TermType::kInteger)) |
                                  (1u << static_cast<unsigned>(TermType::kFloat)) |
                                  (1u << static_cast<unsigned>(TermType::kAtom));
    // tag_ >= 16: an inline binary or pid.
    return tag_ < 16 && ((1u << tag_) & kUnboxed) == 0 && node_ != nullptr;
  }
  std::size_t inline_size() const { return (tag_ >> 4) - 1u; }
  const char* inline_bytes() const { return reinterpret_cast<const char*>(this) + 2; }

  std::uint8_t tag_;
  std::uint8_t small_[7];
  union {
    std::int64_t integer_;
    double float_;
    const detail::AtomEntry* atom_;
    detail::Node* node_;  // null for the empty list
  };
};

// The entries of a map in key order, as (key, value) pairs of references
// into the map, valid while the map lives. A map node keeps its entries side
// by side, or, when its keys are a few atoms, keeps only its values and
// takes the keys from a key list shared by all maps of the same keys (see
// Term::map).
class MapEntries {
 public:
  using Entry = std::pair<const Term&, const Term&>;

  // Holds the positions it reads, not the MapEntries it came from, so it
  // stays valid as long as the map does.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Entry;

    iterator() = default;
    Entry operator*() const {
      if (pairs_ != nullptr) return {pairs_[index_].first, pairs_[index_].second};
      return {keys_[index_], values_[index_]};
    }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      iterator before = *this;
      ++index_;
      return before;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.index_ == b.index_; }

   private:
    friend class MapEntries;
    iterator(const MapEntries& entries, std::size_t index)
        : pairs_(entries.pairs_), keys_(entries.keys_), values_(entries.values_), index_(index) {}
    const std::pair<Term, Term>* pairs_ = nullptr;
    const Term* keys_ = nullptr;
    const Term* values_ = nullptr;
    std::size_t index_ = 0;
  };

  // Entries kept side by side.
  MapEntries(const std::pair<Term, Term>* pairs, std::size_t size) : pairs_(pairs), size_(size) {}
  // Keys and values in two arrays of `size` Terms.
  MapEntries(const Term* keys, const Term* values, std::size_t size)
      : keys_(keys), values_(values), size_(size) {}

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Term& key(std::size_t index) const { return (*this)[index].first; }
  const Term& value(std::size_t index) const { return (*this)[index].second; }
  Entry operator[](std::size_t index) const { return *iterator(*this, index); }
  iterator begin() const { return {*this, 0}; }
  iterator end() const { return {*this, size_}; }

 private:
  const std::pair<Term, Term>* pairs_ = nullptr;
  const Term* keys_ = nullptr;
  const Term* values_ = nullptr;
  std::size_t size_ = 0;
};

// A Term whose whole value is its node (a map, tuple, list, long binary,
// ...) kept in one word: the node pointer with the type in its low bits.
// For tables that hold many such Terms, where a Term would take 16 bytes.
// Holds a reference to the node, as the Term it came from did.
class PackedTerm {
 public:
  PackedTerm() noexcept = default;  // holds nothing
  // True when the term can be packed: its type byte says nothing but the
  // type (no inline mark) and the bytes after it are unused, as for every
  // boxed kind but a bitstring that does not end on a byte boundary.
  static bool fits(const Term& term) noexcept {
    static constexpr std::uint8_t kUnused[sizeof term.small_] = {};
    return term.holds_node() && std::memcmp(term.small_, kUnused, sizeof kUnused) == 0 &&
           (reinterpret_cast<std::uintptr_t>(term.node_) & kTypeMask) == 0;
  }
  // Precondition: fits(term).
  explicit PackedTerm(Term term) noexcept
      : word_(reinterpret_cast<std::uintptr_t>(term.node_) | term.tag_) {
    assert(fits(term));
    term.clear();  // the reference moves here
  }
  ~PackedTerm() { reset(); }
  PackedTerm(const PackedTerm& other) noexcept;
  PackedTerm(PackedTerm&& other) noexcept : word_(other.word_) { other.word_ = 0; }
  PackedTerm& operator=(PackedTerm other) noexcept {
    std::swap(word_, other.word_);
    return *this;
  }

  bool empty() const { return word_ == 0; }
  // The term, sharing the node. Precondition: !empty().
  Term get() const {
    assert(!empty());
    Term t(static_cast<TermType>(word_ & kTypeMask));
    t.node_ = node();
    t.node_->refs.fetch_add(1, std::memory_order_relaxed);
    return t;
  }
  // Drops the reference; empty afterwards.
  void reset() noexcept {
    if (word_ != 0) release();
  }
  // Asks the processor to load the node ready to be written, for a copy
  // soon after (a hint; a copy updates the node's count).
  void prefetch_node() const {
    if (word_ != 0) prefetch_write(node());
  }

 private:
  void release() noexcept;
  static constexpr std::uintptr_t kTypeMask = 0x0F;
  detail::Node* node() const { return reinterpret_cast<detail::Node*>(word_ & ~kTypeMask); }

  std::uintptr_t word_ = 0;
};

struct TermHash {
  std::size_t operator()(const Term& term) const { return term.hash(); }
};

}  // namespace presence

template <>
struct std::hash<presence::Term> {
  std::size_t operator()(const presence::Term& term) const { return term.hash(); }
};
template <>
struct std::hash<presence::Atom> {
  std::size_t operator()(const presence::Atom& atom) const { return atom.hash(); }
};
