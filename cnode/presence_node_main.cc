// presence_node: a C++ node of an Erlang cluster. See --help.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "cnode/node.h"
#include "cnode/options.h"

int main(int argc, char* argv[]) {
  using presence::LogLevel;

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

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&node](boost::system::error_code ec, int signal) {
    if (ec) return;
    node->log(LogLevel::kInfo, "stopping on signal " + std::to_string(signal));
    node->stop();
  });
  io.run();
  return 0;
}
