#include "cnode/node.h"

#include <netdb.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <utility>

#include "cnode/asio.h"
#include "cnode/dist_node.h"
#include "cnode/log.h"

namespace presence {
namespace {

using boost::asio::ip::tcp;

constexpr std::chrono::milliseconds kEpmdTimeout{5000};

// The Node handed to users: it owns the core, which asynchronous handlers
// keep alive by shared_ptr until they have run.
class NodeHandle final : public Node {
 public:
  explicit NodeHandle(std::shared_ptr<NodeCore> core) : core_(std::move(core)) {}
  // Like every non-thread-safe call: on the node thread, or while the
  // io_context is not running.
  ~NodeHandle() override { core_->stop_now(); }

  bool start() override { return core_->start(); }
  void stop() override { core_->stop(); }
  Atom name() const override { return core_->name(); }
  std::uint32_t creation() const override { return core_->creation(); }
  std::uint16_t port() const override { return core_->port(); }
  std::shared_ptr<Mailbox> spawn(Mailbox::Handler handler, std::optional<Atom> name) override {
    return core_->spawn(std::move(handler), name);
  }
  void send(const Term& to_pid, Term message) override { core_->send(to_pid, std::move(message)); }
  void send(Atom name, Atom node, Term message) override {
    core_->send(name, node, std::move(message));
  }
  Term make_ref() override { return core_->make_ref(); }
  std::vector<Atom> connected_nodes() const override { return core_->connected_nodes(); }
  void connect(Atom node) override { core_->connect(node); }
  int on_node_event(NodeEventHandler handler) override {
    return core_->on_node_event(std::move(handler));
  }
  void remove_node_event_handler(int id) override { core_->remove_node_event_handler(id); }
  void log(LogLevel level, const std::string& message) override { core_->log(level, message); }
  boost::asio::io_context& io() override { return core_->io(); }
  std::optional<Atom> message_origin() const override { return core_->message_origin(); }

 private:
  std::shared_ptr<NodeCore> core_;
};

std::string short_host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "localhost";
  std::string name(host);
  return name.substr(0, name.find('.'));
}

// The fully qualified name of this host when the resolver knows one.
std::string long_host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "localhost";
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* info = nullptr;
  std::string name(host);
  if (::getaddrinfo(host, nullptr, &hints, &info) == 0 && info != nullptr) {
    if (info->ai_canonname != nullptr) name = info->ai_canonname;
    ::freeaddrinfo(info);
  }
  return name;
}

