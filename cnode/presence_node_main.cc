// presence_node: a C++ node of an Erlang cluster. See --help.
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/control.h"
#include "cnode/heap_policy.h"
#include "cnode/node.h"
#include "cnode/options.h"
#include "cnode/pg.h"
#include "cnode/presence.h"
#include "cnode/pubsub.h"
#include "cnode/tracker.h"

namespace {

// The node's processes: the pg scope, the PubSub servers, the trackers and
// the control process, started in that order on the node thread.
struct Services {
  std::shared_ptr<presence::PgScope> scope;
  std::map<presence::Atom, std::shared_ptr<presence::PubSub>> pubsubs;
  std::unique_ptr<presence::PresenceService> presence;
  std::shared_ptr<presence::ControlProcess> control;

  // Trackers say their goodbyes (permdown_on_shutdown), then everything
  // stops in the reverse order of starting, so that no timer of theirs
  // keeps the io_context running. Node thread.
  void stop() {
    if (presence) presence->shutdown();
    control.reset();
    presence.reset();
    pubsubs.clear();
    scope.reset();
  }
};

bool start_services(presence::Node& node, presence::ProgramOptions& options, Services* out) {
  if (options.pubsubs.empty() && !options.control) return true;
  out->scope = presence::PgScope::start(node);
  if (!out->scope) return false;
  std::vector<std::shared_ptr<presence::PubSub>> all;
  for (const presence::PubSubOptions& pubsub_options : options.pubsubs) {
    auto pubsub = presence::PubSub::start(node, out->scope, pubsub_options);
    if (!pubsub) return false;
    out->pubsubs[pubsub->name()] = pubsub;
    all.push_back(std::move(pubsub));
  }
  std::vector<std::unique_ptr<presence::Tracker>> trackers;
  for (presence::TrackerOptions& tracker_options : options.trackers) {
    auto pubsub = out->pubsubs.at(tracker_options.pubsub_server);
    auto tracker = presence::Tracker::start(node, pubsub, std::move(tracker_options));
    if (!tracker) return false;
    trackers.push_back(std::move(tracker));
  }
  out->presence = std::make_unique<presence::PresenceService>(node, std::move(trackers));
  if (options.control) {
    out->control = presence::ControlProcess::start(node, *out->presence, std::move(all));
    if (!out->control) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char* argv[]) {
  using presence::LogLevel;
  presence::retain_freed_memory();

  presence::ProgramOptions options;
  if (auto error = presence::parse_options(argc, argv, &options)) {
    std::fprintf(stderr, "%s: %s (see --help)\n", argv[0], error->c_str());
    return 2;
  }
  if (options.help) {
    std::fputs(presence::usage(argv[0]).c_str(), stdout);
    return 0;
  }

  boost::asio::io_context io;
  auto node = presence::Node::create(io, std::move(options.node));
  if (!node->start()) return 1;
  Services services;
  if (!start_services(*node, options, &services)) {
    node->stop();
    io.run();
    return 1;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&node, &services](boost::system::error_code ec, int signal) {
    if (ec) return;
    node->log(LogLevel::kInfo, "stopping on signal " + std::to_string(signal));
    // Goodbyes are queued on the connections before they close; the node
    // flushes them as it stops.
    services.stop();
    node->stop();
  });
  io.run();
  return 0;
}
