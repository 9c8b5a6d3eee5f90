// Real C++ nodes running trackers, for multi-node tests in one process.
//
// Each ClusterNode is a real node (EPMD, TCP, handshake) with its own
// io_context, the pg scope 'Elixir.Phoenix.PubSub', a PubSub and one
// tracker behind a PresenceService, and optionally the control process.
// The test thread runs all io_contexts in turns (run_until), so between
// turns it may use every node's node-thread API (Tracker, ShardCore)
// without locks.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnode/control.h"
#include "cnode/pg.h"
#include "cnode/presence.h"
#include "cnode/pubsub.h"
#include "cnode/tracker.h"
#include "tests/support/erl_node.h"
#include "tests/support/test_node.h"

namespace presence::testing {

inline const char* const kClusterCookie = "tracker_cluster_test";

// A node name no other test process is using: prefix_<pid>_<n>.
inline std::string unique_node_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// Tracker options with short periods, for tests.
inline TrackerOptions fast_tracker_options() {
  TrackerOptions options;
  options.name = Atom("Elixir.Test.Presence");
  options.pubsub_server = Atom("Elixir.Test.PubSub");
  options.broadcast_period = std::chrono::milliseconds(50);
  options.max_silent_periods = 2;
  options.down_period = std::chrono::milliseconds(400);
  options.permdown_period = std::chrono::milliseconds(1500);
  return options;
}

class ClusterNode {
 public:
  // name: the node's short name; a fresh unique one when empty.
  explicit ClusterNode(TrackerOptions options = fast_tracker_options(), bool control = false,
                       const std::string& name = "") {
    NodeOptions node_options;
    node_options.name = name.empty() ? unique_node_name("trk") : name;
    node_options.cookie = kClusterCookie;
    node_options.reconnect_min = std::chrono::milliseconds(100);
    node_options.reconnect_max = std::chrono::milliseconds(400);
    node_options.discovery_interval = std::chrono::milliseconds(200);
    node_ = std::make_unique<TestNode>(std::move(node_options));
    if (!node_->started()) return;

    scope_ = PgScope::start(node_->node());
    PubSubOptions pubsub_options;
    pubsub_options.name = std::string(options.pubsub_server.text());
    pubsub_ = PubSub::start(node_->node(), scope_, pubsub_options);
    auto tracker = Tracker::start(node_->node(), pubsub_, options);
    if (!tracker) return;
    tracker_ = tracker.get();
    std::vector<std::unique_ptr<Tracker>> trackers;
    trackers.push_back(std::move(tracker));
    service_ = std::make_unique<PresenceService>(node_->node(), std::move(trackers));
    if (control) control_ = ControlProcess::start(node_->node(), *service_);
  }
  ~ClusterNode() { kill(); }

  bool ready() const { return tracker_ != nullptr; }
  bool alive() const { return node_ != nullptr; }
  Node& node() { return node_->node(); }
  TestNode& test_node() { return *node_; }
  std::string name() { return std::string(node_->node().name().text()); }
  Tracker& tracker() { return *tracker_; }
  PresenceService& service() { return *service_; }

  // Stops everything at once: the peers hear no goodbye.
  void kill() {
    if (!node_) return;
    control_.reset();
    service_.reset();
    tracker_ = nullptr;
    pubsub_.reset();
    scope_.reset();
    node_.reset();
  }

  // Runs one slice of this node's io_context.
  void turn() {
    node_->io().restart();
    node_->io().run_for(std::chrono::milliseconds(2));
  }

 private:
  std::unique_ptr<TestNode> node_;
  std::shared_ptr<PgScope> scope_;
  std::shared_ptr<PubSub> pubsub_;
  Tracker* tracker_ = nullptr;
  std::unique_ptr<PresenceService> service_;
  std::shared_ptr<ControlProcess> control_;
};

// Runs the live nodes in turns until done() holds or timeout passes;
// returns done().
inline bool run_until(const std::vector<ClusterNode*>& nodes, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    for (ClusterNode* node : nodes) {
      if (node->alive()) node->turn();
    }
  }
  return true;
}

inline void run_for(const std::vector<ClusterNode*>& nodes, std::chrono::milliseconds time) {
  auto deadline = std::chrono::steady_clock::now() + time;
  run_until(
      nodes, [&] { return std::chrono::steady_clock::now() >= deadline; }, time * 2);
}

// Runs the nodes until the future is ready and returns its value.
template <class T>
T await(const std::vector<ClusterNode*>& nodes, std::future<T> future,
        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  run_until(
      nodes, [&] { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
      timeout);
  return future.get();
}

// Connects every pair of nodes and waits until all connections are up.
inline bool connect_all(const std::vector<ClusterNode*>& nodes) {
  for (ClusterNode* a : nodes) {
    for (ClusterNode* b : nodes) {
      if (a != b) a->node().connect(b->node().name());
    }
  }
  return run_until(nodes, [&] {
    for (ClusterNode* a : nodes) {
      for (ClusterNode* b : nodes) {
        if (a != b && !a->test_node().connected_to(b->name())) return false;
      }
    }
    return true;
  });
}

}  // namespace presence::testing
