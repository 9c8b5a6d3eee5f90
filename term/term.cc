#include "term/term.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "term/term_order.h"

namespace presence {

static_assert(sizeof(Term) == 16, "a Term is a tag and one word");
static_assert(std::is_standard_layout_v<Term>, "short binaries are read from the Term's bytes");

// ---------------------------------------------------------------------------
// Atom table

namespace detail {

// An interned atom. Entries are never freed, so pointers to them and their
// numbers stay valid for the life of the process.
struct AtomEntry {
  std::string text;
  std::uint32_t number;
};

}  // namespace detail

namespace {

using detail::AtomEntry;

// Interned atoms, each also reachable by its number (the order of first
// interning), which is how a pid stored inside a Term names its node.
// Readers of the text index share the lock; number lookups take no lock.
class AtomTable {
 public:
  static constexpr std::uint32_t kChunkBits = 12;
  static constexpr std::uint32_t kChunkSize = 1u << kChunkBits;
  // Numbers beyond this are still interned but cannot be stored inline.
  static constexpr std::uint32_t kMaxNumbered = 1u << 24;

  static AtomTable& instance() {
    static AtomTable* table = new AtomTable();  // never destroyed: atoms outlive statics
    return *table;
  }

  const AtomEntry* intern(std::string_view text) {
    {
      std::shared_lock lock(mutex_);
      auto it = entries_.find(text);
      if (it != entries_.end()) return it->second.get();
    }
    std::unique_lock lock(mutex_);
    auto it = entries_.find(text);
    if (it != entries_.end()) return it->second.get();
    auto entry = std::make_unique<AtomEntry>(AtomEntry{std::string(text), count_});
    const AtomEntry* result = entry.get();
    if (count_ < kMaxNumbered) publish(result);
    ++count_;
    entries_.emplace(std::string_view(result->text), std::move(entry));
    return result;
  }

  // The entry numbered `number`, which intern() returned before.
  const AtomEntry* by_number(std::uint32_t number) const {
    const std::atomic<const AtomEntry*>* chunk =
        chunks_[number >> kChunkBits].load(std::memory_order_acquire);
    return chunk[number & (kChunkSize - 1)].load(std::memory_order_acquire);
  }

 private:
  // Called with the lock held.
  void publish(const AtomEntry* entry) {
    auto& slot = chunks_[entry->number >> kChunkBits];
    std::atomic<const AtomEntry*>* chunk = slot.load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunk = new std::atomic<const AtomEntry*>[kChunkSize]();  // never freed, as entries
      slot.store(chunk, std::memory_order_release);
    }
    chunk[entry->number & (kChunkSize - 1)].store(entry, std::memory_order_release);
  }

  std::shared_mutex mutex_;
  // Keys view the owned texts, which never move.
  std::unordered_map<std::string_view, std::unique_ptr<AtomEntry>> entries_;
  std::uint32_t count_ = 0;
  std::atomic<std::atomic<const AtomEntry*>*> chunks_[kMaxNumbered >> kChunkBits] = {};
};

const AtomEntry* empty_atom_entry() {
  static const AtomEntry* entry = AtomTable::instance().intern("");
  return entry;
}

}  // namespace

Atom::Atom() : entry_(empty_atom_entry()) {}

Atom::Atom(std::string_view utf8) : entry_(AtomTable::instance().intern(utf8)) {}

std::string_view Atom::text() const {
  return entry_->text;
}

std::strong_ordering Atom::operator<=>(const Atom& other) const {
  if (entry_ == other.entry_) return std::strong_ordering::equal;
  // UTF-8 byte order is code point order, which is how the BEAM orders atoms.
  int c = entry_->text.compare(other.entry_->text);
  return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
}