bool valid_alive(std::string_view alive) {
  if (alive.empty() || alive.size() > 255) return false;
  for (char c : alive) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string trim(std::string text) {
  const char* space = " \t\r\n";
  std::size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

}  // namespace

std::unique_ptr<Node> Node::create(boost::asio::io_context& io, NodeOptions options) {
  return std::make_unique<NodeHandle>(std::make_shared<NodeCore>(io, std::move(options)));
}

std::optional<std::string> find_cookie(const std::string& explicit_cookie) {
  if (!explicit_cookie.empty()) return explicit_cookie;
  if (const char* env = std::getenv("ERLANG_COOKIE"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr) return std::nullopt;
  std::ifstream file(std::string(home) + "/.erlang.cookie");
  std::string line;
  if (!file || !std::getline(file, line)) return std::nullopt;
  line = trim(line);
  if (line.empty()) return std::nullopt;
  return line;
}

void reply_to_call(Mailbox& mailbox, const Term& from, Term reply) {
  if (!from.is_tuple(2) || !from[0].is_pid()) return;
  mailbox.send(from[0], Term::tuple({from[1], std::move(reply)}));
}

// ---- LocalMailbox ----

LocalMailbox::LocalMailbox(std::weak_ptr<NodeCore> node, Term pid, std::optional<Atom> name,
                           Handler handler)
    : node_(std::move(node)), pid_(std::move(pid)), name_(name), handler_(std::move(handler)) {}

LocalMailbox::~LocalMailbox() {
  if (!mark_closed()) return;
  if (auto node = node_.lock()) node->exited(pid_, Term::atom("normal"));
}

void LocalMailbox::send(const Term& to_pid, Term message) {
  auto node = node_.lock();
  if (!node) return;
  node->run_on_node([node, from = pid_, to = to_pid, message = std::move(message)]() mutable {
    node->route(from, to, std::move(message));
  });
}

void LocalMailbox::send(Atom name, Atom to_node, Term message) {
  auto node = node_.lock();
  if (!node) return;
  node->run_on_node([node, from = pid_, name, to_node, message = std::move(message)]() mutable {
    node->route_named(from, name, to_node, std::move(message));
  });
}

Term LocalMailbox::monitor(const Term& pid) {
  auto node = node_.lock();
  if (!node) return Term();
  Term ref = node->make_ref();
  if (!closed()) node->monitor(pid_, pid, ref);
  return ref;
}

void LocalMailbox::demonitor(const Term& ref) {
  if (auto node = node_.lock()) node->demonitor(pid_, ref);
}

void LocalMailbox::link(const Term& pid) {
  auto node = node_.lock();
  if (node && !closed()) node->link(pid_, pid);
}

void LocalMailbox::unlink(const Term& pid) {
  if (auto node = node_.lock()) node->unlink(pid_, pid);
}

void LocalMailbox::close(Term reason) {
  if (!mark_closed()) return;
  if (auto node = node_.lock()) node->exited(pid_, std::move(reason));
}

void LocalMailbox::deliver(const Term& message) {
  if (!closed_) handler_(message);
}

// ---- NodeCore: naming, start and stop ----

NodeCore::NodeCore(boost::asio::io_context& io, NodeOptions options)
    : io_(io), options_(std::move(options)), acceptor_(io) {
  name_error_ = resolve_name();
  if (!options_.log) {
    options_.log = make_stderr_log_sink(std::string(name_.text()), log_level_from_env());
  }
  if (options_.epmd_port == 0) options_.epmd_port = epmd::default_port();
}

// Sets name_ and alive_ from the options; returns why the name is unusable,
// or an empty string.
std::string NodeCore::resolve_name() {
  std::string text = options_.name;
  std::size_t at = text.find('@');
  alive_ = text.substr(0, at);
  std::string host = at == std::string::npos ? "" : text.substr(at + 1);
  if (at == std::string::npos) host = options_.long_names ? long_host_name() : short_host_name();
  name_ = Atom(alive_ + "@" + host);
  if (!valid_alive(alive_)) return "invalid node name '" + text + "'";
  if (host.empty() || host.find('@') != std::string::npos) {
    return "invalid host in node name '" + text + "'";
  }
  return "";
}

bool NodeCore::start() {
  if (started_) return true;
  if (!name_error_.empty()) {
    log(LogLevel::kError, name_error_);
    return false;
  }
  auto cookie = find_cookie(options_.cookie);
  if (!cookie) {
    log(LogLevel::kError, "no cookie: pass one, or set ERLANG_COOKIE or ~/.erlang.cookie");
    return false;
  }
  cookie_ = *cookie;
  if (!open_listener()) return false;

  std::string error = registration_.register_node(options_.epmd_host, options_.epmd_port, alive_,
                                                  port_, kEpmdTimeout);
  if (!error.empty()) {
    log(LogLevel::kError, "cannot register " + std::string(alive_) + " at EPMD " +
                              options_.epmd_host + ":" + std::to_string(options_.epmd_port) + ": " +
                              error);
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return false;
  }
  creation_ = registration_.creation();
  started_ = true;
  log(LogLevel::kInfo, "registered at EPMD, listening on port " + std::to_string(port_) +
                           " (creation " + std::to_string(creation_) + ", tick time " +
                           std::to_string(options_.tick_time.count()) + " s)");

  spawn_builtins();
  step_accept();
  for (const std::string& node : options_.connect) {
    configured_.insert(Atom(node));
    connect(Atom(node));
  }
  schedule_discovery();
  return true;
}

bool NodeCore::open_listener() {
  boost::system::error_code ec;
  tcp::endpoint endpoint(tcp::v4(), options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    log(LogLevel::kError,
        "cannot listen on port " + std::to_string(options_.listen_port) + ": " + ec.message());
    acceptor_.close(ec);
    return false;
  }
  port_ = acceptor_.local_endpoint().port();
  return true;
}

void NodeCore::spawn_builtins() {
  std::weak_ptr<NodeCore> weak = weak_from_this();
  net_kernel_ = spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->handle_net_kernel(message);
      },
      Atom("net_kernel"));
  rex_ = spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->handle_rex(message);
      },
      Atom("rex"));
  system_ = spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->handle_system(message);
      },
      std::nullopt);
}

void NodeCore::step_accept() {
  acceptor_.async_accept(
      [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (self->stopping_ || ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          self->log(LogLevel::kWarning, "accept failed: " + ec.message());
          return self->step_accept();
        }
        auto connection =
            dist::Connection::accept(std::move(socket), self->weak_from_this(), self->local_node());
        self->unnamed_.insert(connection);
        connection->start();
        self->step_accept();
      });
}

dist::LocalNode NodeCore::local_node() const {
  dist::LocalNode local;
  local.name = name_;
  local.creation = creation_;
  local.cookie = cookie_;
  local.tick_time = options_.tick_time;
  local.epmd_port = options_.epmd_port;
  local.max_queued_bytes = options_.max_send_queue;
  return local;
}

void NodeCore::stop() {
  run_on_node([self = shared_from_this()] { self->stop_now(); });
}

