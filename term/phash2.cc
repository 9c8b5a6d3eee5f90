#include "term/phash2.h"

#include <bit>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "term/codec.h"

namespace presence {
namespace {

// The emulator seeds every step with a multiple of the golden ratio; the
// kind of value being hashed decides which multiple (mod 2^32).
constexpr std::uint32_t kGolden = 0x9e3779b9;
constexpr std::uint32_t golden(std::uint32_t n) {
  return kGolden * n;
}

constexpr std::uint32_t kSeedInteger = kGolden;
constexpr std::uint32_t kSeedNil = golden(2);
constexpr std::uint32_t kSeedAtom = golden(3);
constexpr std::uint32_t kSeedBytesInList = golden(4);
constexpr std::uint32_t kSeedPid = golden(5);
constexpr std::uint32_t kSeedPort = golden(6);
constexpr std::uint32_t kSeedReference = golden(7);
constexpr std::uint32_t kSeedTupleArity = golden(9);
constexpr std::uint32_t kSeedNegativeBig = golden(10);
constexpr std::uint32_t kSeedPositiveBig = golden(11);
constexpr std::uint32_t kSeedFloat = golden(12);
constexpr std::uint32_t kSeedBinary = golden(13);
constexpr std::uint32_t kSeedExportFunction = golden(14);
constexpr std::uint32_t kSeedBinaryTail = golden(15);
constexpr std::uint32_t kSeedMapSize = golden(16);
constexpr std::uint32_t kSeedMapPairs = golden(19);

// The value the emulator gives [] when nothing was hashed before it.
constexpr std::uint32_t kLoneNilHash = 3468870702u;
// The emulator's internal tag number of [] (NIL_DEF), mixed in for a nested [].
constexpr std::uint32_t kNilTag = 2;

// Integers in [-2^27, 2^27) are hashed as 32-bit values, all others by the
// 64-bit digits of their magnitude.
constexpr std::int64_t kSmall28Limit = std::int64_t{1} << 27;

constexpr std::uint8_t kNewFunTag = 112;
constexpr std::uint8_t kExportTag = 113;

// Bob Jenkins' 96-bit mix (lookup2), the core of every step.
// clang-format off
void jenkins_mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= b; a -= c; a ^= c >> 13;
  b -= c; b -= a; b ^= a << 8;
  c -= a; c -= b; c ^= b >> 13;
  a -= b; a -= c; a ^= c >> 12;
  b -= c; b -= a; b ^= a << 16;
  c -= a; c -= b; c ^= b >> 5;
  a -= b; a -= c; a ^= c >> 3;
  b -= c; b -= a; b ^= a << 10;
  c -= a; c -= b; c ^= b >> 15;
}
// clang-format on

std::uint32_t little_endian_word(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

// Jenkins' lookup2 over a byte block, chained from initval.
std::uint32_t block_hash(std::string_view block, std::uint32_t initval) {
  const auto* k = reinterpret_cast<const unsigned char*>(block.data());
  std::size_t left = block.size();
  std::uint32_t a = kGolden;
  std::uint32_t b = kGolden;
  std::uint32_t c = initval;
  for (; left >= 12; k += 12, left -= 12) {
    a += little_endian_word(k);
    b += little_endian_word(k + 4);
    c += little_endian_word(k + 8);
    jenkins_mix(a, b, c);
  }

  // The last 0..11 bytes; the lowest byte of c carries the length instead.
  unsigned char rest[12] = {};
  for (std::size_t i = 0; i < left; ++i) rest[i] = k[i];
  a += little_endian_word(rest);
  b += little_endian_word(rest + 4);
  c += static_cast<std::uint32_t>(block.size()) + (little_endian_word(rest + 8) << 8);
  jenkins_mix(a, b, c);
  return c;
}

// The atom table's hash of an atom's text (hashpjw). A two-byte UTF-8
// sequence for a Latin-1 character counts as that one character, so atoms
// made before UTF-8 atoms existed keep their hash.
std::uint32_t atom_text_hash(std::string_view text) {
  std::uint32_t h = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto v = static_cast<unsigned char>(text[i]);
    if (i + 1 < text.size() && (v & 0xFE) == 0xC2 &&
        (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      v = static_cast<unsigned char>((v << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F));
      ++i;
    }
    h = (h << 4) + v;
    if (std::uint32_t g = h & 0xF0000000u; g != 0) {
      h ^= g >> 24;
      h ^= g;
    }
  }
  return h;
}

bool is_byte(const Term& term) {
  return term.is_integer() && term.as_integer() >= 0 && term.as_integer() <= 255;
}

// Reads the fields of a fun's external encoding that take part in the hash.
// Embedded terms are decoded by the codec: each is preceded by a field that
// has already been read, whose last byte is overwritten with the version
// byte so that the codec accepts the term where it starts.
class FunReader {
 public:
  explicit FunReader(std::string_view encoding) : bytes_(encoding) {}

  std::optional<std::uint8_t> byte() {
    if (position_ + 1 > bytes_.size()) return std::nullopt;
    return static_cast<std::uint8_t>(bytes_[position_++]);
  }
  std::optional<std::uint32_t> word() {
    if (position_ + 4 > bytes_.size()) return std::nullopt;
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value = value << 8 | static_cast<std::uint8_t>(bytes_[position_++]);
    return value;
  }
  bool skip(std::size_t count) {
    if (position_ + count > bytes_.size()) return false;
    position_ += count;
    return true;
  }
  std::optional<Term> term() {
    if (position_ == 0) return std::nullopt;
    std::size_t offset = position_ - 1;
    bytes_[offset] = static_cast<char>(131);
    DecodeResult result = decode(bytes_, &offset);
    if (!result.ok()) return std::nullopt;
    position_ = offset;
    return std::move(result).term();
  }
  bool at_end() const { return position_ == bytes_.size(); }

 private:
  std::string bytes_;
  std::size_t position_ = 0;
};

class Hasher {
 public:
  std::uint32_t value() const { return hash_; }

  void term(const Term& term);

 private:
  // One step: mixes two 32-bit values, each offset by seed, into the hash.
  void mix(std::uint32_t x, std::uint32_t y, std::uint32_t seed) {
    std::uint32_t a = seed + x;
    std::uint32_t b = seed + y;
    jenkins_mix(a, b, hash_);
  }
  void mix(std::uint32_t x, std::uint32_t seed) { mix(x, 0, seed); }

  void integer(std::int64_t value);
  void big_magnitude(std::span<const std::uint8_t> magnitude, bool negative);
  void floating(double value);
  void atom(Atom atom);
  void nil();
  void bits(std::string_view bytes, unsigned bits_in_last_byte);
  void list(const Term& list);
  void tuple(const Term& tuple);
  void map(const Term& map);
  void fun(std::string_view encoding);
  bool local_fun(FunReader& reader);
  bool export_fun(FunReader& reader);

  std::uint32_t hash_ = 0;
};

void Hasher::term(const Term& term) {
  switch (term.type()) {
    case TermType::kInteger:
      return integer(term.as_integer());
    case TermType::kBigInteger: {
      const BigIntValue& big = term.as_big_integer();
      return big_magnitude(big.magnitude, big.negative);
    }
    case TermType::kFloat:
      return floating(term.as_float());
    case TermType::kAtom:
      return atom(term.as_atom());
    case TermType::kReference: {
      const RefValue& ref = term.as_reference();
      return mix(ref.ids.empty() ? 0 : ref.ids.front(), kSeedReference);
    }
    case TermType::kFun:
      return fun(term.fun_encoding());
    case TermType::kPort: {
      std::uint64_t id = term.as_port().id;
      return mix(static_cast<std::uint32_t>(id), static_cast<std::uint32_t>(id >> 32), kSeedPort);
    }
    case TermType::kPid:
      return mix(term.as_pid().id, kSeedPid);
    case TermType::kTuple:
      return tuple(term);
    case TermType::kMap:
      return map(term);
    case TermType::kList:
      return term.is_nil() ? nil() : list(term);
    case TermType::kBinary:
      return bits(term.as_binary(), 8);
    case TermType::kBitString:
      return bits(term.as_binary(), term.bits_in_last_byte());
  }
}

void Hasher::integer(std::int64_t value) {
  if (value >= -kSmall28Limit && value < kSmall28Limit) {
    auto small = static_cast<std::int32_t>(value);
    // The emulator mixes a negative value twice: its magnitude, then itself.
    if (small < 0) mix(static_cast<std::uint32_t>(-small), kSeedInteger);
    mix(static_cast<std::uint32_t>(small), kSeedInteger);
    return;
  }
  std::uint64_t magnitude =
      value < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(value) : std::uint64_t(value);
  mix(static_cast<std::uint32_t>(magnitude), static_cast<std::uint32_t>(magnitude >> 32),
      value < 0 ? kSeedNegativeBig : kSeedPositiveBig);
}

// A magnitude of any size, least significant byte first, as the emulator's
// 64-bit bignum digits: each digit is mixed as its low and high halves.
void Hasher::big_magnitude(std::span<const std::uint8_t> magnitude, bool negative) {
  std::size_t size = magnitude.size();
  while (size > 0 && magnitude[size - 1] == 0) --size;
  if (size <= 8) {
    std::uint64_t small = 0;
    for (std::size_t i = size; i-- > 0;) small = small << 8 | magnitude[i];
    if (small < static_cast<std::uint64_t>(kSmall28Limit) + (negative ? 1 : 0)) {
      auto value = static_cast<std::int64_t>(small);
      return integer(negative ? -value : value);
    }
  }
  std::uint32_t seed = negative ? kSeedNegativeBig : kSeedPositiveBig;
  for (std::size_t digit = 0; digit < size; digit += 8) {
    std::uint32_t halves[2] = {0, 0};
    for (std::size_t i = digit; i < size && i < digit + 8; ++i) {
      halves[(i - digit) / 4] |= std::uint32_t{magnitude[i]} << 8 * ((i - digit) % 4);
    }
    mix(halves[0], halves[1], seed);
  }
}

void Hasher::floating(double value) {
  if (value == 0.0) value = 0.0;  // -0.0 hashes as 0.0
  auto bits = std::bit_cast<std::uint64_t>(value);
  mix(static_cast<std::uint32_t>(bits >> 32), static_cast<std::uint32_t>(bits), kSeedFloat);
}

// An atom, like [], is taken as is when nothing was hashed before it (the
// running hash is 0): the emulator's shortcut, kept for identical results.
void Hasher::atom(Atom atom) {
  std::uint32_t text_hash = atom_text_hash(atom.text());
  if (hash_ == 0) {
    hash_ = text_hash;
  } else {
    mix(text_hash, kSeedAtom);
  }
}

void Hasher::nil() {
  if (hash_ == 0) {
    hash_ = kLoneNilHash;
  } else {
    mix(kNilTag, kSeedNil);
  }
}

// A binary (bits_in_last_byte 8) or a bitstring whose last byte holds
// bits_in_last_byte bits in its most significant end.
void Hasher::bits(std::string_view bytes, unsigned bits_in_last_byte) {
  unsigned tail_bits = bits_in_last_byte % 8;
  std::string_view whole =
      tail_bits == 0 || bytes.empty() ? bytes : bytes.substr(0, bytes.size() - 1);
  std::uint32_t seed = kSeedBinary + hash_;
  if (whole.empty() && tail_bits == 0) {
    hash_ = seed;
    return;
  }
  hash_ = block_hash(whole, seed);
  if (tail_bits != 0 && !bytes.empty()) {
    auto last = static_cast<std::uint8_t>(bytes.back());
    mix(tail_bits, last >> (8 - tail_bits), kSeedBinaryTail);
  }
}

// Runs of small integers 0..255 (strings) are packed four to a step. A run
// ends at any other element, which is hashed on its own, and at the tail.
void Hasher::list(const Term& list) {
  std::uint32_t packed = 0;
  int packed_count = 0;
  auto flush = [&] {
    if (packed_count > 0) mix(packed, kSeedBytesInList);
    packed = 0;
    packed_count = 0;
  };

  const Term* segment = &list;
  std::size_t index = 0;
  for (;;) {
    std::span<const Term> elements = segment->elements();
    if (index == elements.size()) {
      const Term& tail = segment->tail();
      if (tail.is_list() && !tail.is_nil()) {
        segment = &tail;  // a tail that is itself a list continues the list
        index = 0;
        continue;
      }
      flush();
      return term(tail);
    }
    const Term& element = elements[index++];
    if (!is_byte(element)) {
      flush();
      term(element);
      continue;
    }
    packed = (packed << 8) + static_cast<std::uint32_t>(element.as_integer());
    if (++packed_count == 4) {
      mix(packed, kSeedBytesInList);
      packed = 0;
      packed_count = 0;
    }
  }
}

void Hasher::tuple(const Term& tuple) {
  mix(static_cast<std::uint32_t>(tuple.size()), kSeedTupleArity);
  for (const Term& element : tuple.elements()) term(element);
}

// Each key-value pair is hashed on its own from 0 and the pair hashes are
// combined with xor, so the result does not depend on the order of entries.
void Hasher::map(const Term& map) {
  const MapEntries entries = map.map_entries();
  mix(static_cast<std::uint32_t>(entries.size()), kSeedMapSize);
  if (entries.empty()) return;

  std::uint32_t outer = hash_;
  std::uint32_t pairs = 0;
  for (const auto& [key, value] : entries) {
    hash_ = 0;
    term(key);
    term(value);
    pairs ^= hash_;
  }
  hash_ = outer;
  mix(pairs, kSeedMapPairs);
}

void Hasher::fun(std::string_view encoding) {
  std::uint32_t before = hash_;
  FunReader reader(encoding);
  std::optional<std::uint8_t> tag = reader.byte();
  bool hashed = tag == kNewFunTag ? local_fun(reader) : tag == kExportTag && export_fun(reader);
  if (hashed) return;
  hash_ = before;
  bits(encoding, 8);
}

// NEW_FUN_EXT: Size, Arity, Uniq[16], Index, NumFree, Module, OldIndex,
// OldUniq, Pid, then NumFree captured values. The emulator hashes the
// number of captured values, the module, Index and OldUniq, then the
// captured values in order.
bool Hasher::local_fun(FunReader& reader) {
  if (!reader.skip(4 + 1 + 16)) return false;
  std::optional<std::uint32_t> index = reader.word();
  std::optional<std::uint32_t> free_count = reader.word();
  if (!index || !free_count) return false;
  std::optional<Term> module = reader.term();
  std::optional<Term> old_index = reader.term();
  std::optional<Term> old_uniq = reader.term();
  std::optional<Term> creator = reader.term();
  if (!module || !module->is_atom() || !old_index || !old_uniq || !old_uniq->is_integer() ||
      !creator) {
    return false;
  }

  mix(*free_count, atom_text_hash(module->as_atom().text()), kGolden);
  mix(*index, static_cast<std::uint32_t>(old_uniq->as_integer()), kGolden);
  for (std::uint32_t i = 0; i < *free_count; ++i) {
    std::optional<Term> captured = reader.term();
    if (!captured) return false;
    term(*captured);
  }
  return reader.at_end();
}

// EXPORT_EXT (fun M:F/A): Module, Function, Arity.
bool Hasher::export_fun(FunReader& reader) {
  std::optional<Term> module = reader.term();
  std::optional<Term> function = reader.term();
  std::optional<Term> arity = reader.term();
  if (!module || !module->is_atom() || !function || !function->is_atom() || !arity ||
      !arity->is_integer() || !reader.at_end()) {
    return false;
  }
  mix(static_cast<std::uint32_t>(arity->as_integer()), atom_text_hash(module->as_atom().text()),
      kGolden);
  mix(atom_text_hash(function->as_atom().text()), kSeedExportFunction);
  return true;
}

std::uint32_t full_hash(const Term& term) {
  Hasher hasher;
  hasher.term(term);
  return hasher.value();
}

}  // namespace

std::uint32_t phash2(const Term& term) {
  constexpr std::uint32_t kMask27 = (std::uint32_t{1} << 27) - 1;
  return full_hash(term) & kMask27;
}

std::uint32_t phash2(const Term& term, std::uint32_t range) {
  std::uint32_t hash = full_hash(term);
  return range == 0 ? hash : hash % range;
}

}  // namespace presence