const char* to_string(TermType type) {
  switch (type) {
    case TermType::kInteger:
      return "integer";
    case TermType::kBigInteger:
      return "big_integer";
    case TermType::kFloat:
      return "float";
    case TermType::kAtom:
      return "atom";
    case TermType::kReference:
      return "reference";
    case TermType::kFun:
      return "fun";
    case TermType::kPort:
      return "port";
    case TermType::kPid:
      return "pid";
    case TermType::kTuple:
      return "tuple";
    case TermType::kMap:
      return "map";
    case TermType::kList:
      return "list";
    case TermType::kBinary:
      return "binary";
    case TermType::kBitString:
      return "bitstring";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Shared nodes

namespace detail {

// The Term's type says which kind of node it points to; variable-sized
// nodes keep their contents right after their header, in one allocation.

struct BigNode : Node {
  BigIntValue value;
};

// Binaries (beyond the inline size), bitstrings and funs; `size` bytes follow.
struct BytesNode : Node {
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
};

// Tuples and lists; `size` Terms follow. For a list there is at least one
// element and `tail` is never a non-empty list (see Term::list); a tuple's
// tail is [].
struct SeqNode : Node {
  Term tail;
  Term* elements() { return reinterpret_cast<Term*>(this + 1); }
};

// A map node comes in two layouts. Side by side: `size` (key, value) pairs
// follow, sorted by key, without duplicates. Shaped: `size` holds
// kShapedMark and a shape's number, and the values follow, one for each key
// of the shape, in its order.
constexpr std::uint32_t kShapedMark = std::uint32_t{1} << 31;

struct MapNode : Node {
  bool shaped() const { return (size & kShapedMark) != 0; }
  std::uint32_t shape() const { return size & ~kShapedMark; }
  std::pair<Term, Term>* entries() { return reinterpret_cast<std::pair<Term, Term>*>(this + 1); }
  Term* values() { return reinterpret_cast<Term*>(this + 1); }
};

struct PidNode : Node {
  PidValue value;
};

struct PortNode : Node {
  PortValue value;
};

struct RefNode : Node {
  RefValue value;
};

}  // namespace detail

namespace {

using detail::BigNode;
using detail::BytesNode;
using detail::kShapedMark;
using detail::MapNode;
using detail::PidNode;
using detail::PortNode;
using detail::RefNode;
using detail::SeqNode;

static_assert(sizeof(SeqNode) % alignof(Term) == 0 && sizeof(MapNode) % alignof(Term) == 0,
              "contents follow their header aligned");

std::uint32_t checked_size(std::size_t size) {
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("term too large for the external term format");
  }
  return static_cast<std::uint32_t>(size);
}

// Shapes: the key lists of maps whose keys are 1 to kMaxShapeKeys atoms.
// Presence metas and most other maps a cluster exchanges have a handful of
// atom keys, the same few sets over and over, so each set is kept once for
// the process and such a map's node holds only its values (a two-entry map
// takes 40 bytes instead of 72). Shapes are never freed; once kMaxShapes
// exist, maps of further key sets keep their keys.
constexpr std::size_t kMaxShapeKeys = 16;
constexpr std::uint32_t kMaxShapes = 4096;
constexpr std::uint32_t kNoShape = std::numeric_limits<std::uint32_t>::max();

struct Shape {
  std::vector<Term> keys;  // atoms, in map key order
};

bool same_keys(const Shape& shape, std::span<const std::pair<Term, Term>> entries) {
  if (shape.keys.size() != entries.size()) return false;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (shape.keys[i].as_atom() != entries[i].first.as_atom()) return false;
  }
  return true;
}

class ShapeTable {
 public:
  // The number of the shape with the keys of `entries` (atoms, sorted,
  // hashed to `hash`), made if new; kNoShape when the table is full.
  std::uint32_t intern(std::span<const std::pair<Term, Term>> entries, std::uint64_t hash) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [first, last] = by_hash_.equal_range(hash);
    for (auto it = first; it != last; ++it) {
      if (same_keys(get(it->second), entries)) return it->second;
    }
    if (count_ == kMaxShapes) return kNoShape;
    auto* shape = new Shape;
    shape->keys.reserve(entries.size());
    for (const auto& entry : entries) shape->keys.push_back(entry.first);
    shapes_[count_].store(shape, std::memory_order_release);
    by_hash_.emplace(hash, count_);
    return count_++;
  }

  const Shape& get(std::uint32_t number) const {
    return *shapes_[number].load(std::memory_order_acquire);
  }

 private:
  std::mutex mutex_;
  std::unordered_multimap<std::uint64_t, std::uint32_t> by_hash_;
  std::uint32_t count_ = 0;
  std::atomic<const Shape*> shapes_[kMaxShapes] = {};
};

// Never destroyed: maps held by static objects may outlive any order of
// destruction.
ShapeTable& shapes() {
  static auto* table = new ShapeTable;
  return *table;
}

