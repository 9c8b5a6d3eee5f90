// Big-endian integers as the distribution protocol and EPMD put them on the
// wire. Readers take a pointer the caller has already checked is long enough.
#pragma once

#include <cstdint>
#include <string>

namespace presence::dist {

inline void put_u8(std::string* out, std::uint8_t value) {
  out->push_back(static_cast<char>(value));
}

inline void put_u16(std::string* out, std::uint16_t value) {
  put_u8(out, static_cast<std::uint8_t>(value >> 8));
  put_u8(out, static_cast<std::uint8_t>(value));
}

inline void put_u32(std::string* out, std::uint32_t value) {
  put_u16(out, static_cast<std::uint16_t>(value >> 16));
  put_u16(out, static_cast<std::uint16_t>(value));
}

inline void put_u64(std::string* out, std::uint64_t value) {
  put_u32(out, static_cast<std::uint32_t>(value >> 32));
  put_u32(out, static_cast<std::uint32_t>(value));
}

inline std::uint8_t get_u8(const char* in) {
  return static_cast<std::uint8_t>(in[0]);
}

inline std::uint16_t get_u16(const char* in) {
  return static_cast<std::uint16_t>((get_u8(in) << 8) | get_u8(in + 1));
}

inline std::uint32_t get_u32(const char* in) {
  return (static_cast<std::uint32_t>(get_u16(in)) << 16) | get_u16(in + 2);
}

inline std::uint64_t get_u64(const char* in) {
  return (static_cast<std::uint64_t>(get_u32(in)) << 32) | get_u32(in + 4);
}

}  // namespace presence::dist
