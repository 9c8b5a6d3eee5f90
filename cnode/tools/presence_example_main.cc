// presence_example: the C++ API end to end, as a native service uses it.
//
//   presence_example NODE_NAME COOKIE [PEER_NODE]
//
// Starts a node (connected to PEER_NODE when given) with the PubSub server
// MyApp.PubSub and the tracker MyApp.Presence, opens a session from a
// service thread, tracks "alice" on "room:1", prints the topic's presences
// and the diffs it sees for ten seconds, then closes the session and stops.
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "cnode/pg.h"
#include "cnode/presence.h"
#include "cnode/pubsub.h"
#include "cnode/tracker.h"
#include "cnode/tracker_options.h"

namespace {

using presence::Meta;
using presence::Term;

void print_presences(const presence::PresenceMap& presences) {
  for (const auto& [key, metas] : presences) {
    for (const Term& meta : metas) {
      std::printf("  %s %s\n", key.to_string().c_str(), meta.to_string().c_str());
    }
  }
}

// The native service: runs on its own thread, talks to the node through the
// thread-safe API only.
void run_service(presence::PresenceService& service) {
  auto diffs = service.subscribe("MyApp.Presence", presence::Value("room:1"),
                                 [](const Term& topic, const presence::TopicDiff& diff) {
                                   std::printf("diff on %s: %zu joins, %zu leaves\n",
                                               topic.to_string().c_str(), diff.joins.size(),
                                               diff.leaves.size());
                                 });

  auto session = service.open_session();
  auto ref = session->track("MyApp.Presence", "room:1", "alice", Meta{{"device", "cpp"}}).get();
  if (!ref) {
    std::printf("track failed: %s\n", ref.error().to_string().c_str());
    return;
  }
  // Read-your-writes: alice is listed as soon as track returns.
  std::printf("tracked alice, phx_ref %s; room:1 now:\n", ref->c_str());
  print_presences(*service.presences("MyApp.Presence", "room:1").get());

  presence::Liveness liveness = service.confirm_alive(session->pid()).get();
  std::printf("alice's session is %s\n", liveness.alive ? "alive" : "gone");

  std::this_thread::sleep_for(std::chrono::seconds(10));
  std::printf("room:1 after ten seconds:\n");
  print_presences(*service.presences("MyApp.Presence", "room:1").get());
  session->close().get();
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s NODE_NAME COOKIE [PEER_NODE]\n", argv[0]);
    return 2;
  }
  boost::asio::io_context io;
  presence::NodeOptions options;
  options.name = argv[1];
  options.cookie = argv[2];
  if (argc > 3) options.connect.push_back(argv[3]);
  auto node = presence::Node::create(io, options);
  if (!node->start()) return 1;

  // Services start on the node thread: here, before io.run().
  auto scope = presence::PgScope::start(*node);
  auto pubsub = presence::PubSub::start(*node, scope, {.name = "MyApp.PubSub"});
  auto parsed = presence::parse_tracker_flag("MyApp.Presence,pubsub_server=MyApp.PubSub");
  std::vector<std::unique_ptr<presence::Tracker>> trackers;
  trackers.push_back(presence::Tracker::start(
      *node, pubsub, std::get<presence::TrackerOptions>(std::move(parsed))));
  auto service = std::make_unique<presence::PresenceService>(*node, std::move(trackers));

  std::thread service_thread([&] {
    run_service(*service);
    boost::asio::post(io, [&] {
      service->shutdown();
      service.reset();
      pubsub.reset();
      scope.reset();
      node->stop();
    });
  });
  io.run();
  service_thread.join();
  return 0;
}
