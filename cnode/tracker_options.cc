#include "cnode/tracker_options.h"

#include <charconv>
#include <functional>
#include <limits>
#include <map>
#include <type_traits>

#include "cnode/pubsub.h"

namespace presence {
namespace {

using Setter = std::function<std::optional<std::string>(TrackerOptions&, std::string_view)>;

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string bad_value(std::string_view option, std::string_view value, const char* expected) {
  return std::string(option) + ": '" + std::string(value) + "' is not " + expected;
}

// A setter for an integer option that must be at least `minimum`.
template <typename Field>
Setter int_setter(const char* option, Field TrackerOptions::*field, std::int64_t minimum) {
  return [=](TrackerOptions& options, std::string_view value) -> std::optional<std::string> {
    auto number = parse_int(value);
    if (!number || *number < minimum) {
      return bad_value(option, value, minimum > 0 ? "a positive integer" : "an integer >= 0");
    }
    if constexpr (std::is_same_v<Field, std::chrono::milliseconds>) {
      options.*field = std::chrono::milliseconds(*number);
    } else if constexpr (std::is_same_v<Field, std::optional<std::chrono::milliseconds>>) {
      options.*field = std::chrono::milliseconds(*number);
    } else {
      if (*number > std::numeric_limits<Field>::max()) return bad_value(option, value, "in range");
      options.*field = static_cast<Field>(*number);
    }
    return std::nullopt;
  };
}

std::optional<std::string> set_delta_sizes(TrackerOptions& options, std::string_view value) {
  std::vector<std::size_t> sizes;
  while (true) {
    auto colon = value.find(':');
    auto size = parse_int(value.substr(0, colon));
    if (!size || *size < 1) {
      return bad_value("max_delta_sizes", value, "a ':'-separated list of positive integers");
    }
    sizes.push_back(static_cast<std::size_t>(*size));
    if (colon == std::string_view::npos) break;
    value.remove_prefix(colon + 1);
  }
  options.max_delta_sizes = std::move(sizes);
  return std::nullopt;
}

std::optional<std::string> set_log_level(TrackerOptions& options, std::string_view value) {
  static const std::map<std::string_view, std::optional<LogLevel>> kLevels{
      {"false", std::nullopt},
      {"debug", LogLevel::kDebug},
      {"info", LogLevel::kInfo},
      {"warning", LogLevel::kWarning},
      {"error", LogLevel::kError}};
  auto it = kLevels.find(value);
  if (it == kLevels.end()) {
    return bad_value("log_level", value, "one of false, debug, info, warning, error");
  }
  options.log_level = it->second;
  return std::nullopt;
}

std::optional<std::string> set_permdown_on_shutdown(TrackerOptions& options,
                                                    std::string_view value) {
  if (value != "true" && value != "false") {
    return bad_value("permdown_on_shutdown", value, "true or false");
  }
  options.permdown_on_shutdown = value == "true";
  return std::nullopt;
}

std::optional<std::string> set_pubsub_server(TrackerOptions& options, std::string_view value) {
  if (value.empty()) return std::string("pubsub_server: empty name");
  options.pubsub_server = module_atom(value);
  return std::nullopt;
}

const std::map<std::string_view, Setter>& setters() {
  static const std::map<std::string_view, Setter> kSetters{
      {"pubsub_server", set_pubsub_server},
      {"pool_size", int_setter("pool_size", &TrackerOptions::pool_size, 1)},
      {"broadcast_period", int_setter("broadcast_period", &TrackerOptions::broadcast_period, 1)},
      {"max_silent_periods",
       int_setter("max_silent_periods", &TrackerOptions::max_silent_periods, 0)},
      {"down_period", int_setter("down_period", &TrackerOptions::down_period, 1)},
      {"permdown_period", int_setter("permdown_period", &TrackerOptions::permdown_period, 1)},
      {"clock_sample_periods",
       int_setter("clock_sample_periods", &TrackerOptions::clock_sample_periods, 1)},
      {"max_delta_sizes", set_delta_sizes},
      {"log_level", set_log_level},
      {"permdown_on_shutdown", set_permdown_on_shutdown},
  };
  return kSetters;
}

std::optional<std::string> apply_option(TrackerOptions& options, std::string_view item) {
  auto equals = item.find('=');
  if (equals == std::string_view::npos) {
    return "'" + std::string(item) + "' is not option=value";
  }
  std::string_view option = item.substr(0, equals);
  auto it = setters().find(option);
  if (it == setters().end()) return "unknown option '" + std::string(option) + "'";
  return it->second(options, item.substr(equals + 1));
}

}  // namespace

std::optional<std::string> validate(const TrackerOptions& options) {
  if (options.name.text().empty()) return std::string("a tracker needs a name");
  if (options.pubsub_server.text().empty()) {
    return "tracker " + std::string(options.name.text()) + " needs a pubsub_server";
  }
  if (options.pool_size < 1 || options.broadcast_period.count() < 1 ||
      options.max_silent_periods < 0 || options.clock_sample_periods < 1 ||
      options.max_delta_sizes.empty()) {
    return std::string("tracker options out of range");
  }
  auto down_period = options.effective_down_period();
  if (down_period < 2 * options.broadcast_period) {
    return std::string("down_period must be at least twice as large as the broadcast_period");
  }
  if (options.permdown_period <= down_period) {
    return std::string("permdown_period must be at least larger than the down_period");
  }
  return std::nullopt;
}

Atom module_atom(std::string_view name) {
  return pubsub_name(name);
}

TrackerFlagResult parse_tracker_flag(std::string_view text, std::optional<Atom> default_pubsub) {
  TrackerOptions options;
  auto comma = text.find(',');
  std::string_view name = text.substr(0, comma);
  if (name.empty() || name.find('=') != std::string_view::npos) {
    return "--tracker " + std::string(text) + ": expected NAME[,option=value...]";
  }
  options.name = module_atom(name);
  if (default_pubsub) options.pubsub_server = *default_pubsub;

  while (comma != std::string_view::npos) {
    text.remove_prefix(comma + 1);
    comma = text.find(',');
    if (auto error = apply_option(options, text.substr(0, comma))) {
      return "--tracker " + std::string(name) + ": " + *error;
    }
  }
  if (auto error = validate(options)) return "--tracker " + std::string(name) + ": " + *error;
  return options;
}

const char* const kTrackerFlagHelp =
    "run a Phoenix.Tracker replica named NAME (MyApp.Presence means\n"
    "      'Elixir.MyApp.Presence'); repeatable. Options, with Phoenix's defaults:\n"
    "        pubsub_server=NAME         the PubSub server (the first --pubsub)\n"
    "        pool_size=N                shards (1)\n"
    "        broadcast_period=MS        heartbeat period (1500)\n"
    "        max_silent_periods=N       quiet periods between empty heartbeats (10)\n"
    "        down_period=MS             silence before a replica is down\n"
    "                                   (2 * max_silent_periods * broadcast_period;\n"
    "                                   at least 2 * broadcast_period)\n"
    "        permdown_period=MS         silence before a replica is removed (1200000;\n"
    "                                   more than down_period)\n"
    "        clock_sample_periods=N     heartbeats between transfer requests (2)\n"
    "        max_delta_sizes=A:B:C      delta generation sizes (100:1000:10000)\n"
    "        log_level=LEVEL            replica events: false, debug, info, warning,\n"
    "                                   error (false)\n"
    "        permdown_on_shutdown=BOOL  on SIGINT/SIGTERM tell peers at once (false)\n"
    "      e.g. --tracker MyApp.Presence,pubsub_server=MyApp.PubSub,pool_size=4";

}  // namespace presence
