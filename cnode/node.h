// A C++ process that is a node of an Erlang cluster.
//
// The node registers its name with EPMD, accepts and opens distribution
// connections (handshake, cookie, ticks), and routes messages between the
// cluster and C++ mailboxes. All connections share one Boost.Asio
// io_context; no thread blocks on a socket.
//
// Threading: everything inside the node, every mailbox handler and every
// node-event handler runs on the thread that runs the io_context (the "node
// thread"). The methods marked thread-safe may be called from any thread;
// they post work to the node thread. All others must be called on the node
// thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "term/term.h"

namespace presence {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Where the node's operator messages go. The default writes one line per
// event to stderr, prefixed with the level and the node name; the level is
// read from PRESENCE_LOG_LEVEL (debug, info, warning, error; info by default).
using LogSink = std::function<void(LogLevel, const std::string&)>;

struct NodeOptions {
  // "cpp" (short name: the host part is this machine's short host name) or
  // "cpp@host". With long_names the host part must be a fully qualified
  // name or an IP address ("cpp@127.0.0.1").
  std::string name;
  bool long_names = false;
  std::string cookie;
  // Nodes to stay connected to, reconnecting with exponential backoff
  // (reconnect_min doubling up to reconnect_max).
  std::vector<std::string> connect;
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{5000};
  // As the kernel's net_ticktime: a tick is sent every quarter of it, and a
  // connection silent for the whole of it is closed.
  std::chrono::seconds tick_time{60};
  // Bytes that may wait to be written to one peer, behind the write in
  // progress, before its connection is closed as one that cannot keep up
  // (the BEAM would suspend the senders instead; a node thread cannot
  // wait). The connection is set up again as after any loss, and trackers
  // catch up as after a net split; what was queued for the peer is lost.
  std::size_t max_send_queue = std::size_t{1} << 30;
  // How often connected nodes are asked which nodes they know, so that
  // nodes joining the cluster later are connected to as well.
  std::chrono::milliseconds discovery_interval{2000};
  // Port for incoming distribution connections; 0 picks a free one.
  std::uint16_t listen_port = 0;
  // EPMD; the port defaults to ERL_EPMD_PORT or 4369.
  std::string epmd_host = "127.0.0.1";
  std::uint16_t epmd_port = 0;
  LogSink log;  // empty: the default sink described above
};

class Node;

// A C++ process: a pid of this node, an optional registered name, and a
// handler that receives every message sent to either. Owned by the caller
// through the shared_ptr that Node::spawn returns; the node keeps only a weak
// reference, and messages to a closed or destroyed mailbox are dropped.
class Mailbox {
 public:
  // Called on the node thread for each message, in arrival order.
  using Handler = std::function<void(const Term& message)>;

  virtual ~Mailbox() = default;
  virtual const Term& pid() const = 0;
  virtual std::optional<Atom> registered_name() const = 0;

  // Sends from this mailbox (the sender pid of links and monitors).
  // Thread-safe.
  virtual void send(const Term& to_pid, Term message) = 0;
  virtual void send(Atom name, Atom node, Term message) = 0;

  // Monitors a process of any node; {'DOWN', Ref, process, Pid, Reason}
  // arrives in this mailbox when it dies, when the connection to its node
  // is lost (Reason noconnection) or at once if it does not exist (noproc).
  // Returns the monitor reference.
  virtual Term monitor(const Term& pid) = 0;
  virtual void demonitor(const Term& ref) = 0;
  // Links; an exit signal from a linked process arrives as the message
  // {'EXIT', From, Reason} (this mailbox traps exits).
  virtual void link(const Term& pid) = 0;
  virtual void unlink(const Term& pid) = 0;

  // Ends the process: linked processes get an exit signal with reason,
  // monitors fire DOWN with reason, the registered name is released.
  // Idempotent. Thread-safe.
  virtual void close(Term reason = Term::atom("normal")) = 0;
};

// Answers to gen_server calls arriving as {'$gen_call', From, Request}.
// `from` is the From of the call; the reply is sent as {Tag, Reply} to its
// pid, with Tag echoed exactly (it may be an alias list).
void reply_to_call(Mailbox& mailbox, const Term& from, Term reply);

class Node {
 public:
  // Node thread calls. See the header comment for thread rules.
  using NodeEventHandler = std::function<void(Atom node, bool up)>;

  static std::unique_ptr<Node> create(boost::asio::io_context& io, NodeOptions options);
  virtual ~Node() = default;

  // Registers with EPMD, starts listening and connecting. Returns false and
  // logs why when the name is taken or EPMD cannot be reached.
  virtual bool start() = 0;
  // Closes every mailbox and connection and unregisters from EPMD.
  // Thread-safe.
  virtual void stop() = 0;

  virtual Atom name() const = 0;
  virtual std::uint32_t creation() const = 0;
  virtual std::uint16_t port() const = 0;

  // A new process. With a name, the name must be free on this node
  // (returns nullptr otherwise). Call it after start(): a pid carries the
  // creation EPMD gives the node. Thread-safe.
  virtual std::shared_ptr<Mailbox> spawn(Mailbox::Handler handler,
                                         std::optional<Atom> name = std::nullopt) = 0;

  // Sends without a sender process (as erlang:send/2 from an anonymous
  // process). Local pids and names are delivered directly. A message to a
  // node not connected yet triggers a connection attempt and is queued
  // until it is up (dropped if it fails). Thread-safe.
  virtual void send(const Term& to_pid, Term message) = 0;
  virtual void send(Atom name, Atom node, Term message) = 0;

  // A new unique reference of this node. Thread-safe.
  virtual Term make_ref() = 0;

  // Nodes with a live, authenticated connection.
  virtual std::vector<Atom> connected_nodes() const = 0;
  // Opens a connection if there is none; the handler of on_node_event learns
  // whether it succeeded.
  virtual void connect(Atom node) = 0;
  // Called on the node thread when a connection comes up or goes down.
  // Returns an id for remove_node_event_handler.
  virtual int on_node_event(NodeEventHandler handler) = 0;
  virtual void remove_node_event_handler(int id) = 0;

  virtual void log(LogLevel level, const std::string& message) = 0;
  virtual boost::asio::io_context& io() = 0;

  // While a mailbox handler runs: the node the message it handles came from
  // (this node for a local send), so that bad input can be logged with its
  // peer. std::nullopt outside a handler, or where the node does not track it.
  virtual std::optional<Atom> message_origin() const { return std::nullopt; }
};

// The cookie from, in order: explicit (a flag), ERLANG_COOKIE, ~/.erlang.cookie.
// Returns std::nullopt when none is set.
std::optional<std::string> find_cookie(const std::string& explicit_cookie);

}  // namespace presence
