// The node's default operator log: one line per event on stderr.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cnode/node.h"

namespace presence {

const char* to_string(LogLevel level);

// "debug", "info", "warning" (or "warn") and "error", any case.
std::optional<LogLevel> parse_log_level(std::string_view text);

// PRESENCE_LOG_LEVEL when it names a level, else info.
LogLevel log_level_from_env();

// A sink writing "<level> <node>: <message>" lines to stderr for every
// event at min_level or above. Safe to call from any thread.
LogSink make_stderr_log_sink(std::string node_name, LogLevel min_level);

}  // namespace presence