// The shape for a map's sorted, unique entries, or kNoShape. Each thread
// remembers the shapes it used last, so a map of a known shape is built
// without taking the table's lock.
std::uint32_t shape_of(std::span<const std::pair<Term, Term>> entries) {
  if (entries.empty() || entries.size() > kMaxShapeKeys) return kNoShape;
  std::uint64_t hash = entries.size();
  for (const auto& entry : entries) {
    if (!entry.first.is_atom()) return kNoShape;
    hash = (hash ^ entry.first.as_atom().hash()) * 0x9E3779B97F4A7C15ULL;
  }
  thread_local std::uint32_t recent[256] = {};  // a shape's number + 1, by hash
  std::uint32_t& slot = recent[hash >> 56];
  if (slot != 0 && same_keys(shapes().get(slot - 1), entries)) return slot - 1;
  const std::uint32_t number = shapes().intern(entries, hash);
  if (number != kNoShape) slot = number + 1;
  return number;
}

// A node of type N with room for `count` items of type Item after it; the
// items are left for the caller to construct.
template <class N, class Item>
N* allocate_sized(std::size_t count) {
  void* memory = ::operator new(sizeof(N) + count * sizeof(Item));
  N* node = new (memory) N();
  node->size = checked_size(count);
  return node;
}

template <class N>
void free_sized(N* node) {
  node->~N();
  ::operator delete(node);
}

void destroy(TermType type, detail::Node* node) {
  switch (type) {
    case TermType::kBigInteger:
      delete static_cast<BigNode*>(node);
      return;
    case TermType::kBinary:
    case TermType::kBitString:
    case TermType::kFun:
      free_sized(static_cast<BytesNode*>(node));
      return;
    case TermType::kTuple:
    case TermType::kList: {
      auto* seq = static_cast<SeqNode*>(node);
      std::destroy_n(seq->elements(), seq->size);
      free_sized(seq);
      return;
    }
    case TermType::kMap: {
      auto* map = static_cast<MapNode*>(node);
      if (map->shaped()) {
        std::destroy_n(map->values(), shapes().get(map->shape()).keys.size());
      } else {
        std::destroy_n(map->entries(), map->size);
      }
      free_sized(map);
      return;
    }
    case TermType::kPid:
      delete static_cast<PidNode*>(node);
      return;
    case TermType::kPort:
      delete static_cast<PortNode*>(node);
      return;
    case TermType::kReference:
      delete static_cast<RefNode*>(node);
      return;
    case TermType::kInteger:
    case TermType::kFloat:
    case TermType::kAtom:
      break;
  }
  assert(false && "not a boxed kind");
}

const Term& nil_term() {
  static const Term nil;
  return nil;
}

// Where an inline pid keeps its fields (see the layout in term.h).
constexpr std::size_t kPidNumberAt = 1;  // 3 bytes, little-endian
constexpr std::size_t kPidCreationAt = 4;
constexpr std::size_t kPidIdAt = 8;
constexpr std::size_t kPidSerialAt = 12;

}  // namespace

// ---------------------------------------------------------------------------
// Lifetime

