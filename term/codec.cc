#include "term/codec.h"

#include <ei.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace presence {

const char* to_string(DecodeErrc code) {
  switch (code) {
    case DecodeErrc::kTruncated:
      return "truncated";
    case DecodeErrc::kBadVersion:
      return "bad_version";
    case DecodeErrc::kUnsupportedTag:
      return "unsupported_tag";
    case DecodeErrc::kMalformed:
      return "malformed";
    case DecodeErrc::kTooDeep:
      return "too_deep";
    case DecodeErrc::kTrailingBytes:
      return "trailing_bytes";
  }
  return "unknown";
}

std::string DecodeError::message() const {
  return std::string(to_string(code)) + " term at byte " + std::to_string(offset);
}

namespace {

// Tags of the external term format.
enum Tag : unsigned char {
  kVersion = 131,
  kNewFloat = 70,
  kBitBinary = 77,
  kCompressed = 80,
  kNewPid = 88,
  kNewPort = 89,
  kNewerReference = 90,
  kSmallInteger = 97,
  kInteger = 98,
  kFloat = 99,
  kAtom = 100,
  kReference = 101,
  kPort = 102,
  kPid = 103,
  kSmallTuple = 104,
  kLargeTuple = 105,
  kNil = 106,
  kString = 107,
  kList = 108,
  kBinary = 109,
  kSmallBig = 110,
  kLargeBig = 111,
  kNewFun = 112,
  kExport = 113,
  kNewReference = 114,
  kSmallAtom = 115,
  kMap = 116,
  kAtomUtf8 = 118,
  kSmallAtomUtf8 = 119,
  kV4Port = 120,
};

std::uint32_t read_be(const char* p, int bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

std::string latin1_to_utf8(std::string_view latin1) {
  std::string utf8;
  utf8.reserve(latin1.size() * 2);
  for (char c : latin1) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      utf8 += c;
    } else {
      utf8 += static_cast<char>(0xC0 | (u >> 6));
      utf8 += static_cast<char>(0x80 | (u & 0x3F));
    }
  }
  return utf8;
}

// The BEAM's limit on an atom's length, in characters.
constexpr std::size_t kMaxAtomCharacters = 255;

// Counts the characters of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF); nullopt if it is not.
std::optional<std::size_t> utf8_characters(std::string_view text) {
  std::size_t characters = 0;
  for (std::size_t i = 0; i < text.size(); ++characters) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || i + n > text.size()) return std::nullopt;
    std::uint32_t code = n == 1 ? c : c & (0xFF >> (n + 1));
    for (std::size_t k = 1; k < n; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return std::nullopt;
      code = (code << 6) | (next & 0x3F);
    }
    bool overlong = (n == 3 && code < 0x800) || (n == 4 && code < 0x10000);
    if (overlong || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return std::nullopt;
    i += n;
  }
  return characters;
}

// Tuples and maps of up to this many elements or entries are gathered on the
// stack while their contents decode, so that building one allocates only
// its node. A nested term pays that room on the stack at each of its levels
// (kMaxDecodeDepth at most).
constexpr std::size_t kGatheredOnStack = 4;

// Room for count items: the start of `small` when they fit, else `large`
// sized to count.
template <class T, std::size_t N>
std::span<T> room(std::size_t count, std::array<T, N>* small, std::vector<T>* large) {
  if (count <= N) return {small->data(), count};
  large->resize(count);
  return *large;
}

// Decodes one term from a buffer that ei reads without bounds: before each
// ei call, every byte that call will read is checked to lie before end_.
// Counts read from the input are bounded by the bytes left before anything
// is allocated for them.
class Decoder {
 public:
  Decoder(const char* buf, int end) : buf_(buf), end_(end) {}

  const DecodeError& error() const { return error_; }

