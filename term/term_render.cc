// Erlang-like rendering of terms for logs (Term::to_string).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "term/term.h"

namespace presence {

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