void Term::release() {
  if (node_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(type(), node_);
}

PackedTerm::PackedTerm(const PackedTerm& other) noexcept : word_(other.word_) {
  if (word_ != 0) node()->refs.fetch_add(1, std::memory_order_relaxed);
}

void PackedTerm::release() noexcept {
  Term owner(static_cast<TermType>(word_ & kTypeMask));
  owner.node_ = node();
  word_ = 0;
  // owner's destructor drops the reference.
}

const detail::Node& Term::node() const {
  assert(holds_node());
  return *node_;
}

// ---------------------------------------------------------------------------
// Construction

Term Term::integer(std::int64_t value) {
  Term t(TermType::kInteger);
  t.integer_ = value;
  return t;
}

Term Term::big_integer(BigIntValue value) {
  while (!value.magnitude.empty() && value.magnitude.back() == 0) value.magnitude.pop_back();
  if (value.magnitude.size() <= 8) {
    std::uint64_t u = 0;
    for (std::size_t i = value.magnitude.size(); i-- > 0;) u = (u << 8) | value.magnitude[i];
    constexpr std::uint64_t kMaxPositive = std::numeric_limits<std::int64_t>::max();
    if (!value.negative && u <= kMaxPositive) return integer(static_cast<std::int64_t>(u));
    if (value.negative && u <= kMaxPositive + 1) {
      return integer(static_cast<std::int64_t>(0 - u));  // two's complement wrap is exact
    }
  }
  auto* node = new BigNode();
  node->value = std::move(value);
  Term t(TermType::kBigInteger);
  t.node_ = node;
  return t;
}

Term Term::floating(double value) {
  Term t(TermType::kFloat);
  t.float_ = value;
  return t;
}

Term Term::atom(Atom value) {
  Term t(TermType::kAtom);
  t.atom_ = value.entry_;
  return t;
}

namespace {

BytesNode* bytes_node(std::string_view bytes) {
  BytesNode* node = allocate_sized<BytesNode, char>(bytes.size());
  if (!bytes.empty()) std::memcpy(node->bytes(), bytes.data(), bytes.size());
  return node;
}

}  // namespace

Term Term::binary(std::string_view bytes) {
  Term t(TermType::kBinary);
  if (bytes.size() <= kInlineBinaryBytes) {
    // Every binary this short is inline, so equal ones are equal bytewise.
    t.tag_ |= static_cast<std::uint8_t>((bytes.size() + 1) << 4);
    if (!bytes.empty()) {
      std::memcpy(reinterpret_cast<char*>(&t) + 2, bytes.data(), bytes.size());
    }
    return t;
  }
  t.node_ = bytes_node(bytes);
  return t;
}

Term Term::bitstring(std::string_view bytes, unsigned bits_in_last_byte) {
  assert(bits_in_last_byte >= 1 && bits_in_last_byte <= 8);
  if (bits_in_last_byte >= 8 || bytes.empty()) return binary(bytes);
  BytesNode* node = bytes_node(bytes);
  // Unused low bits are not part of the value; clearing them makes equal
  // bitstrings equal bytewise.
  auto mask = static_cast<unsigned char>(0xFF << (8 - bits_in_last_byte));
  char& last = node->bytes()[bytes.size() - 1];
  last = static_cast<char>(static_cast<unsigned char>(last) & mask);
  Term t(TermType::kBitString);
  t.small_[0] = static_cast<std::uint8_t>(bits_in_last_byte);
  t.node_ = node;
  return t;
}

namespace {

// A sequence node holding `elements` (moved in) and then `more` (copied).
SeqNode* seq_node(std::vector<Term>&& elements, std::span<const Term> more, Term tail) {
  SeqNode* node = allocate_sized<SeqNode, Term>(elements.size() + more.size());
  Term* out = std::uninitialized_move(elements.begin(), elements.end(), node->elements());
  std::uninitialized_copy(more.begin(), more.end(), out);
  node->tail = std::move(tail);
  return node;
}

}  // namespace

Term Term::tuple(std::vector<Term> elements) {
  return tuple(std::span<Term>(elements));
}

Term Term::tuple(std::span<Term> elements) {
  SeqNode* node = allocate_sized<SeqNode, Term>(elements.size());
  std::uninitialized_move(elements.begin(), elements.end(), node->elements());
  Term t(TermType::kTuple);
  t.node_ = node;
  return t;
}

Term Term::tuple(std::initializer_list<Term> elements) {
  Term t(TermType::kTuple);
  std::vector<Term> none;
  t.node_ =
      seq_node(std::move(none), std::span<const Term>(elements.begin(), elements.size()), Term());
  return t;
}

Term Term::list(std::vector<Term> elements, Term tail) {
  if (elements.empty()) return tail;
  // A non-empty list as tail is spliced in, so that equal lists have one
  // representation.
  std::span<const Term> rest;
  Term rest_tail = std::move(tail);
  Term spliced;  // keeps the spliced list alive while it is copied
  if (rest_tail.type() == TermType::kList && !rest_tail.is_nil()) {
    spliced = std::move(rest_tail);
    rest = spliced.elements();
    rest_tail = spliced.tail();
  }
  Term t(TermType::kList);
  t.node_ = seq_node(std::move(elements), rest, std::move(rest_tail));
  return t;
}

Term Term::list(std::initializer_list<Term> elements) {
  return list(std::vector<Term>(elements));
}

Term Term::string(std::string_view latin1) {
  std::vector<Term> chars;
  chars.reserve(latin1.size());
  for (char c : latin1) chars.push_back(integer(static_cast<unsigned char>(c)));
  return list(std::move(chars));
}

namespace {

using detail::compare_terms;

// Map keys are ordered as the BEAM orders them: all integers before all
// floats, otherwise term order.
struct KeyLess {
  bool operator()(const std::pair<Term, Term>& a, const std::pair<Term, Term>& b) const {
    return compare_terms(a.first, b.first, true) < 0;
  }
};

// Sorts entries by key; of equal keys, the last one given is kept.
std::vector<std::pair<Term, Term>> sorted_unique(std::vector<std::pair<Term, Term>> entries) {
  std::stable_sort(entries.begin(), entries.end(), KeyLess());
  std::vector<std::pair<Term, Term>> unique;
  unique.reserve(entries.size());
  for (auto& entry : entries) {
    if (!unique.empty() && compare_terms(unique.back().first, entry.first, true) == 0) {
      unique.back() = std::move(entry);
    } else {
      unique.push_back(std::move(entry));
    }
  }
  return unique;
}

// A node for sorted, unique entries, which it takes.
MapNode* map_node(std::span<std::pair<Term, Term>> entries) {
  const std::uint32_t shape = shape_of(entries);
  if (shape != kNoShape) {
    MapNode* node = allocate_sized<MapNode, Term>(entries.size());
    node->size = kShapedMark | shape;
    Term* value = node->values();
    for (auto& entry : entries) new (value++) Term(std::move(entry.second));
    return node;
  }
  if (entries.size() >= kShapedMark) throw std::length_error("map too large");
  MapNode* node = allocate_sized<MapNode, std::pair<Term, Term>>(entries.size());
  std::uninitialized_move(entries.begin(), entries.end(), node->entries());
  return node;
}

}  // namespace

Term Term::map(std::vector<std::pair<Term, Term>> entries) {
  return map(std::span<std::pair<Term, Term>>(entries));
}

Term Term::map(std::span<std::pair<Term, Term>> entries) {
  auto out_of_order = [](const auto& a, const auto& b) {
    return compare_terms(a.first, b.first, true) >= 0;
  };
  Term t(TermType::kMap);
  // Decoded maps usually arrive sorted already (the BEAM's small-map order).
  if (std::adjacent_find(entries.begin(), entries.end(), out_of_order) != entries.end()) {
    std::vector<std::pair<Term, Term>> sorted = sorted_unique(
        {std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end())});
    t.node_ = map_node(sorted);
  } else {
    t.node_ = map_node(entries);
  }
  return t;
}

