// The command line of the presence_node program.
//
// Flags are kept in one table (options.cc): each has a name, an optional
// value, a line of help and the function that applies it, so a feature
// adds its flag by adding a row and a field here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cnode/node.h"
#include "cnode/pubsub.h"
#include "cnode/tracker_options.h"

namespace presence {

struct ProgramOptions {
  // name defaults to "presence"; the cookie is left empty when not given,
  // so that the node looks for one as find_cookie() describes.
  NodeOptions node;
  bool help = false;
  // --pubsub, in command-line order.
  std::vector<PubSubOptions> pubsubs;
  // --tracker, validated; pubsub_server defaults to the first --pubsub.
  std::vector<TrackerOptions> trackers;
  // --control: run the control process `presence`.
  bool control = false;
  // The raw --tracker values, read once every flag is known.
  std::vector<std::string> tracker_flags;

  ProgramOptions() { node.name = "presence"; }
};

// Parses argv[1..argc-1] into *options. Flags take their value as the next
// argument or after '=' (--port=4370). Returns the reason the command line
// is refused, as one line, or std::nullopt.
std::optional<std::string> parse_options(int argc, const char* const argv[],
                                         ProgramOptions* options);

// The --help text: every flag and the environment variables the node reads.
std::string usage(std::string_view program);

}  // namespace presence
