// A real C++ node whose io_context runs on the test's own thread, in
// bounded slices (run_until), so a test reads the state of the node's
// processes between slices without locks. Pairs with ErlNode: rpc() calls a
// function on an Erlang node through its erl_node_rpc process.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "term/term.h"
#include "tests/support/erl_node.h"

namespace presence::testing {

class TestNode {
 public:
  // A started node; check started() before use. Log lines are kept in
  // logs() and, with PRESENCE_TEST_VERBOSE set, printed.
  explicit TestNode(NodeOptions options) {
    options.log = [this](LogLevel level, const std::string& line) {
      logs_.push_back(line);
      if (std::getenv("PRESENCE_TEST_VERBOSE")) {
        std::fprintf(stderr, "[%d] %s\n", static_cast<int>(level), line.c_str());
      }
    };
    node_ = Node::create(io_, std::move(options));
    started_ = node_->start();
  }
  // Stops the node and waits until EPMD has forgotten its name, so that a
  // following test may take the name again.
  ~TestNode() {
    std::string name(node_->name().text());
    node_->stop();
    io_.restart();
    io_.poll();
    node_.reset();
    if (started_) await_epmd_forgets(name);
  }

  bool started() const { return started_; }
  Node& node() { return *node_; }
  boost::asio::io_context& io() { return io_; }
  const std::vector<std::string>& logs() const { return logs_; }
  bool logged(std::string_view fragment) const {
    for (const auto& line : logs_) {
      if (line.find(fragment) != std::string::npos) return true;
    }
    return false;
  }

  // Runs the node until done() holds or timeout passes; returns done().
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  void run_for(std::chrono::milliseconds time) {
    auto deadline = std::chrono::steady_clock::now() + time;
    run_until([&] { return std::chrono::steady_clock::now() >= deadline; }, time * 2);
  }

  bool connected_to(const std::string& node) const {
    for (Atom connected : node_->connected_nodes()) {
      if (connected.text() == node) return true;
    }
    return false;
  }
  bool connect(const std::string& node,
               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    node_->connect(Atom(node));
    return run_until([&] { return connected_to(node); }, timeout);
  }

  // apply(module, function, args) on the Erlang node `node` (an ErlNode),
  // or nullopt if it does not answer in time.
  std::optional<Term> rpc(const std::string& node, std::string_view module,
                          std::string_view function, std::vector<Term> args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::optional<Term> reply;
    Term ref = node_->make_ref();
    auto mailbox = node_->spawn([&](const Term& message) {
      if (message.is_tuple(2) && message[0] == ref) reply = message[1];
    });
    mailbox->send(Atom("erl_node_rpc"), Atom(node),
                  Term::tuple({Term::atom("call"), mailbox->pid(), ref, Term::atom(module),
                               Term::atom(function), Term::list(std::move(args))}));
    run_until([&] { return reply.has_value(); }, timeout);
    mailbox->close();
    return reply;
  }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<Node> node_;
  bool started_ = false;
  std::vector<std::string> logs_;
};

}  // namespace presence::testing
