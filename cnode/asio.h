// The parts of Boost.Asio the node uses, included in one place.
//
// Boost 1.74's asio/impl/awaitable.hpp calls std::exchange without including
// <utility>, which GCC 12 in C++20 mode rejects; <utility> comes first here,
// so every file that needs Asio includes this header instead of Asio's own.
#pragma once

// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
