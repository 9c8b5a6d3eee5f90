#include "cnode/options.h"

#include <charconv>
#include <functional>
#include <variant>
#include <vector>

namespace presence {
namespace {

using Apply = std::function<std::optional<std::string>(std::string_view, ProgramOptions*)>;

struct Flag {
  const char* name;
  const char* value;  // nullptr for a switch
  const char* help;
  Apply apply;
};

template <typename Integer>
std::optional<Integer> parse_integer(std::string_view text, Integer min, Integer max) {
  Integer value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> parse_pubsub_flag(std::string_view value, ProgramOptions* options) {
  PubSubOptions pubsub;
  std::string_view name = value.substr(0, value.find(','));
  if (name.empty()) return "--pubsub needs a name";
  pubsub.name = std::string(name);
  if (name.size() < value.size()) {
    std::string_view option = value.substr(name.size() + 1);
    constexpr std::string_view kPoolSize = "pool_size=";
    auto size = option.starts_with(kPoolSize)
                    ? parse_integer<int>(option.substr(kPoolSize.size()), 1, 1024)
                    : std::nullopt;
    if (!size) return "--pubsub " + std::string(value) + ": expected NAME[,pool_size=N]";
    pubsub.pool_size = *size;
  }
  options->pubsubs.push_back(std::move(pubsub));
  return std::nullopt;
}

// Reads the --tracker values now that every --pubsub is known: each names a
// PubSub server that is started here.
std::optional<std::string> read_trackers(ProgramOptions* options) {
  std::optional<Atom> first_pubsub;
  if (!options->pubsubs.empty()) first_pubsub = pubsub_name(options->pubsubs.front().name);
  for (const std::string& flag : options->tracker_flags) {
    auto parsed = parse_tracker_flag(flag, first_pubsub);
    if (auto* error = std::get_if<std::string>(&parsed)) return *error;
    auto& tracker = std::get<TrackerOptions>(parsed);
    bool started = false;
    for (const PubSubOptions& pubsub : options->pubsubs) {
      started = started || pubsub_name(pubsub.name) == tracker.pubsub_server;
    }
    if (!started) {
      return "--tracker " + flag + ": no --pubsub " + std::string(tracker.pubsub_server.text());
    }
    options->trackers.push_back(std::move(tracker));
  }
  return std::nullopt;
}

const std::vector<Flag>& flags() {
  static const std::vector<Flag> table = {
      {"--name", "NAME",
       "node name: 'presence' (the default) becomes presence@<short host name>; a host part "
       "with a dot (presence@127.0.0.1) implies --long-names",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         if (value.empty() || value.front() == '@') return "--name needs a name before '@'";
         options->node.name = std::string(value);
         return std::nullopt;
       }},
      {"--long-names", nullptr,
       "use long node names (as erl -name): the host part is the fully qualified host name",
       [](std::string_view, ProgramOptions* options) -> std::optional<std::string> {
         options->node.long_names = true;
         return std::nullopt;
       }},
      {"--cookie", "COOKIE", "the cluster's cookie (default: ERLANG_COOKIE, then ~/.erlang.cookie)",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         if (value.empty()) return "--cookie needs a value";
         options->node.cookie = std::string(value);
         return std::nullopt;
       }},
      {"--connect", "NODE",
       "stay connected to NODE (name@host), reconnecting with backoff; repeatable",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         std::size_t at = value.find('@');
         if (at == std::string_view::npos || at == 0 || at + 1 == value.size()) {
           return "--connect needs a node name like name@host, not '" + std::string(value) + "'";
         }
         options->node.connect.emplace_back(value);
         return std::nullopt;
       }},
      {"--port", "PORT", "port for incoming distribution connections (default 0: any free port)",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         auto port = parse_integer<std::uint16_t>(value, 0, 65535);
         if (!port) return "--port needs a port number, not '" + std::string(value) + "'";
         options->node.listen_port = *port;
         return std::nullopt;
       }},
      {"--tick-time", "SECONDS",
       "as net_ticktime (default 60): tick every quarter of it, drop peers silent for all of it",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         auto seconds = parse_integer<long>(value, 1, 86400);
         if (!seconds) return "--tick-time needs seconds from 1 to 86400";
         options->node.tick_time = std::chrono::seconds(*seconds);
         return std::nullopt;
       }},
      {"--max-send-queue", "MIB",
       "close the connection to a peer that cannot keep up once more than MIB mebibytes wait "
       "to be written to it (default 1024)",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         auto mebibytes = parse_integer<std::size_t>(value, 1, std::size_t{1} << 20);
         if (!mebibytes) return "--max-send-queue needs mebibytes from 1 to 1048576";
         options->node.max_send_queue = *mebibytes << 20;
         return std::nullopt;
       }},
      {"--pubsub", "NAME[,pool_size=N]",
       "run the Phoenix.PubSub server NAME (MyApp.PubSub means 'Elixir.MyApp.PubSub'), "
       "with the pool_size of the Phoenix nodes (default 1); repeatable",
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         return parse_pubsub_flag(value, options);
       }},
      {"--tracker", "NAME[,option=value...]", kTrackerFlagHelp,
       [](std::string_view value, ProgramOptions* options) -> std::optional<std::string> {
         options->tracker_flags.emplace_back(value);
         return std::nullopt;
       }},
      {"--control", nullptr,
       "run the control process 'presence': gen_server calls from any node to track, "
       "untrack, update and list presences and to use the PubSub servers",
       [](std::string_view, ProgramOptions* options) -> std::optional<std::string> {
         options->control = true;
         return std::nullopt;
       }},
      {"--help", nullptr, "print this text and exit",
       [](std::string_view, ProgramOptions* options) -> std::optional<std::string> {
         options->help = true;
         return std::nullopt;
       }},
  };
  return table;
}