  bool term(int* idx, int depth, Term* out) {
    if (!need(*idx, 1)) return false;
    auto tag = static_cast<unsigned char>(buf_[*idx]);
    switch (tag) {
      case kSmallInteger:
      case kInteger:
        return small_integer(idx, tag == kSmallInteger ? 2 : 5, out);
      case kSmallBig:
      case kLargeBig:
        return big_integer(idx, tag == kSmallBig ? 1 : 4, out);
      case kNewFloat:
      case kFloat:
        return floating(idx, tag == kNewFloat ? 9 : 32, out);
      case kAtom:
      case kSmallAtom:
      case kAtomUtf8:
      case kSmallAtomUtf8:
        return atom_term(idx, out);
      case kNewPid:
      case kPid:
        return pid(idx, out);
      case kNewPort:
      case kPort:
      case kV4Port:
        return port(idx, out);
      case kNewerReference:
      case kNewReference:
      case kReference:
        return reference(idx, out);
      case kSmallTuple:
      case kLargeTuple:
        return tuple(idx, depth, out);
      case kNil:
      case kList:
        return list(idx, depth, out);
      case kString:
        return string(idx, out);
      case kMap:
        return map(idx, depth, out);
      case kBinary:
        return binary(idx, out);
      case kBitBinary:
        return bitstring(idx, out);
      case kNewFun:
      case kExport:
        return fun(idx, depth, out);
      default:
        return fail(DecodeErrc::kUnsupportedTag, *idx);
    }
  }

 private:
  bool fail(DecodeErrc code, int at) {
    error_ = DecodeError{code, static_cast<std::size_t>(at)};
    return false;
  }

  int remaining(int idx) const { return end_ - idx; }

  // True if bytes [idx, idx + n) lie inside the buffer; n may be absurd.
  bool fits(int idx, std::int64_t n) const { return n >= 0 && n <= remaining(idx); }

  bool need(int idx, std::int64_t n) { return fits(idx, n) || fail(DecodeErrc::kTruncated, idx); }

  bool deeper(int idx, int depth) {
    return depth < kMaxDecodeDepth || fail(DecodeErrc::kTooDeep, idx);
  }

  bool ei_ok(int rc, int at) { return rc >= 0 || fail(DecodeErrc::kMalformed, at); }

  bool small_integer(int* idx, int size, Term* out) {
    int start = *idx;
    long value = 0;
    if (!need(start, size) || !ei_ok(ei_decode_long(buf_, idx, &value), start)) return false;
    *out = Term::integer(value);
    return true;
  }

  bool big_integer(int* idx, int count_bytes, Term* out) {
    int start = *idx;
    int header = 1 + count_bytes + 1;
    if (!need(start, header)) return false;
    std::uint32_t n = read_be(buf_ + start + 1, count_bytes);
    if (!need(start, header + static_cast<std::int64_t>(n))) return false;
    auto sign = static_cast<unsigned char>(buf_[start + header - 1]);
    if (sign > 1) return fail(DecodeErrc::kMalformed, start);
    BigIntValue big;
    big.negative = sign == 1;
    const auto* digits = reinterpret_cast<const std::uint8_t*>(buf_ + start + header);
    big.magnitude.assign(digits, digits + n);
    *out = Term::big_integer(std::move(big));
    *idx = start + header + static_cast<int>(n);
    return true;
  }

  bool floating(int* idx, int size, Term* out) {
    int start = *idx;
    double value = 0;
    if (!need(start, size) || !ei_ok(ei_decode_double(buf_, idx, &value), start)) return false;
    // The BEAM has no NaN or infinity and refuses them in binary_to_term.
    if (!std::isfinite(value)) return fail(DecodeErrc::kMalformed, start);
    *out = Term::floating(value);
    return true;
  }

  // The size of the atom encoded at idx, header included, once it is known
  // to fit; 0 after failing.
  int atom_extent(int idx) {
    if (!need(idx, 1)) return 0;
    auto tag = static_cast<unsigned char>(buf_[idx]);
    int length_bytes = 0;
    if (tag == kAtom || tag == kAtomUtf8) {
      length_bytes = 2;
    } else if (tag == kSmallAtom || tag == kSmallAtomUtf8) {
      length_bytes = 1;
    } else {
      fail(DecodeErrc::kMalformed, idx);
      return 0;
    }
    if (!need(idx, 1 + length_bytes)) return 0;
    int size = 1 + length_bytes + static_cast<int>(read_be(buf_ + idx + 1, length_bytes));
    return need(idx, size) ? size : 0;
  }