// Mailboxes close first, so that their exit signals are queued on the
// connections, which then close once those are written.
void NodeCore::stop_now() {
  if (stopping_) return;
  stopping_ = true;

  std::vector<std::shared_ptr<LocalMailbox>> open;
  {
    std::lock_guard lock(registry_mutex_);
    for (const auto& [pid, weak] : mailboxes_) {
      if (auto mailbox = weak.lock()) open.push_back(mailbox);
    }
  }
  for (const auto& mailbox : open) {
    if (mailbox->mark_closed()) exited(mailbox->pid(), Term::atom("shutdown"));
  }

  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& timer : timers_) timer->cancel();
  timers_.clear();
  std::vector<Atom> were_up;
  for (const auto& [node, connection] : connections_) {
    if (connection->up()) were_up.push_back(node);
    connection->close_after_flush();
  }
  for (const auto& connection : unnamed_) connection->close();
  connections_.clear();
  // The connections are gone for the node's processes too: their watchers
  // (pg discovery, trackers) stop what they do per peer, timers included,
  // so that the io_context runs out of work.
  for (Atom node : were_up) fire_node_event(node, false);
  unnamed_.clear();
  outbox_.clear();
  links_.clear();
  monitors_.clear();
  monitors_of_target_.clear();
  monitors_of_watcher_.clear();
  registration_.close();
  if (started_) log(LogLevel::kInfo, "stopped");
}

// ---- NodeCore: processes ----

Term NodeCore::new_pid() {
  std::uint64_t n = next_pid_++;
  // 15 bits of id and 13 of serial, the pid layout every node accepts.
  PidValue value{name_, static_cast<std::uint32_t>(n & 0x7fff),
                 static_cast<std::uint32_t>((n >> 15) & 0x1fff), creation_};
  return Term::pid(value);
}

std::shared_ptr<Mailbox> NodeCore::spawn(Mailbox::Handler handler, std::optional<Atom> name) {
  Term pid = new_pid();
  auto mailbox = std::make_shared<LocalMailbox>(weak_from_this(), pid, name, std::move(handler));

  std::lock_guard lock(registry_mutex_);
  if (name) {
    auto it = names_.find(*name);
    if (it != names_.end()) {
      auto holder = mailboxes_.find(it->second);
      auto alive = holder == mailboxes_.end() ? nullptr : holder->second.lock();
      if (alive && !alive->closed()) {
        mailbox->mark_closed();
        return nullptr;
      }
    }
    names_[*name] = pid;
  }
  mailboxes_[pid] = mailbox;
  return mailbox;
}

std::shared_ptr<LocalMailbox> NodeCore::find_mailbox(const Term& pid) const {
  std::lock_guard lock(registry_mutex_);
  auto it = mailboxes_.find(pid);
  if (it == mailboxes_.end()) return nullptr;
  auto mailbox = it->second.lock();
  if (!mailbox || mailbox->closed()) return nullptr;
  return mailbox;
}

std::optional<Term> NodeCore::whereis(Atom name) const {
  std::lock_guard lock(registry_mutex_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

bool NodeCore::is_local(const Term& pid) const {
  return pid.is_pid() && pid.as_pid().node == name_ && pid.as_pid().creation == creation_;
}

void NodeCore::unregister(const Term& pid) {
  std::lock_guard lock(registry_mutex_);
  mailboxes_.erase(pid);
  for (auto it = names_.begin(); it != names_.end(); ++it) {
    if (it->second == pid) {
      names_.erase(it);
      break;
    }
  }
}

void NodeCore::exited(const Term& pid, Term reason) {
  unregister(pid);
  run_on_node([self = shared_from_this(), pid, reason = std::move(reason)] {
    self->fire_links(pid, reason);
    self->fire_monitors(pid, reason);
    self->drop_own_monitors(pid);
  });
}

void NodeCore::send(const Term& to_pid, Term message) {
  run_on_node([self = shared_from_this(), to = to_pid, message = std::move(message)]() mutable {
    if (!self->system_) return;
    self->route(self->system_->pid(), to, std::move(message));
  });
}

void NodeCore::send(Atom name, Atom node, Term message) {
  run_on_node([self = shared_from_this(), name, node, message = std::move(message)]() mutable {
    if (!self->system_) return;
    self->route_named(self->system_->pid(), name, node, std::move(message));
  });
}

Term NodeCore::make_ref() {
  std::uint64_t n = next_ref_++;
  // The first word of a reference holds 18 bits.
  RefValue value{name_,
                 creation_,
                 {static_cast<std::uint32_t>(n & 0x3ffff), static_cast<std::uint32_t>(n >> 18),
                  static_cast<std::uint32_t>(n >> 50)}};
  return Term::reference(std::move(value));
}

std::vector<Atom> NodeCore::connected_nodes() const {
  std::vector<Atom> nodes;
  for (const auto& [node, connection] : connections_) {
    if (connection->up()) nodes.push_back(node);
  }
  return nodes;
}

int NodeCore::on_node_event(Node::NodeEventHandler handler) {
  int id = next_handler_id_++;
  node_handlers_[id] = std::move(handler);
  return id;
}

void NodeCore::remove_node_event_handler(int id) {
  node_handlers_.erase(id);
}

void NodeCore::log(LogLevel level, const std::string& message) {
  options_.log(level, message);
}

}  // namespace presence
