// Options of a tracker (a pool of shards), with Phoenix.Tracker's defaults
// and validation, and the parser of the `--tracker` command-line flag.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cnode/node.h"
#include "term/term.h"

namespace presence {

struct TrackerOptions {
  // The tracker's registered name, also the prefix of its shards' names
  // ("Elixir.MyApp.Presence" gives shards "Elixir.MyApp.Presence_shard0"...).
  Atom name;
  // The PubSub server the shards talk through, e.g. 'Elixir.MyApp.PubSub'.
  Atom pubsub_server;
  int pool_size = 1;
  std::chrono::milliseconds broadcast_period{1500};
  int max_silent_periods = 10;
  // Unset: broadcast_period * max_silent_periods * 2.
  std::optional<std::chrono::milliseconds> down_period;
  std::chrono::milliseconds permdown_period{1'200'000};
  int clock_sample_periods = 2;
  std::vector<std::size_t> max_delta_sizes{100, 1000, 10'000};
  // Level of the shards' replica and transfer events; unset means not logged
  // (Phoenix's `log_level: false`).
  std::optional<LogLevel> log_level;
  // Whether stopping the tracker tells the peers at once (graceful permdown)
  // instead of letting them wait for down_period.
  bool permdown_on_shutdown = false;

  std::chrono::milliseconds effective_down_period() const {
    return down_period.value_or(broadcast_period * max_silent_periods * 2);
  }
};

// Checks the options as Phoenix.Tracker does when a shard starts. Returns the
// reason they are refused (Phoenix's wording where it has one), or
// std::nullopt when they are valid.
std::optional<std::string> validate(const TrackerOptions& options);

// An Erlang atom for a name given on the command line or in a request, by
// the rule of pubsub_name(): an Elixir alias such as MyApp.Presence becomes
// 'Elixir.MyApp.Presence'; 'Elixir.'-prefixed and plain names stay as they are.
Atom module_atom(std::string_view name);

// The result of parsing a flag: the options, or why the text was refused.
using TrackerFlagResult = std::variant<TrackerOptions, std::string>;

// Parses the value of `--tracker NAME[,option=value...]`, for example
// "MyApp.Presence,pubsub_server=MyApp.PubSub,pool_size=4,broadcast_period=300".
// Options: pubsub_server (defaults to default_pubsub; an error when both are
// missing), pool_size, broadcast_period, max_silent_periods, down_period,
// permdown_period (milliseconds), clock_sample_periods, max_delta_sizes
// (sizes separated by ':', e.g. 100:1000:10000), log_level (false, debug,
// info, warning, error), permdown_on_shutdown (true, false). The result is
// validated as by validate().
TrackerFlagResult parse_tracker_flag(std::string_view text,
                                     std::optional<Atom> default_pubsub = std::nullopt);

// The help of the --tracker flag (after its "--tracker NAME[,option=value...]"
// line), indented for the program's --help text.
extern const char* const kTrackerFlagHelp;

}  // namespace presence