  // Decodes an atom (ei validates length and encoding) and returns its text
  // as UTF-8.
  bool atom(int* idx, Atom* out) {
    int start = *idx;
    int size = atom_extent(start);
    if (size == 0) return false;
    char text[MAXATOMLEN_UTF8];
    erlang_char_encoding was = ERLANG_ASCII;
    erlang_char_encoding result = ERLANG_ASCII;
    int rc = ei_decode_atom_as(buf_, idx, text, sizeof text, ERLANG_UTF8, &was, &result);
    if (!ei_ok(rc, start)) return false;
    // The text is taken from the buffer rather than ei's C string, which
    // would end at an embedded NUL.
    auto tag = static_cast<unsigned char>(buf_[start]);
    int header = (tag == kAtom || tag == kAtomUtf8) ? 3 : 2;
    std::string_view raw(buf_ + start + header, static_cast<std::size_t>(size - header));
    bool latin1 = tag == kAtom || tag == kSmallAtom;
    std::optional<std::size_t> characters = latin1 ? raw.size() : utf8_characters(raw);
    if (!characters || *characters > kMaxAtomCharacters) {
      return fail(DecodeErrc::kMalformed, start);
    }
    bool ascii = std::all_of(raw.begin(), raw.end(), [](char c) { return (c & 0x80) == 0; });
    *out = latin1 && !ascii ? Atom(latin1_to_utf8(raw)) : Atom(raw);
    return true;
  }

  bool atom_term(int* idx, Term* out) {
    Atom value;
    if (!atom(idx, &value)) return false;
    *out = Term::atom(value);
    return true;
  }

  // Checks that a node atom followed by `fixed` bytes lies at start + skip,
  // and returns the node's name and where the fixed bytes begin.
  bool node_and_fixed(int start, int skip, int fixed, Atom* node, int* fixed_at = nullptr) {
    int at = start + skip;
    int size = atom_extent(at);
    if (size == 0 || !need(at, static_cast<std::int64_t>(size) + fixed)) return false;
    if (fixed_at != nullptr) *fixed_at = at + size;
    return atom(&at, node);
  }

  bool pid(int* idx, Term* out) {
    int start = *idx;
    bool is_new = static_cast<unsigned char>(buf_[start]) == kNewPid;
    PidValue value;
    if (!node_and_fixed(start, 1, is_new ? 12 : 9, &value.node)) return false;
    erlang_pid decoded;
    if (!ei_ok(ei_decode_pid(buf_, idx, &decoded), start)) return false;
    value.id = decoded.num;
    value.serial = decoded.serial;
    value.creation = decoded.creation;
    *out = Term::pid(std::move(value));
    return true;
  }

  bool port(int* idx, Term* out) {
    int start = *idx;
    auto tag = static_cast<unsigned char>(buf_[start]);
    int fixed = tag == kV4Port ? 12 : (tag == kNewPort ? 8 : 5);
    PortValue value;
    int fixed_at = 0;
    if (!node_and_fixed(start, 1, fixed, &value.node, &fixed_at)) return false;
    erlang_port decoded;
    if (!ei_ok(ei_decode_port(buf_, idx, &decoded), start)) return false;
    // ei keeps only 28 bits of a NEW_PORT_EXT id: the fields are read here.
    const char* id = buf_ + fixed_at;
    value.id = tag == kV4Port ? (std::uint64_t{read_be(id, 4)} << 32) | read_be(id + 4, 4)
                              : read_be(id, 4);
    const char* creation = buf_ + fixed_at + (tag == kV4Port ? 8 : 4);
    value.creation = read_be(creation, tag == kPort ? 1 : 4);
    *out = Term::port(std::move(value));
    return true;
  }