Term Term::map(std::initializer_list<std::pair<Term, Term>> entries) {
  return map(std::vector<std::pair<Term, Term>>(entries));
}

Term Term::pid(PidValue value) {
  const std::uint32_t number = value.node.entry_->number;
  if (number < AtomTable::kMaxNumbered) {
    Term t(TermType::kPid);
    t.tag_ |= 0x10;
    auto* raw = reinterpret_cast<unsigned char*>(&t);
    for (std::size_t i = 0; i < 3; ++i) {
      raw[kPidNumberAt + i] = static_cast<unsigned char>(number >> (8 * i));
    }
    std::memcpy(raw + kPidCreationAt, &value.creation, 4);
    std::memcpy(raw + kPidIdAt, &value.id, 4);
    std::memcpy(raw + kPidSerialAt, &value.serial, 4);
    return t;
  }
  auto* node = new PidNode();
  node->value = std::move(value);
  Term t(TermType::kPid);
  t.node_ = node;
  return t;
}

Term Term::port(PortValue value) {
  auto* node = new PortNode();
  node->value = std::move(value);
  Term t(TermType::kPort);
  t.node_ = node;
  return t;
}

Term Term::reference(RefValue value) {
  assert(!value.ids.empty() && value.ids.size() <= 5);
  auto* node = new RefNode();
  node->value = std::move(value);
  Term t(TermType::kReference);
  t.node_ = node;
  return t;
}

Term Term::fun(std::string_view encoded) {
  Term t(TermType::kFun);
  t.node_ = bytes_node(encoded);
  return t;
}

// ---------------------------------------------------------------------------
// Accessors

bool Term::is_atom(std::string_view text) const {
  return type() == TermType::kAtom && atom_->text == text;
}

bool Term::is_tuple(std::size_t arity) const {
  return type() == TermType::kTuple && node_->size == arity;
}

bool Term::is_nil() const {
  return type() == TermType::kList && node_ == nullptr;
}

bool Term::is_proper_list() const {
  return type() == TermType::kList && tail().is_nil();
}

std::int64_t Term::as_integer() const {
  assert(type() == TermType::kInteger);
  return integer_;
}

const BigIntValue& Term::as_big_integer() const {
  assert(type() == TermType::kBigInteger);
  return static_cast<const BigNode&>(node()).value;
}

double Term::as_float() const {
  assert(type() == TermType::kFloat);
  return float_;
}

Atom Term::as_atom() const {
  assert(type() == TermType::kAtom);
  return Atom(atom_);
}

