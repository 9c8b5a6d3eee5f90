#include "term/term.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace presence {

static_assert(sizeof(Term) == 16, "a Term is a tag and one word");

// ---------------------------------------------------------------------------
// Atom table

namespace {

// Interned atom texts. Entries are never removed, so the pointers handed out
// stay valid for the life of the process; readers share the lock.
class AtomTable {
 public:
  static AtomTable& instance() {
    static AtomTable* table = new AtomTable();  // never destroyed: atoms outlive statics
    return *table;
  }

  const std::string* intern(std::string_view text) {
    {
      std::shared_lock lock(mutex_);
      auto it = entries_.find(text);
      if (it != entries_.end()) return it->second.get();
    }
    std::unique_lock lock(mutex_);
    auto it = entries_.find(text);
    if (it != entries_.end()) return it->second.get();
    auto entry = std::make_unique<std::string>(text);
    const std::string* result = entry.get();
    entries_.emplace(std::string_view(*result), std::move(entry));
    return result;
  }

 private:
  std::shared_mutex mutex_;
  // Keys view the owned strings, which never move.
  std::unordered_map<std::string_view, std::unique_ptr<std::string>> entries_;
};

const std::string* empty_atom_entry() {
  static const std::string* entry = AtomTable::instance().intern("");
  return entry;
}

}  // namespace

Atom::Atom() : entry_(empty_atom_entry()) {}

Atom::Atom(std::string_view utf8) : entry_(AtomTable::instance().intern(utf8)) {}

std::string_view Atom::text() const {
  return *entry_;
}