  bool reference(int* idx, Term* out) {
    int start = *idx;
    auto tag = static_cast<unsigned char>(buf_[start]);
    int words = 1;
    int skip = 1;
    if (tag != kReference) {
      if (!need(start, 3)) return false;
      words = static_cast<int>(read_be(buf_ + start + 1, 2));
      skip = 3;
    }
    // ei copies the words into a fixed array of five.
    if (words < 1 || words > 5) return fail(DecodeErrc::kMalformed, start);
    int creation_bytes = tag == kNewerReference ? 4 : 1;
    RefValue value;
    if (!node_and_fixed(start, skip, creation_bytes + 4 * words, &value.node)) return false;
    erlang_ref decoded;
    if (!ei_ok(ei_decode_ref(buf_, idx, &decoded), start)) return false;
    if (decoded.len != words) return fail(DecodeErrc::kMalformed, start);
    value.creation = decoded.creation;
    value.ids.assign(decoded.n, decoded.n + words);
    *out = Term::reference(std::move(value));
    return true;
  }

  bool tuple(int* idx, int depth, Term* out) {
    int start = *idx;
    int header = static_cast<unsigned char>(buf_[start]) == kSmallTuple ? 2 : 5;
    int arity = 0;
    if (!need(start, header) || !ei_ok(ei_decode_tuple_header(buf_, idx, &arity), start)) {
      return false;
    }
    if (!need(*idx, arity)) return false;  // each element takes a byte at least; arity >= 0
    if (arity > 0 && !deeper(start, depth)) return false;
    std::array<Term, kGatheredOnStack> small;
    std::vector<Term> large;
    std::span<Term> elements = room(static_cast<std::size_t>(arity), &small, &large);
    for (Term& element : elements) {
      if (!term(idx, depth + 1, &element)) return false;
    }
    *out = Term::tuple(elements);
    return true;
  }

  bool list(int* idx, int depth, Term* out) {
    int start = *idx;
    bool is_nil = static_cast<unsigned char>(buf_[start]) == kNil;
    int count = 0;
    if (!need(start, is_nil ? 1 : 5) || !ei_ok(ei_decode_list_header(buf_, idx, &count), start)) {
      return false;
    }
    if (is_nil) {
      *out = Term();
      return true;
    }
    // ei reports counts beyond INT_MAX as negative.
    if (count < 0 || !need(*idx, static_cast<std::int64_t>(count) + 1)) {
      return fail(DecodeErrc::kTruncated, start);
    }
    if (!deeper(start, depth)) return false;
    std::vector<Term> elements(static_cast<std::size_t>(count));
    for (Term& element : elements) {
      if (!term(idx, depth + 1, &element)) return false;
    }
    Term tail;
    if (!term(idx, depth + 1, &tail)) return false;
    *out = Term::list(std::move(elements), std::move(tail));
    return true;
  }

  bool string(int* idx, Term* out) {
    int start = *idx;
    if (!need(start, 3)) return false;
    std::uint32_t length = read_be(buf_ + start + 1, 2);
    if (!need(start, 3 + static_cast<std::int64_t>(length))) return false;
    if (!ei_ok(ei_skip_term(buf_, idx), start)) return false;
    *out = Term::string(std::string_view(buf_ + start + 3, length));
    return true;
  }

  bool map(int* idx, int depth, Term* out) {
    int start = *idx;
    int arity = 0;
    if (!need(start, 5) || !ei_ok(ei_decode_map_header(buf_, idx, &arity), start)) return false;
    if (!need(*idx, 2 * static_cast<std::int64_t>(arity))) return false;
    if (arity > 0 && !deeper(start, depth)) return false;
    std::array<std::pair<Term, Term>, kGatheredOnStack> small;
    std::vector<std::pair<Term, Term>> large;
    std::span<std::pair<Term, Term>> entries =
        room(static_cast<std::size_t>(arity), &small, &large);
    for (auto& [key, value] : entries) {
      if (!term(idx, depth + 1, &key) || !term(idx, depth + 1, &value)) return false;
    }
    Term result = Term::map(entries);
    // The BEAM refuses a map that names a key twice.
    if (result.map_entries().size() != static_cast<std::size_t>(arity)) {
      return fail(DecodeErrc::kMalformed, start);
    }
    *out = std::move(result);
    return true;
  }

