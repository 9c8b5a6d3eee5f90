// Erlang term order and hashing consistent with it.
#include "term/term_order.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <string>

#include "term/term.h"

namespace presence {

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

// ---------------------------------------------------------------------------
// Term order

namespace {

using detail::compare_terms;

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

}  // namespace

int detail::compare_terms(const Term& a, const Term& b, bool key_order) {
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
      // Whole bytes compare as unsigned text, a prefix first.
      if (a.type() == TermType::kBinary && b.type() == TermType::kBinary) {
        return compare_text(a.as_binary(), b.as_binary());
      }
      return compare_bitstrings(a, b);
  }
  return 0;
}

std::strong_ordering Term::compare(const Term& other) const {
  // Same immediate, same inline value or same shared node. Floats are left
  // out: 0.0 and -0.0 differ in their bits.
  if (type() != TermType::kFloat && std::memcmp(this, &other, sizeof(Term)) == 0) {
    return std::strong_ordering::equal;
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

std::size_t Term::node_hash() const {
  std::size_t h = static_cast<std::size_t>(rank(*this)) + 1;
  switch (type()) {
    case TermType::kInteger:
    case TermType::kAtom:
      break;  // always inside the Term: hash() took them
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
    case TermType::kReference:
      return mix(h, hash_ref(as_reference()));
    case TermType::kFun:
      return mix(h, hash_fun(fun_encoding()));
    case TermType::kPort: {
      const auto& port = as_port();
      return mix(mix(mix(h, port.node.hash()), port.id), port.creation);
    }
    case TermType::kPid: {  // a pid whose node cannot be stored inline
      const PidValue pid = as_pid();
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

}  // namespace presence
