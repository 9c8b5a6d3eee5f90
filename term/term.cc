#include "term/term.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "term/term_order.h"

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

using detail::compare_terms;

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

}  // namespace presence
