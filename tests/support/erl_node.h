// A real Erlang node for tests: starts `erl` with a node name, a cookie and
// an -eval script, waits until the script has run (the node is then up and
// reachable through EPMD), and kills the node when destroyed.
//
// The script is a sequence of Erlang expressions without the final dot; it
// must return, leaving long-lived processes behind (the node keeps running
// after -eval). Every node also runs the registered process erl_node_rpc,
// which answers {call, From, Ref, M, F, A} with From ! {Ref, Result} (Result
// as `catch apply(M, F, A)` gives it), so a C++ node can query it.
//
// Usage: ErlNode beam({.name = "beam1", .cookie = "c", .script = "..."});
//        ASSERT_TRUE(beam.ready()) << beam.output();
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace presence::testing {

// Starts epmd in the background if it is not running yet; the real node and
// erl both need it. Returns false if it could not be started.
inline bool ensure_epmd() {
  return std::system("epmd -daemon") == 0;
}

// Whether EPMD has a node registered under `name` (the part before '@').
inline bool epmd_lists(std::string_view name) {
  name = name.substr(0, name.find('@'));
  FILE* names = ::popen("epmd -names 2>/dev/null", "r");
  if (names == nullptr) return false;
  bool listed = false;
  char line[512];
  std::string wanted = "name " + std::string(name) + " at port";
  while (std::fgets(line, sizeof line, names) != nullptr) {
    if (std::string_view(line).starts_with(wanted)) listed = true;
  }
  ::pclose(names);
  return listed;
}

// EPMD forgets a node only after noticing its connection closed: waits for
// that (up to timeout), so that the name can be registered again at once.
inline bool await_epmd_forgets(std::string_view name,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (epmd_lists(name)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class ErlNode {
 public:
  struct Options {
    std::string name;  // "beam1" (short name) or "beam1@127.0.0.1" (with long_names)
    bool long_names = false;
    std::string cookie;
    std::string script = "ok";
    std::vector<std::string> extra_args;
    std::chrono::milliseconds ready_timeout{20000};
  };

  explicit ErlNode(Options options) : options_(std::move(options)) { start(); }
  ~ErlNode() { kill(); }
  ErlNode(const ErlNode&) = delete;
  ErlNode& operator=(const ErlNode&) = delete;

  // True once the script has run; the node name is then known.
  bool ready() const {
    std::lock_guard lock(mutex_);
    return !node_name_.empty();
  }
  // The full node name, e.g. "beam1@myhost".
  std::string node_name() const {
    std::lock_guard lock(mutex_);
    return node_name_;
  }
  // Everything the node printed, for failure messages.
  std::string output() const {
    std::lock_guard lock(mutex_);
    return output_;
  }

  // Ends the node at once (SIGKILL, as a crash would), and waits until it
  // is gone and EPMD has forgotten its name.
  void kill() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      await_epmd_forgets(options_.name);
    }
    if (reader_.joinable()) reader_.join();
  }

 private:
  static constexpr const char* kReadyMarker = "erl_node_ready ";

  std::string full_script() const {
    // The rpc server, then the caller's script, then the ready line.
    return "register(erl_node_rpc, spawn(fun Loop() -> receive "
           "{call, From, Ref, M, F, A} -> From ! {Ref, catch apply(M, F, A)}, Loop(); "
           "_ -> Loop() end end)), " +
           options_.script + ", io:format(\"~n" + kReadyMarker + "~s~n\", [node()]).";
  }

  void start() {
    std::vector<std::string> args = {"erl",           options_.long_names ? "-name" : "-sname",
                                     options_.name,   "-setcookie",
                                     options_.cookie, "-noshell",
                                     "-noinput",      "-eval",
                                     full_script()};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());

    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) exec_child(args, fds);
    ::close(fds[1]);
    if (pid_ < 0) {
      ::close(fds[0]);
      return;
    }
    reader_ = std::thread([this, fd = fds[0]] { read_output(fd); });
    std::unique_lock lock(mutex_);
    ready_changed_.wait_for(lock, options_.ready_timeout,
                            [this] { return !node_name_.empty() || ended_; });
  }

  [[noreturn]] static void exec_child(const std::vector<std::string>& args, int fds[2]) {
    ::setpgid(0, 0);  // its own group, so that kill() reaches erl's children too
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execvp("erl", argv.data());
    ::_exit(127);
  }

  void read_output(int fd) {
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      output_.append(buffer, static_cast<std::size_t>(n));
      find_node_name();
    }
    ::close(fd);
    std::lock_guard lock(mutex_);
    ended_ = true;
    ready_changed_.notify_all();
  }

  // Called with mutex_ held.
  void find_node_name() {
    if (!node_name_.empty()) return;
    auto start = output_.find(kReadyMarker);
    if (start == std::string::npos) return;
    start += std::string(kReadyMarker).size();
    auto end = output_.find('\n', start);
    if (end == std::string::npos) return;
    node_name_ = output_.substr(start, end - start);
    ready_changed_.notify_all();
  }

  Options options_;
  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable ready_changed_;
  std::string output_;
  std::string node_name_;
  bool ended_ = false;
};

}  // namespace presence::testing