const Flag* find_flag(std::string_view name) {
  for (const Flag& flag : flags()) {
    if (name == flag.name) return &flag;
  }
  return nullptr;
}

// A host part with a dot can only be a long name.
void infer_long_names(NodeOptions* node) {
  std::size_t at = node->name.find('@');
  if (at != std::string::npos && node->name.find('.', at) != std::string::npos) {
    node->long_names = true;
  }
}

}  // namespace

std::optional<std::string> parse_options(int argc, const char* const argv[],
                                         ProgramOptions* options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    std::size_t equals = argument.find('=');
    std::string_view name = argument.substr(0, equals);
    const Flag* flag = find_flag(name);
    if (flag == nullptr) return "unknown argument '" + std::string(argument) + "'";

    std::string_view value;
    if (flag->value == nullptr) {
      if (equals != std::string_view::npos) return std::string(name) + " takes no value";
    } else if (equals != std::string_view::npos) {
      value = argument.substr(equals + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return std::string(name) + " needs a value (" + flag->value + ")";
    }
    if (auto error = flag->apply(value, options)) return error;
  }
  infer_long_names(&options->node);
  return read_trackers(options);
}

std::string usage(std::string_view program) {
  std::string text = "Usage: " + std::string(program) + " [flags]\n\n";
  text += "Joins an Erlang cluster as a hidden node.\n\nFlags:\n";
  for (const Flag& flag : flags()) {
    std::string left = std::string("  ") + flag.name;
    if (flag.value != nullptr) left += std::string(" ") + flag.value;
    text += left + "\n      " + flag.help + "\n";
  }
  text +=
      "\nEnvironment:\n"
      "  ERLANG_COOKIE       the cookie, when --cookie is not given\n"
      "  HOME                ~/.erlang.cookie is read when neither gives a cookie\n"
      "  ERL_EPMD_PORT       the port of EPMD (default 4369)\n"
      "  PRESENCE_LOG_LEVEL  debug, info (the default), warning or error\n"
      "\nSIGINT and SIGTERM stop the node in order.\n";
  return text;
}

}  // namespace presence