  bool binary(int* idx, Term* out) {
    int start = *idx;
    if (!need(start, 5)) return false;
    std::uint32_t length = read_be(buf_ + start + 1, 4);
    if (!need(start, 5 + static_cast<std::int64_t>(length))) return false;
    if (!ei_ok(ei_skip_term(buf_, idx), start)) return false;
    *out = Term::binary(std::string_view(buf_ + start + 5, length));
    return true;
  }

  bool bitstring(int* idx, Term* out) {
    int start = *idx;
    if (!need(start, 6)) return false;
    std::uint32_t length = read_be(buf_ + start + 1, 4);
    auto bits = static_cast<unsigned char>(buf_[start + 5]);
    if (!need(start, 6 + static_cast<std::int64_t>(length))) return false;
    bool valid = length == 0 ? bits <= 8 : (bits >= 1 && bits <= 8);
    if (!valid) return fail(DecodeErrc::kMalformed, start);
    const char* data = nullptr;
    unsigned int bit_offset = 0;
    std::size_t bit_count = 0;
    int rc = ei_decode_bitstring(buf_, idx, &data, &bit_offset, &bit_count);
    if (!ei_ok(rc, start)) return false;
    std::string_view bytes(buf_ + start + 6, length);
    *out = length == 0 ? Term::binary({}) : Term::bitstring(bytes, bits);
    return true;
  }

  // A fun is kept as its bytes. Its parts are decoded (and dropped) within
  // its own extent first, so that ei_skip_term then walks only checked bytes.
  bool fun(int* idx, int depth, Term* out) {
    int start = *idx;
    if (!deeper(start, depth)) return false;
    int saved_end = end_;
    int checked_end = 0;
    bool ok = static_cast<unsigned char>(buf_[start]) == kNewFun
                  ? check_closure(start, depth, &checked_end)
                  : check_export(start, depth, &checked_end);
    end_ = saved_end;
    if (!ok) return false;
    int fun_end = *idx;
    if (ei_skip_term(buf_, &fun_end) < 0 || fun_end != checked_end) {
      return fail(DecodeErrc::kMalformed, start);
    }
    *out = Term::fun(std::string_view(buf_ + start, static_cast<std::size_t>(fun_end - start)));
    *idx = fun_end;
    return true;
  }

  // NEW_FUN_EXT: size, arity, uniq, index, free count, module, old index,
  // old uniq, pid, free variables; size covers everything after the tag.
  bool check_closure(int start, int depth, int* checked_end) {
    constexpr int kFixed = 1 + 4 + 1 + 16 + 4 + 4;
    if (!need(start, kFixed)) return false;
    std::uint32_t size = read_be(buf_ + start + 1, 4);
    if (size < kFixed - 1 || !need(start, 1 + static_cast<std::int64_t>(size))) return false;
    end_ = start + 1 + static_cast<int>(size);
    std::uint32_t free_count = read_be(buf_ + start + kFixed - 4, 4);
    if (!need(start + kFixed, static_cast<std::int64_t>(free_count) + 4)) return false;
    int at = start + kFixed;
    Atom module;
    Term part;
    if (!atom(&at, &module)) return false;
    for (int i = 0; i < 3; ++i) {  // old index, old uniq, pid
      if (!term(&at, depth + 1, &part)) return false;
    }
    for (std::uint32_t i = 0; i < free_count; ++i) {
      if (!term(&at, depth + 1, &part)) return false;
    }
    if (at != end_) return fail(DecodeErrc::kMalformed, start);
    *checked_end = at;
    return true;
  }

  // EXPORT_EXT: module, function, arity.
  bool check_export(int start, int depth, int* checked_end) {
    int at = start + 1;
    Atom name;
    Term arity;
    if (!atom(&at, &name) || !atom(&at, &name) || !term(&at, depth + 1, &arity)) return false;
    if (!arity.is_integer()) return fail(DecodeErrc::kMalformed, start);
    *checked_end = at;
    return true;
  }

  const char* buf_;
  int end_;
  DecodeError error_{DecodeErrc::kMalformed, 0};
};

// ---------------------------------------------------------------------------
// Encoding: written by hand, byte for byte what term_to_binary/1 of OTP 25
// produces.

