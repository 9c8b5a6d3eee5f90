// The external term format, through erl_interface's ei.
//
// This is the only place that calls ei's encode and decode functions; every
// failure they report becomes a DecodeError here. Decoding never throws and
// never aborts on bad input: a peer's malformed bytes come back as an error
// with the offset at which they went wrong.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "term/term.h"

namespace presence {

enum class DecodeErrc {
  kTruncated,         // the buffer ends inside a term
  kBadVersion,        // a term does not start with the version byte 131
  kUnsupportedTag,    // a tag ei does not know, or a compressed term
  kMalformed,         // ei refused the bytes (bad length, bad UTF-8 atom, ...)
  kTooDeep,           // nesting beyond kMaxDecodeDepth
  kTrailingBytes,     // decode_whole: bytes left after the term
};

const char* to_string(DecodeErrc code);

struct DecodeError {
  DecodeErrc code;
  std::size_t offset;  // where in the buffer the bad term starts
  std::string message() const;  // e.g. "malformed term at byte 17"
};

// Nested tuples, lists and maps deeper than this are refused, so that a
// hostile peer cannot exhaust the stack.
inline constexpr int kMaxDecodeDepth = 1000;

// Either a term or the reason there is none.
class DecodeResult {
 public:
  DecodeResult(Term term) : term_(std::move(term)) {}
  DecodeResult(DecodeError error) : error_(error) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Term& term() const& { return term_; }
  Term&& term() && { return std::move(term_); }
  const DecodeError& error() const { return *error_; }

 private:
  Term term_;
  std::optional<DecodeError> error_;
};

// Decodes one versioned term (131 followed by the term) starting at *offset
// and advances *offset past it. On error *offset is left unchanged.
DecodeResult decode(std::string_view bytes, std::size_t* offset);

// Decodes a buffer that holds exactly one versioned term, as produced by
// term_to_binary/1.
DecodeResult decode_whole(std::string_view bytes);

// Appends the versioned encoding of term (what term_to_binary/1 gives for
// the same value, minus compression) to *out.
void encode(const Term& term, std::string* out);
std::string encode(const Term& term);

}  // namespace presence