std::strong_ordering Atom::operator<=>(const Atom& other) const {
  if (entry_ == other.entry_) return std::strong_ordering::equal;
  // UTF-8 byte order is code point order, which is how the BEAM orders atoms.
  int c = entry_->compare(*other.entry_);
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

// The payload of a boxed Term. Immutable once built; the count is the only
// thing that changes, and it is atomic so Terms may be shared across threads.
struct Node {
  std::atomic<std::size_t> refs{1};
  virtual ~Node() = default;
};

struct BigNode : Node {
  BigIntValue value;
};

struct BytesNode : Node {
  std::string bytes;
  unsigned bits = 8;  // used bits of the last byte, for bitstrings
};

// Tuples and lists. For a list, `elements` is never empty and `tail` is never
// a non-empty list (see Term::list).
struct SeqNode : Node {
  std::vector<Term> elements;
  Term tail;
};

struct MapNode : Node {
  std::vector<std::pair<Term, Term>> entries;  // sorted by key, no duplicates
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
using detail::MapNode;
using detail::PidNode;
using detail::PortNode;
using detail::RefNode;
using detail::SeqNode;

bool is_boxed(TermType type) {
  switch (type) {
    case TermType::kInteger:
    case TermType::kFloat:
    case TermType::kAtom:
      return false;
    default:
      return true;  // kList too: its pointer is null for []
  }
}

void release(TermType type, detail::Node* node) {
  if (is_boxed(type) && node != nullptr &&
      node->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete node;
  }
}

const Term& nil_term() {
  static const Term nil;
  return nil;
}

}  // namespace

// ---------------------------------------------------------------------------
// Lifetime

Term::Term() : node_(nullptr) {}

Term::~Term() {
  release(type_, node_);
}

Term::Term(const Term& other) : type_(other.type_), integer_(other.integer_) {
  if (is_boxed(type_) && node_ != nullptr) node_->refs.fetch_add(1, std::memory_order_relaxed);
}

Term::Term(Term&& other) noexcept : type_(other.type_), integer_(other.integer_) {
  other.type_ = TermType::kList;
  other.node_ = nullptr;
}

Term& Term::operator=(const Term& other) {
  Term copy(other);
  return *this = std::move(copy);
}

Term& Term::operator=(Term&& other) noexcept {
  if (this != &other) {
    release(type_, node_);
    type_ = other.type_;
    integer_ = other.integer_;
    other.type_ = TermType::kList;
    other.node_ = nullptr;
  }
  return *this;
}

const detail::Node& Term::node() const {
  assert(is_boxed(type_) && node_ != nullptr);
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

Term Term::binary(std::string_view bytes) {
  auto* node = new BytesNode();
  node->bytes.assign(bytes);
  Term t(TermType::kBinary);
  t.node_ = node;
  return t;
}

Term Term::bitstring(std::string_view bytes, unsigned bits_in_last_byte) {
  assert(bits_in_last_byte >= 1 && bits_in_last_byte <= 8);
  if (bits_in_last_byte >= 8 || bytes.empty()) return binary(bytes);
  auto* node = new BytesNode();
  node->bytes.assign(bytes);
  // Unused low bits are not part of the value; clearing them makes equal
  // bitstrings equal bytewise.
  auto mask = static_cast<unsigned char>(0xFF << (8 - bits_in_last_byte));
  node->bytes.back() = static_cast<char>(static_cast<unsigned char>(node->bytes.back()) & mask);
  node->bits = bits_in_last_byte;
  Term t(TermType::kBitString);
  t.node_ = node;
  return t;
}

Term Term::tuple(std::vector<Term> elements) {
  auto* node = new SeqNode();
  node->elements = std::move(elements);
  Term t(TermType::kTuple);
  t.node_ = node;
  return t;
}

Term Term::tuple(std::initializer_list<Term> elements) {
  return tuple(std::vector<Term>(elements));
}

Term Term::list(std::vector<Term> elements, Term tail) {
  if (elements.empty()) return tail;
  // A non-empty list as tail is spliced in, so that equal lists have one
  // representation.
  if (tail.type_ == TermType::kList && tail.node_ != nullptr) {
    const auto& rest = static_cast<const SeqNode&>(tail.node());
    elements.insert(elements.end(), rest.elements.begin(), rest.elements.end());
    Term next = rest.tail;
    tail = std::move(next);
  }
  auto* node = new SeqNode();
  node->elements = std::move(elements);
  node->tail = std::move(tail);
  Term t(TermType::kList);
  t.node_ = node;
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

int compare_terms(const Term& a, const Term& b, bool key_order);

// Map keys are ordered as the BEAM orders them: all integers before all
// floats, otherwise term order.
struct KeyLess {
  bool operator()(const std::pair<Term, Term>& a, const std::pair<Term, Term>& b) const {
    return compare_terms(a.first, b.first, true) < 0;
  }
  bool operator()(const std::pair<Term, Term>& a, const Term& key) const {
    return compare_terms(a.first, key, true) < 0;
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

}  // namespace

Term Term::map(std::vector<std::pair<Term, Term>> entries) {
  auto out_of_order = [](const auto& a, const auto& b) {
    return compare_terms(a.first, b.first, true) >= 0;
  };
  // Decoded maps usually arrive sorted already (the BEAM's small-map order).
  if (std::adjacent_find(entries.begin(), entries.end(), out_of_order) != entries.end()) {
    entries = sorted_unique(std::move(entries));
  }
  auto* node = new MapNode();
  node->entries = std::move(entries);
  Term t(TermType::kMap);
  t.node_ = node;
  return t;
}

Term Term::map(std::initializer_list<std::pair<Term, Term>> entries) {
  return map(std::vector<std::pair<Term, Term>>(entries));
}

Term Term::pid(PidValue value) {
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

namespace {

// What Erlang compares funs by, read from their encoding: closures by
// module, index, uniq, free variable count and then the free variables
// (compared here by their encoding); exports by module, function, arity.
// The creating pid is not part of a fun's identity.
struct FunKey {
  enum Kind { kClosure, kExport, kUnreadable } kind = kUnreadable;
  std::string module;
  std::string function;          // exports
  std::int64_t number = 0;       // arity of an export, index of a closure
  std::int64_t uniq = 0;         // closures
  std::uint32_t free_count = 0;  // closures
  std::size_t env_offset = 0;    // closures: where the free variables start
};

// A cursor over a fun's encoding that fails instead of reading past it.
class FunReader {
 public:
  explicit FunReader(std::string_view bytes) : bytes_(bytes) {}

  std::size_t position() const { return pos_; }
  bool ok() const { return ok_; }

  std::uint64_t number(std::size_t size) {
    if (!ok_ || bytes_.size() - pos_ < size) return fail();
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) {
      value = (value << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
    }
    pos_ += size;
    return value;
  }

  void skip(std::size_t size) {
    if (ok_ && bytes_.size() - pos_ >= size) {
      pos_ += size;
    } else {
      fail();
    }
  }

  std::string atom() {
    auto tag = number(1);
    bool small = tag == 115 || tag == 119;
    bool latin1 = tag == 100 || tag == 115;
    if (!small && !latin1 && tag != 118) {
      fail();
      return {};
    }
    auto length = static_cast<std::size_t>(number(small ? 1 : 2));
    if (!ok_ || bytes_.size() - pos_ < length) {
      fail();
      return {};
    }
    std::string text;
    for (char c : bytes_.substr(pos_, length)) {
      auto u = static_cast<unsigned char>(c);
      if (latin1 && u >= 0x80) {
        text += static_cast<char>(0xC0 | (u >> 6));
        text += static_cast<char>(0x80 | (u & 0x3F));
      } else {
        text += c;
      }
    }
    pos_ += length;
    return text;
  }

  std::int64_t small_integer() {
    auto tag = number(1);
    if (tag == 97) return static_cast<std::int64_t>(number(1));
    if (tag == 98) return static_cast<std::int32_t>(number(4));
    return fail();
  }

  void pid() {
    auto tag = number(1);
    if (tag != 88 && tag != 103) {
      fail();
      return;
    }
    atom();
    skip(tag == 88 ? 12 : 9);
  }

 private:
  std::uint64_t fail() {
    ok_ = false;
    return 0;
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

FunKey read_fun_key(std::string_view encoded) {
  FunKey key;
  FunReader reader(encoded);
  auto tag = reader.number(1);
  if (tag == 113) {
    key.module = reader.atom();
    key.function = reader.atom();
    key.number = reader.small_integer();
    if (reader.ok()) key.kind = FunKey::kExport;
  } else if (tag == 112) {
    reader.skip(4 + 1 + 16);  // size, arity, md5
    key.number = static_cast<std::int64_t>(reader.number(4));
    key.free_count = static_cast<std::uint32_t>(reader.number(4));
    key.module = reader.atom();
    reader.small_integer();  // old index
    key.uniq = reader.small_integer();
    reader.pid();
    key.env_offset = reader.position();
    if (reader.ok()) key.kind = FunKey::kClosure;
  }
  return key;
}

}  // namespace

Term Term::fun(std::string_view encoded) {
  auto* node = new BytesNode();
  node->bytes.assign(encoded);
  Term t(TermType::kFun);
  t.node_ = node;
  return t;
}

// ---------------------------------------------------------------------------
// Accessors

bool Term::is_atom(std::string_view text) const {
  return type_ == TermType::kAtom && *atom_ == text;
}

bool Term::is_tuple(std::size_t arity) const {
  return type_ == TermType::kTuple && size() == arity;
}

bool Term::is_nil() const {
  return type_ == TermType::kList && node_ == nullptr;
}

bool Term::is_proper_list() const {
  return type_ == TermType::kList && tail().is_nil();
}

std::int64_t Term::as_integer() const {
  assert(type_ == TermType::kInteger);
  return integer_;
}

const BigIntValue& Term::as_big_integer() const {
  assert(type_ == TermType::kBigInteger);
  return static_cast<const BigNode&>(node()).value;
}

double Term::as_float() const {
  assert(type_ == TermType::kFloat);
  return float_;
}

Atom Term::as_atom() const {
  assert(type_ == TermType::kAtom);
  return Atom(atom_);
}

std::string_view Term::as_binary() const {
  assert(type_ == TermType::kBinary || type_ == TermType::kBitString);
  return static_cast<const BytesNode&>(node()).bytes;
}

unsigned Term::bits_in_last_byte() const {
  assert(type_ == TermType::kBinary || type_ == TermType::kBitString);
  return static_cast<const BytesNode&>(node()).bits;
}

const PidValue& Term::as_pid() const {
  assert(type_ == TermType::kPid);
  return static_cast<const PidNode&>(node()).value;
}

const PortValue& Term::as_port() const {
  assert(type_ == TermType::kPort);
  return static_cast<const PortNode&>(node()).value;
}

const RefValue& Term::as_reference() const {
  assert(type_ == TermType::kReference);
  return static_cast<const RefNode&>(node()).value;
}

std::string_view Term::fun_encoding() const {
  assert(type_ == TermType::kFun);
  return static_cast<const BytesNode&>(node()).bytes;
}

std::span<const Term> Term::elements() const {
  assert(type_ == TermType::kTuple || type_ == TermType::kList);
  if (node_ == nullptr) return {};
  return static_cast<const SeqNode&>(node()).elements;
}

const Term& Term::tail() const {
  assert(type_ == TermType::kList);
  if (node_ == nullptr) return nil_term();
  return static_cast<const SeqNode&>(node()).tail;
}

bool Term::as_string(std::string* out) const {
  if (!is_proper_list()) return false;
  std::string chars;
  for (const Term& e : elements()) {
    if (e.type_ != TermType::kInteger || e.integer_ < 0 || e.integer_ > 255) return false;
    chars.push_back(static_cast<char>(e.integer_));
  }
  *out = std::move(chars);
  return true;
}

std::span<const std::pair<Term, Term>> Term::map_entries() const {
  assert(type_ == TermType::kMap);
  return static_cast<const MapNode&>(node()).entries;
}

const Term* Term::find(const Term& key) const {
  auto entries = map_entries();
  auto it = std::lower_bound(entries.begin(), entries.end(), key, KeyLess());
  if (it == entries.end() || compare_terms(it->first, key, true) != 0) return nullptr;
  return &it->second;
}

Term Term::map_put(Term key, Term value) const {
  auto entries = map_entries();
  auto it = std::lower_bound(entries.begin(), entries.end(), key, KeyLess());
  auto* node = new MapNode();
  node->entries.reserve(entries.size() + 1);
  node->entries.assign(entries.begin(), it);
  bool replaces = it != entries.end() && compare_terms(it->first, key, true) == 0;
  node->entries.emplace_back(std::move(key), std::move(value));
  node->entries.insert(node->entries.end(), replaces ? it + 1 : it, entries.end());
  Term t(TermType::kMap);
  t.node_ = node;
  return t;
}

// ---------------------------------------------------------------------------
// Term order

namespace {

// Position of each kind in Erlang's term order; [] sorts before other lists.
int rank(const Term& t) {
  switch (t.type()) {
    case TermType::kInteger:
    case TermType::kBigInteger:
    case TermType::kFloat:
      return 0;
    case TermType::kAtom:
      return 1;
    case TermType::kReference:
      return 2;
    case TermType::kFun:
      return 3;
    case TermType::kPort:
      return 4;
    case TermType::kPid:
      return 5;
    case TermType::kTuple:
      return 6;
    case TermType::kMap:
      return 7;
    case TermType::kList:
      return t.is_nil() ? 8 : 9;
    case TermType::kBinary:
    case TermType::kBitString:
      return 10;
  }
  return 11;
}

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int compare_magnitudes(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  if (a.size() != b.size()) return three_way(a.size(), b.size());
  for (std::size_t i = a.size(); i-- > 0;) {
    if (a[i] != b[i]) return three_way(a[i], b[i]);
  }
  return 0;
}

int compare_bigs(const BigIntValue& a, const BigIntValue& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int c = compare_magnitudes(a.magnitude, b.magnitude);
  return a.negative ? -c : c;
}

// The exact value of an integral double of magnitude at least 2^63.
BigIntValue big_from_double(double d) {
  int exponent = 0;
  double fraction = std::frexp(std::fabs(d), &exponent);  // |d| = fraction * 2^exponent
  auto mantissa = static_cast<std::uint64_t>(std::ldexp(fraction, 53));
  int shift = exponent - 53;
  assert(shift >= 0);
  BigIntValue big;
  big.negative = d < 0;
  big.magnitude.assign(static_cast<std::size_t>(shift / 8) + 9, 0);
  unsigned __int128 shifted = static_cast<unsigned __int128>(mantissa) << (shift % 8);
  for (std::size_t i = 0; i < 9; ++i) {
    big.magnitude[static_cast<std::size_t>(shift / 8) + i] =
        static_cast<std::uint8_t>(shifted >> (8 * i));
  }
  while (!big.magnitude.empty() && big.magnitude.back() == 0) big.magnitude.pop_back();
  return big;
}

constexpr double kTwoTo63 = 9223372036854775808.0;

// Numeric comparison of an integer and a double; 0 when equal in value.
int compare_int_double(std::int64_t i, double d) {
  if (d >= kTwoTo63) return -1;
  if (d < -kTwoTo63) return 1;
  auto whole = static_cast<std::int64_t>(d);  // truncates; exact as |d| < 2^63
  if (i != whole) return three_way(i, whole);
  double fraction = d - static_cast<double>(whole);
  return fraction > 0 ? -1 : (fraction < 0 ? 1 : 0);
}

int compare_big_double(const BigIntValue& big, double d) {
  // A BigInteger lies outside int64_t, so it exceeds any smaller double.
  if (std::fabs(d) < kTwoTo63) return big.negative ? -1 : 1;
  return compare_bigs(big, big_from_double(d));
}

bool is_float(const Term& t) {
  return t.type() == TermType::kFloat;
}

// Numbers compare by value; an integer and a float of equal value are
// ordered integer first so that 0 means =:=. In key order every integer
// precedes every float, as in the BEAM's map keys.
int compare_numbers(const Term& a, const Term& b, bool key_order) {
  if (key_order && is_float(a) != is_float(b)) return is_float(a) ? 1 : -1;
  int c = 0;
  if (is_float(a) && is_float(b)) {
    c = three_way(a.as_float(), b.as_float());
  } else if (is_float(a)) {
    return -compare_numbers(b, a, key_order);
  } else if (is_float(b)) {
    c = a.is_integer() ? compare_int_double(a.as_integer(), b.as_float())
                       : compare_big_double(a.as_big_integer(), b.as_float());
    return c != 0 ? c : -1;
  } else if (a.is_integer() && b.is_integer()) {
    c = three_way(a.as_integer(), b.as_integer());
  } else if (a.is_integer()) {
    c = b.as_big_integer().negative ? 1 : -1;
  } else if (b.is_integer()) {
    c = a.as_big_integer().negative ? -1 : 1;
  } else {
    c = compare_bigs(a.as_big_integer(), b.as_big_integer());
  }
  return c;
}

int compare_atoms(Atom a, Atom b) {
  auto c = a <=> b;
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// Reference words compare as one number, most significant word last; missing
// words count as zero (the BEAM does the same).
int compare_ref_ids(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = n; i-- > 0;) {
    std::uint32_t x = i < a.size() ? a[i] : 0;
    std::uint32_t y = i < b.size() ? b[i] : 0;
    if (x != y) return three_way(x, y);
  }
  return 0;
}

int compare_refs(const RefValue& a, const RefValue& b) {
  if (int c = compare_atoms(a.node, b.node)) return c;
  if (int c = three_way(a.creation, b.creation)) return c;
  return compare_ref_ids(a.ids, b.ids);
}

// The BEAM orders pids by serial, then number, then node, then creation.
int compare_pids(const PidValue& a, const PidValue& b) {
  if (int c = three_way(a.serial, b.serial)) return c;
  if (int c = three_way(a.id, b.id)) return c;
  if (int c = compare_atoms(a.node, b.node)) return c;
  return three_way(a.creation, b.creation);
}

int compare_ports(const PortValue& a, const PortValue& b) {
  if (int c = compare_atoms(a.node, b.node)) return c;
  if (int c = three_way(a.creation, b.creation)) return c;
  return three_way(a.id, b.id);
}

int compare_text(std::string_view a, std::string_view b) {
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int compare_funs(const Term& a, const Term& b) {
  // Funs are rare in presence data: their keys are read on demand.
  FunKey x = read_fun_key(a.fun_encoding());
  FunKey y = read_fun_key(b.fun_encoding());
  if (x.kind != y.kind) return three_way(x.kind, y.kind);
  if (x.kind == FunKey::kUnreadable) return compare_text(a.fun_encoding(), b.fun_encoding());
  if (int c = compare_text(x.module, y.module)) return c;
  if (x.kind == FunKey::kExport) {
    if (int c = compare_text(x.function, y.function)) return c;
    return three_way(x.number, y.number);
  }
  if (int c = three_way(x.number, y.number)) return c;
  if (int c = three_way(x.uniq, y.uniq)) return c;
  if (int c = three_way(x.free_count, y.free_count)) return c;
  return compare_text(a.fun_encoding().substr(x.env_offset), b.fun_encoding().substr(y.env_offset));
}

std::size_t bit_size(const Term& t) {
  std::size_t bytes = t.as_binary().size();
  return bytes == 0 ? 0 : (bytes - 1) * 8 + t.bits_in_last_byte();
}

// Bitstrings compare bit by bit; a prefix sorts first.
int compare_bitstrings(const Term& a, const Term& b) {
  std::string_view x = a.as_binary();
  std::string_view y = b.as_binary();
  std::size_t bits_a = bit_size(a);
  std::size_t bits_b = bit_size(b);
  std::size_t common = std::min(bits_a, bits_b);
  std::size_t whole = common / 8;
  if (int c = std::memcmp(x.data(), y.data(), whole)) return c < 0 ? -1 : 1;
  if (common % 8 != 0) {
    auto mask = static_cast<unsigned char>(0xFF << (8 - common % 8));
    int c = three_way(static_cast<unsigned char>(x[whole]) & mask,
                      static_cast<unsigned char>(y[whole]) & mask);
    if (c != 0) return c;
  }
  return three_way(bits_a, bits_b);
}

int compare_sequences(std::span<const Term> a, std::span<const Term> b, bool key_order) {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (int c = compare_terms(a[i], b[i], key_order)) return c;
  }
  return 0;
}

int compare_lists(const Term& a, const Term& b, bool key_order) {
  auto x = a.elements();
  auto y = b.elements();
  if (int c = compare_sequences(x, y, key_order)) return c;
  if (x.size() == y.size()) return compare_terms(a.tail(), b.tail(), key_order);
  // One list goes on where the other has its tail, which is never a
  // non-empty list: the kinds decide.
  const Term& tail = x.size() < y.size() ? a.tail() : b.tail();
  int c = three_way(rank(tail), 9);
  return x.size() < y.size() ? c : -c;
}

// Maps compare by size, then keys in key order, then values in that order.
int compare_maps(const Term& a, const Term& b, bool key_order) {
  auto x = a.map_entries();
  auto y = b.map_entries();
  if (x.size() != y.size()) return three_way(x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (int c = compare_terms(x[i].first, y[i].first, true)) return c;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (int c = compare_terms(x[i].second, y[i].second, key_order)) return c;
  }
  return 0;
}

int compare_terms(const Term& a, const Term& b, bool key_order) {
  int ra = rank(a);
  int rb = rank(b);
  if (ra != rb) return three_way(ra, rb);
  switch (a.type()) {
    case TermType::kInteger:
    case TermType::kBigInteger:
    case TermType::kFloat:
      return compare_numbers(a, b, key_order);
    case TermType::kAtom:
      return compare_atoms(a.as_atom(), b.as_atom());
    case TermType::kReference:
      return compare_refs(a.as_reference(), b.as_reference());
    case TermType::kFun:
      return compare_funs(a, b);
    case TermType::kPort:
      return compare_ports(a.as_port(), b.as_port());
    case TermType::kPid:
      return compare_pids(a.as_pid(), b.as_pid());
    case TermType::kTuple:
      if (a.size() != b.size()) return three_way(a.size(), b.size());
      return compare_sequences(a.elements(), b.elements(), key_order);
    case TermType::kMap:
      return compare_maps(a, b, key_order);
    case TermType::kList:
      return a.is_nil() ? 0 : compare_lists(a, b, key_order);
    case TermType::kBinary:
    case TermType::kBitString:
      return compare_bitstrings(a, b);
  }
  return 0;
}

}  // namespace

std::strong_ordering Term::compare(const Term& other) const {
  if (type_ == other.type_ && integer_ == other.integer_ && type_ != TermType::kFloat) {
    return std::strong_ordering::equal;  // same immediate or same shared node
  }
  int c = compare_terms(*this, other, false);
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

// ---------------------------------------------------------------------------
// Hashing

namespace {

std::size_t mix(std::size_t seed, std::size_t value) {
  std::uint64_t x = seed ^ (value + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<std::size_t>(x);
}

std::size_t hash_ref(const RefValue& ref) {
  std::size_t h = mix(ref.node.hash(), ref.creation);
  std::size_t n = ref.ids.size();
  while (n > 0 && ref.ids[n - 1] == 0) --n;  // consistent with compare_ref_ids
  for (std::size_t i = 0; i < n; ++i) h = mix(h, ref.ids[i]);
  return h;
}

// Hashes what compare_funs looks at, so that funs differing only in their
// creator hash alike.
std::size_t hash_fun(std::string_view encoded) {
  FunKey key = read_fun_key(encoded);
  if (key.kind == FunKey::kUnreadable) return std::hash<std::string_view>()(encoded);
  std::size_t h = mix(key.kind, std::hash<std::string>()(key.module));
  h = mix(mix(h, std::hash<std::string>()(key.function)), static_cast<std::size_t>(key.number));
  h = mix(mix(h, static_cast<std::size_t>(key.uniq)), key.free_count);
  return mix(h, std::hash<std::string_view>()(encoded.substr(key.env_offset)));
}

}  // namespace

std::size_t Term::hash() const {
  std::size_t h = static_cast<std::size_t>(rank(*this)) + 1;
  switch (type_) {
    case TermType::kInteger:
      return mix(h, static_cast<std::size_t>(integer_));
    case TermType::kBigInteger: {
      const auto& big = as_big_integer();
      h = mix(h, big.negative);
      for (auto byte : big.magnitude) h = mix(h, byte);
      return h;
    }
    case TermType::kFloat: {
      double d = float_ == 0.0 ? 0.0 : float_;  // 0.0 =:= -0.0
      std::uint64_t bits = 0;
      std::memcpy(&bits, &d, sizeof bits);
      return mix(h + 1, bits);
    }
    case TermType::kAtom:
      return mix(h, as_atom().hash());
    case TermType::kReference:
      return mix(h, hash_ref(as_reference()));
    case TermType::kFun:
      return mix(h, hash_fun(fun_encoding()));
    case TermType::kPort: {
      const auto& port = as_port();
      return mix(mix(mix(h, port.node.hash()), port.id), port.creation);
    }
    case TermType::kPid: {
      const auto& pid = as_pid();
      return mix(mix(mix(mix(h, pid.node.hash()), pid.id), pid.serial), pid.creation);
    }
    case TermType::kTuple:
      for (const Term& e : elements()) h = mix(h, e.hash());
      return h;
    case TermType::kMap:
      for (const auto& [k, v] : map_entries()) h = mix(mix(h, k.hash()), v.hash());
      return h;
    case TermType::kList:
      for (const Term& e : elements()) h = mix(h, e.hash());
      return is_nil() ? h : mix(h, tail().hash());
    case TermType::kBinary:
    case TermType::kBitString:
      return mix(mix(h, std::hash<std::string_view>()(as_binary())), bits_in_last_byte());
  }
  return h;
}

// ---------------------------------------------------------------------------
// Rendering

namespace {

// Longer renderings are cut here: a log line should stay readable even when
// the term is a whole tracker state.
constexpr std::size_t kMaxRendering = 4096;

bool is_reserved_word(std::string_view word) {
  static constexpr std::string_view kReserved[] = {
      "after", "and",   "andalso", "band",    "begin", "bnot", "bor",  "bsl", "bsr",   "bxor",
      "case",  "catch", "cond",    "div",     "end",   "fun",  "if",   "let", "maybe", "not",
      "of",    "or",    "orelse",  "receive", "rem",   "try",  "when", "xor"};
  return std::find(std::begin(kReserved), std::end(kReserved), word) != std::end(kReserved);
}

bool needs_quotes(std::string_view text) {
  if (text.empty() || text[0] < 'a' || text[0] > 'z') return true;
  for (char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '@';
    if (!plain) return true;
  }
  return is_reserved_word(text);
}

// Escapes one byte of quoted text; bytes >= 0x80 pass through (UTF-8).
void append_escaped(std::string* out, char c, char quote) {
  switch (c) {
    case '\n':
      *out += "\\n";
      return;
    case '\r':
      *out += "\\r";
      return;
    case '\t':
      *out += "\\t";
      return;
    case '\\':
      *out += "\\\\";
      return;
    default:
      break;
  }
  auto u = static_cast<unsigned char>(c);
  if (c == quote) {
    *out += '\\';
    *out += c;
  } else if (u < 0x20 || u == 0x7F) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", u);
    *out += buf;
  } else {
    *out += c;
  }
}

void append_quoted(std::string* out, std::string_view text, char quote) {
  *out += quote;
  for (char c : text) append_escaped(out, c, quote);
  *out += quote;
}

// Valid UTF-8 whose characters are all printable (or common whitespace).
bool is_printable_utf8(std::string_view bytes, bool* ascii) {
  *ascii = true;
  for (std::size_t i = 0; i < bytes.size();) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7F) return false;
      ++i;
      continue;
    }
    *ascii = false;
    std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || i + n > bytes.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string big_to_decimal(const BigIntValue& big) {
  std::vector<std::uint8_t> digits(big.magnitude);  // little-endian base 256
  std::string decimal;
  while (!digits.empty()) {
    unsigned remainder = 0;
    for (std::size_t i = digits.size(); i-- > 0;) {
      unsigned value = (remainder << 8) | digits[i];
      digits[i] = static_cast<std::uint8_t>(value / 10);
      remainder = value % 10;
    }
    decimal += static_cast<char>('0' + remainder);
    while (!digits.empty() && digits.back() == 0) digits.pop_back();
  }
  if (decimal.empty()) decimal = "0";
  if (big.negative) decimal += '-';
  std::reverse(decimal.begin(), decimal.end());
  return decimal;
}

std::string float_to_text(double d) {
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof buf, d);
  std::string text(buf, result.ptr);
  if (text.find_first_of(".ein") != std::string::npos) {
    auto e = text.find('e');
    if (e != std::string::npos && text.find('.') == std::string::npos) text.insert(e, ".0");
    return text;
  }
  return text + ".0";
}

class Renderer {
 public:
  std::string finish() && {
    if (out_.size() > kMaxRendering) {
      out_.resize(kMaxRendering);
      out_ += "...";
    }
    return std::move(out_);
  }

  void render(const Term& t) {
    if (full()) return;
    switch (t.type()) {
      case TermType::kInteger:
        out_ += std::to_string(t.as_integer());
        return;
      case TermType::kBigInteger:
        out_ += big_to_decimal(t.as_big_integer());
        return;
      case TermType::kFloat:
        out_ += float_to_text(t.as_float());
        return;
      case TermType::kAtom:
        render_atom(t.as_atom());
        return;
      case TermType::kReference:
        render_ref(t.as_reference());
        return;
      case TermType::kFun:
        out_ += "#Fun<" + std::to_string(t.fun_encoding().size()) + " bytes>";
        return;
      case TermType::kPort:
        render_port(t.as_port());
        return;
      case TermType::kPid:
        render_pid(t.as_pid());
        return;
      case TermType::kTuple:
        render_elements(t.elements(), "{", "}");
        return;
      case TermType::kMap:
        render_map(t);
        return;
      case TermType::kList:
        render_list(t);
        return;
      case TermType::kBinary:
      case TermType::kBitString:
        render_bits(t);
        return;
    }
  }

 private:
  bool full() const { return out_.size() > kMaxRendering; }

  void render_atom(Atom atom) {
    if (needs_quotes(atom.text())) {
      append_quoted(&out_, atom.text(), '\'');
    } else {
      out_ += atom.text();
    }
  }

  void render_node(Atom node) {
    render_atom(node);
    out_ += '.';
  }

  void render_pid(const PidValue& pid) {
    out_ += '<';
    render_node(pid.node);
    out_ += std::to_string(pid.id) + "." + std::to_string(pid.serial) + ">";
  }

  void render_port(const PortValue& port) {
    out_ += "#Port<";
    render_node(port.node);
    out_ += std::to_string(port.id) + ">";
  }

  void render_ref(const RefValue& ref) {
    out_ += "#Ref<";
    render_atom(ref.node);
    for (std::size_t i = ref.ids.size(); i-- > 0;) out_ += "." + std::to_string(ref.ids[i]);
    out_ += '>';
  }

  void render_elements(std::span<const Term> elements, const char* open, const char* close) {
    out_ += open;
    for (std::size_t i = 0; i < elements.size() && !full(); ++i) {
      if (i > 0) out_ += ',';
      render(elements[i]);
    }
    out_ += close;
  }

  void render_map(const Term& t) {
    out_ += "#{";
    bool first = true;
    for (const auto& [key, value] : t.map_entries()) {
      if (full()) break;
      if (!first) out_ += ',';
      first = false;
      render(key);
      out_ += " => ";
      render(value);
    }
    out_ += '}';
  }

  void render_list(const Term& t) {
    std::string chars;
    bool ascii = false;
    if (!t.is_nil() && t.as_string(&chars) && is_printable_utf8(chars, &ascii) && ascii) {
      append_quoted(&out_, chars, '"');
      return;
    }
    out_ += '[';
    auto elements = t.elements();
    for (std::size_t i = 0; i < elements.size() && !full(); ++i) {
      if (i > 0) out_ += ',';
      render(elements[i]);
    }
    if (!t.is_nil() && !t.tail().is_nil()) {
      out_ += '|';
      render(t.tail());
    }
    out_ += ']';
  }

  void render_bits(const Term& t) {
    std::string_view bytes = t.as_binary();
    bool ascii = false;
    if (t.type() == TermType::kBinary && !bytes.empty() && is_printable_utf8(bytes, &ascii)) {
      out_ += "<<";
      append_quoted(&out_, bytes, '"');
      out_ += ascii ? ">>" : "/utf8>>";
      return;
    }
    out_ += "<<";
    for (std::size_t i = 0; i < bytes.size() && !full(); ++i) {
      if (i > 0) out_ += ',';
      auto byte = static_cast<unsigned char>(bytes[i]);
      bool last_partial = i + 1 == bytes.size() && t.bits_in_last_byte() < 8;
      if (last_partial) {
        unsigned bits = t.bits_in_last_byte();
        out_ += std::to_string(byte >> (8 - bits)) + ":" + std::to_string(bits);
      } else {
        out_ += std::to_string(byte);
      }
    }
    out_ += ">>";
  }

  std::string out_;
};

}  // namespace

std::string Term::to_string() const {
  Renderer renderer;
  renderer.render(*this);
  return std::move(renderer).finish();
}

}  // namespace presence