void put_be(std::string* out, std::uint64_t value, int bytes) {
  char buf[8];
  for (int i = 0; i < bytes; ++i) buf[i] = static_cast<char>(value >> (8 * (bytes - 1 - i)));
  out->append(buf, static_cast<std::size_t>(bytes));
}

void put_tag(std::string* out, Tag tag) {
  out->push_back(static_cast<char>(tag));
}

// The Latin-1 form of text if every character of it is below 256.
bool utf8_to_latin1(std::string_view utf8, std::string* latin1) {
  latin1->clear();
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      latin1->push_back(static_cast<char>(c));
      continue;
    }
    if ((c != 0xC2 && c != 0xC3) || i + 1 == utf8.size()) return false;
    auto next = static_cast<unsigned char>(utf8[i + 1]);
    if ((next & 0xC0) != 0x80) return false;
    latin1->push_back(static_cast<char>(((c & 0x03) << 6) | (next & 0x3F)));
    ++i;
  }
  return true;
}

// OTP 25 writes ATOM_EXT for atoms that Latin-1 can spell and the UTF-8
// tags otherwise.
void put_atom(std::string* out, Atom atom) {
  std::string_view text = atom.text();
  bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; });
  if (ascii) {  // the common case, already in its Latin-1 form
    put_tag(out, kAtom);
    put_be(out, text.size(), 2);
    out->append(text);
    return;
  }
  std::string latin1;
  if (utf8_to_latin1(text, &latin1)) {
    put_tag(out, kAtom);
    put_be(out, latin1.size(), 2);
    out->append(latin1);
  } else if (text.size() < 256) {
    put_tag(out, kSmallAtomUtf8);
    put_be(out, text.size(), 1);
    out->append(text);
  } else {
    put_tag(out, kAtomUtf8);
    put_be(out, text.size(), 2);
    out->append(text);
  }
}

void put_big(std::string* out, bool negative, const std::vector<std::uint8_t>& magnitude) {
  if (magnitude.size() < 256) {
    put_tag(out, kSmallBig);
    put_be(out, magnitude.size(), 1);
  } else {
    put_tag(out, kLargeBig);
    put_be(out, magnitude.size(), 4);
  }
  out->push_back(negative ? 1 : 0);
  out->append(magnitude.begin(), magnitude.end());
}

void put_integer(std::string* out, std::int64_t value) {
  if (value >= 0 && value <= 255) {
    put_tag(out, kSmallInteger);
    out->push_back(static_cast<char>(value));
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    put_tag(out, kInteger);
    put_be(out, static_cast<std::uint32_t>(value), 4);
  } else {
    std::uint64_t magnitude =
        value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    std::vector<std::uint8_t> bytes;
    for (; magnitude != 0; magnitude >>= 8) bytes.push_back(static_cast<std::uint8_t>(magnitude));
    put_big(out, value < 0, bytes);
  }
}

void put_float(std::string* out, double value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_tag(out, kNewFloat);
  put_be(out, bits, 8);
}

void put_term(std::string* out, const Term& term);

// term_to_binary writes STRING_EXT for proper lists of at most 65535 bytes.
bool put_string_if_bytes(std::string* out, const Term& list) {
  auto elements = list.elements();
  if (elements.size() > 0xFFFF || !list.tail().is_nil()) return false;
  for (const Term& e : elements) {
    if (!e.is_integer() || e.as_integer() < 0 || e.as_integer() > 255) return false;
  }
  put_tag(out, kString);
  put_be(out, elements.size(), 2);
  for (const Term& e : elements) out->push_back(static_cast<char>(e.as_integer()));
  return true;
}

void put_list(std::string* out, const Term& list) {
  if (list.is_nil()) {
    put_tag(out, kNil);
    return;
  }
  if (put_string_if_bytes(out, list)) return;
  put_tag(out, kList);
  put_be(out, list.size(), 4);
  for (const Term& e : list.elements()) put_term(out, e);
  put_term(out, list.tail());
}

void put_tuple(std::string* out, const Term& tuple) {
  if (tuple.size() < 256) {
    put_tag(out, kSmallTuple);
    put_be(out, tuple.size(), 1);
  } else {
    put_tag(out, kLargeTuple);
    put_be(out, tuple.size(), 4);
  }
  for (const Term& e : tuple.elements()) put_term(out, e);
}

