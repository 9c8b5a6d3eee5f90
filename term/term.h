// Erlang terms as C++ values.
//
// A Term is an immutable value of 16 bytes. Immediate kinds (integers that fit
// in 64 bits, floats, atoms and the empty list) live inside it; every other
// kind points to a shared, reference-counted, immutable node, so copying a
// Term never copies its contents and Terms may be shared across threads.
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

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace presence {

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
  explicit Atom(const std::string* entry) : entry_(entry) {}

  const std::string* entry_;
};

class Term;

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

namespace detail {
struct Node;  // shared payload of the boxed kinds, defined in term.cc
}

class Term {
 public:
  // The empty list [].
  Term();
  ~Term();
  Term(const Term& other);
  Term(Term&& other) noexcept;
  Term& operator=(const Term& other);
  Term& operator=(Term&& other) noexcept;

  // Construction. Each returns a new value; nothing is ever modified in place.
  static Term integer(std::int64_t value);
  static Term big_integer(BigIntValue value);  // normalised to Integer if it fits
  static Term floating(double value);
  static Term atom(Atom value);
  static Term atom(std::string_view utf8) { return atom(Atom(utf8)); }
  static Term boolean(bool value) { return atom(value ? "true" : "false"); }
  static Term binary(std::string_view bytes);
  static Term bitstring(std::string_view bytes, unsigned bits_in_last_byte);
  static Term tuple(std::vector<Term> elements);
  static Term tuple(std::initializer_list<Term> elements);
  static Term list(std::vector<Term> elements, Term tail = Term());
  static Term list(std::initializer_list<Term> elements);
  static Term string(std::string_view latin1);  // a list of small integers
  static Term map(std::vector<std::pair<Term, Term>> entries);  // last duplicate wins
  static Term map(std::initializer_list<std::pair<Term, Term>> entries);
  static Term pid(PidValue value);
  static Term port(PortValue value);
  static Term reference(RefValue value);
  // `encoded` is the complete external encoding of the fun, tag byte included.
  static Term fun(std::string_view encoded);

  TermType type() const { return type_; }
  bool is_integer() const { return type_ == TermType::kInteger; }
  bool is_atom() const { return type_ == TermType::kAtom; }
  bool is_atom(std::string_view text) const;
  bool is_binary() const { return type_ == TermType::kBinary; }
  bool is_tuple() const { return type_ == TermType::kTuple; }
  bool is_tuple(std::size_t arity) const;
  bool is_map() const { return type_ == TermType::kMap; }
  bool is_list() const { return type_ == TermType::kList; }
  bool is_nil() const;            // the empty list
  bool is_proper_list() const;    // [] or a list whose tail is []
  bool is_pid() const { return type_ == TermType::kPid; }
  bool is_reference() const { return type_ == TermType::kReference; }

  // Accessors. Each asserts the kind; check type() first on untrusted input.
  std::int64_t as_integer() const;
  const BigIntValue& as_big_integer() const;
  double as_float() const;
  Atom as_atom() const;
  std::string_view as_binary() const;  // Binary, or the bytes of a BitString
  unsigned bits_in_last_byte() const;  // BitString only; 8 for a Binary
  const PidValue& as_pid() const;
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
  std::span<const std::pair<Term, Term>> map_entries() const;
  const Term* find(const Term& key) const;  // nullptr when absent
  const Term* find(std::string_view atom_key) const { return find(Term::atom(atom_key)); }
  // A copy of this map with key set to value.
  Term map_put(Term key, Term value) const;

  // Erlang term order and exact equality.
  std::strong_ordering compare(const Term& other) const;
  bool operator==(const Term& other) const { return compare(other) == 0; }
  std::strong_ordering operator<=>(const Term& other) const { return compare(other); }
  std::size_t hash() const;

  // Erlang-like rendering for logs and test failures, e.g.
  // {pub,heartbeat,{a@vm,17},empty} or #{phx_ref => <<"x">>}. Very large
  // terms are cut short with "...".
  std::string to_string() const;

 private:
  explicit Term(TermType type) : type_(type) {}
  const detail::Node& node() const;

  TermType type_ = TermType::kList;
  union {
    std::int64_t integer_;
    double float_;
    const std::string* atom_;
    detail::Node* node_;  // null for the empty list
  };
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
