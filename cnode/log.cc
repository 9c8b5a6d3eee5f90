#include "cnode/log.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace presence {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return std::nullopt;
}

LogLevel log_level_from_env() {
  const char* text = std::getenv("PRESENCE_LOG_LEVEL");
  if (text == nullptr) return LogLevel::kInfo;
  return parse_log_level(text).value_or(LogLevel::kInfo);
}

LogSink make_stderr_log_sink(std::string node_name, LogLevel min_level) {
  return [node_name = std::move(node_name), min_level](LogLevel level, const std::string& message) {
    if (level < min_level) return;
    // One write per line, so lines from several threads do not interleave.
    std::string line = std::string(to_string(level)) + " " + node_name + ": " + message + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

}  // namespace presence