void put_map(std::string* out, const Term& map) {
  auto entries = map.map_entries();
  put_tag(out, kMap);
  put_be(out, entries.size(), 4);
  for (const auto& [key, value] : entries) {
    put_term(out, key);
    put_term(out, value);
  }
}

void put_pid(std::string* out, const PidValue& pid) {
  put_tag(out, kNewPid);
  put_atom(out, pid.node);
  put_be(out, pid.id, 4);
  put_be(out, pid.serial, 4);
  put_be(out, pid.creation, 4);
}

void put_port(std::string* out, const PortValue& port) {
  // The BEAM keeps NEW_PORT_EXT for the 28-bit port numbers of old.
  bool wide = port.id > 0x0FFFFFFFu;
  put_tag(out, wide ? kV4Port : kNewPort);
  put_atom(out, port.node);
  put_be(out, port.id, wide ? 8 : 4);
  put_be(out, port.creation, 4);
}

void put_reference(std::string* out, const RefValue& ref) {
  put_tag(out, kNewerReference);
  put_be(out, ref.ids.size(), 2);
  put_atom(out, ref.node);
  put_be(out, ref.creation, 4);
  for (std::uint32_t id : ref.ids) put_be(out, id, 4);
}

void put_bits(std::string* out, const Term& term) {
  std::string_view bytes = term.as_binary();
  if (term.type() == TermType::kBitString) {
    put_tag(out, kBitBinary);
    put_be(out, bytes.size(), 4);
    out->push_back(static_cast<char>(term.bits_in_last_byte()));
  } else {
    put_tag(out, kBinary);
    put_be(out, bytes.size(), 4);
  }
  out->append(bytes);
}

void put_term(std::string* out, const Term& term) {
  switch (term.type()) {
    case TermType::kInteger:
      put_integer(out, term.as_integer());
      return;
    case TermType::kBigInteger: {
      const auto& big = term.as_big_integer();
      put_big(out, big.negative, big.magnitude);
      return;
    }
    case TermType::kFloat:
      put_float(out, term.as_float());
      return;
    case TermType::kAtom:
      put_atom(out, term.as_atom());
      return;
    case TermType::kReference:
      put_reference(out, term.as_reference());
      return;
    case TermType::kFun:
      out->append(term.fun_encoding());
      return;
    case TermType::kPort:
      put_port(out, term.as_port());
      return;
    case TermType::kPid:
      put_pid(out, term.as_pid());
      return;
    case TermType::kTuple:
      put_tuple(out, term);
      return;
    case TermType::kMap:
      put_map(out, term);
      return;
    case TermType::kList:
      put_list(out, term);
      return;
    case TermType::kBinary:
    case TermType::kBitString:
      put_bits(out, term);
      return;
  }
}

}  // namespace

DecodeResult decode(std::string_view bytes, std::size_t* offset) {
  std::size_t start = *offset;
  // ei counts bytes in an int.
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return DecodeError{DecodeErrc::kMalformed, start};
  }
  if (start >= bytes.size()) return DecodeError{DecodeErrc::kTruncated, start};
  int idx = static_cast<int>(start);
  int version = 0;
  if (ei_decode_version(bytes.data(), &idx, &version) < 0 || version != kVersion) {
    return DecodeError{DecodeErrc::kBadVersion, start};
  }
  Decoder decoder(bytes.data(), static_cast<int>(bytes.size()));
  Term term;
  if (!decoder.term(&idx, 0, &term)) return decoder.error();
  *offset = static_cast<std::size_t>(idx);
  return term;
}

DecodeResult decode_whole(std::string_view bytes) {
  std::size_t offset = 0;
  DecodeResult result = decode(bytes, &offset);
  if (result.ok() && offset != bytes.size()) {
    return DecodeError{DecodeErrc::kTrailingBytes, offset};
  }
  return result;
}

void encode(const Term& term, std::string* out) {
  out->push_back(static_cast<char>(kVersion));
  put_term(out, term);
}

std::string encode(const Term& term) {
  std::string out;
  encode(term, &out);
  return out;
}

}  // namespace presence