std::string_view Term::as_binary() const {
  assert(type() == TermType::kBinary || type() == TermType::kBitString);
  if (is_inline()) return {inline_bytes(), inline_size()};
  auto& bytes = const_cast<BytesNode&>(static_cast<const BytesNode&>(node()));
  return {bytes.bytes(), bytes.size};
}

unsigned Term::bits_in_last_byte() const {
  assert(type() == TermType::kBinary || type() == TermType::kBitString);
  return type() == TermType::kBitString ? small_[0] : 8;
}

PidValue Term::as_pid() const {
  assert(type() == TermType::kPid);
  if (!is_inline()) return static_cast<const PidNode&>(node()).value;
  const auto* raw = reinterpret_cast<const unsigned char*>(this);
  std::uint32_t number = 0;
  for (std::size_t i = 0; i < 3; ++i) number |= std::uint32_t{raw[kPidNumberAt + i]} << (8 * i);
  PidValue pid{Atom(AtomTable::instance().by_number(number))};
  std::memcpy(&pid.creation, raw + kPidCreationAt, 4);
  std::memcpy(&pid.id, raw + kPidIdAt, 4);
  std::memcpy(&pid.serial, raw + kPidSerialAt, 4);
  return pid;
}

const PortValue& Term::as_port() const {
  assert(type() == TermType::kPort);
  return static_cast<const PortNode&>(node()).value;
}

const RefValue& Term::as_reference() const {
  assert(type() == TermType::kReference);
  return static_cast<const RefNode&>(node()).value;
}

std::string_view Term::fun_encoding() const {
  assert(type() == TermType::kFun);
  auto& bytes = const_cast<BytesNode&>(static_cast<const BytesNode&>(node()));
  return {bytes.bytes(), bytes.size};
}

std::span<const Term> Term::elements() const {
  assert(type() == TermType::kTuple || type() == TermType::kList);
  if (node_ == nullptr) return {};
  auto& seq = const_cast<SeqNode&>(static_cast<const SeqNode&>(node()));
  return {seq.elements(), seq.size};
}

const Term& Term::tail() const {
  assert(type() == TermType::kList);
  if (node_ == nullptr) return nil_term();
  return static_cast<const SeqNode&>(node()).tail;
}

bool Term::as_string(std::string* out) const {
  if (!is_proper_list()) return false;
  std::string chars;
  for (const Term& e : elements()) {
    if (e.type() != TermType::kInteger || e.integer_ < 0 || e.integer_ > 255) return false;
    chars.push_back(static_cast<char>(e.integer_));
  }
  *out = std::move(chars);
  return true;
}

MapEntries Term::map_entries() const {
  assert(type() == TermType::kMap);
  auto& map = const_cast<MapNode&>(static_cast<const MapNode&>(node()));
  if (map.shaped()) {
    const Shape& shape = shapes().get(map.shape());
    return {shape.keys.data(), map.values(), shape.keys.size()};
  }
  return {map.entries(), map.size};
}

namespace {

// The index of the first entry whose key is not below `key` in map key
// order.
std::size_t lower_bound(const MapEntries& entries, const Term& key) {
  std::size_t low = 0;
  std::size_t high = entries.size();
  while (low < high) {
    const std::size_t mid = low + (high - low) / 2;
    if (compare_terms(entries.key(mid), key, true) < 0) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  return low;
}

}  // namespace

const Term* Term::find(const Term& key) const {
  const MapEntries entries = map_entries();
  const std::size_t at = lower_bound(entries, key);
  if (at == entries.size() || compare_terms(entries.key(at), key, true) != 0) return nullptr;
  return &entries.value(at);
}

Term Term::map_put(Term key, Term value) const {
  const MapEntries entries = map_entries();
  const std::size_t at = lower_bound(entries, key);
  const bool replaces = at != entries.size() && compare_terms(entries.key(at), key, true) == 0;
  std::vector<std::pair<Term, Term>> updated;
  updated.reserve(entries.size() + 1);
  for (std::size_t i = 0; i < at; ++i) updated.emplace_back(entries.key(i), entries.value(i));
  updated.emplace_back(std::move(key), std::move(value));
  for (std::size_t i = replaces ? at + 1 : at; i < entries.size(); ++i) {
    updated.emplace_back(entries.key(i), entries.value(i));
  }
  Term t(TermType::kMap);
  t.node_ = map_node(updated);
  return t;
}

}  // namespace presence
