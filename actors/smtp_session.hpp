// NAME
//   smtp_session -- one SMTP connection: RFC 5321 dialogue and durable
//   acceptance.
//
// DESCRIPTION
//   A broker forked by the SMTP listener for each connection. It parses
//   pipelined commands from its input buffer, streams DATA through the
//   decoder (bounded memory, no smuggling), and sends the finished message
//   to the store. The "250 queued as" reply goes out only when the store has
//   committed the message and its deliveries; a failed commit is answered
//   with 451 4.3.0, and so is a commit still unanswered at the DATA
//   deadline (smtp.data_timeout), with the connection closed. The session
//   waits for the store's answer in any case, even after its client has
//   gone, to log what was queued (the store tells the supervisor of the new
//   deliveries). While the store works, further pipelined input waits in
//   the buffer. A client silent for smtp.idle_timeout, taking longer than
//   that for one command line, or longer than smtp.data_timeout for the
//   whole DATA phase gets 421 4.4.2 and is disconnected (slow clients cannot
//   hold a connection slot forever); at shutdown an open session says 421
//   4.3.2. STARTTLS (RFC 3207) is offered when smtp.tls_certificate and
//   smtp.tls_key are set: input pipelined after it is discarded, and the
//   session starts over (a new EHLO) inside TLS. While the queue is over its high-water mark (the listener passes
//   on `(backlog_atom, true)`), MAIL FROM is answered 452 4.3.1; while the
//   node cannot prove it holds its etcd lease (the listener passes on
//   `(expire_atom, true)`), it owns no postoffice and RCPT TO is answered
//   452 4.3.0.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/io/typed_broker.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/actors.hpp"
#include "runtime/mail/network_list.hpp"
#include "runtime/config/routing.hpp"
#include "runtime/mail/smtp_data.hpp"
#include "runtime/mail/tls_channel.hpp"

namespace postconn {

/// What every session needs from the config, built once and shared
/// read-only by all sessions.
struct smtp_settings {
  std::string hostname;
  std::uint64_t max_message_size = 0;
  std::uint32_t max_recipients = 0;
  std::chrono::seconds idle_timeout{300};
  std::chrono::seconds data_timeout{600};
  std::uint32_t max_connections = 0;
  std::uint32_t max_connections_per_client = 0;
  routing_table routes;
  network_list relay_networks;
  /// Certificate and key for STARTTLS; null: STARTTLS is not offered.
  std::shared_ptr<const tls_server_context> tls;
  /// Replies go straight to the socket with one send(2) while none wait in
  /// CAF's write buffer, instead of through CAF's write path (which asks
  /// epoll for writability, sends from its loop, and asks epoll again: two
  /// epoll_ctl and a loop round per reply). Only with CAF 0.17's default
  /// multiplexer, whose connection handle is the socket's descriptor; the
  /// tests' multiplexer has handles that are not.
  bool socket_writes = false;
};

/// How replies reach the client's socket (smtp_settings::socket_writes).
enum class reply_writes { through_caf, to_socket };

/// Builds the settings from a validated config; loads the TLS certificate
/// and key (std::runtime_error naming the config key when one is unusable).
std::shared_ptr<const smtp_settings> make_smtp_settings(const config& cfg,
                                                        reply_writes writes
                                                        = reply_writes::through_caf);

/// One accepted recipient of the open transaction.
struct accepted_recipient {
  std::string address;
  std::string postoffice;
};

struct smtp_session_state {
  /// The client's connection.
  caf::io::connection_handle connection;
  /// The client's IP address, as the socket reports it.
  std::string client_ip;
  /// May this client send to domains only the default postoffice takes?
  bool relay_client = false;
  /// HELO/EHLO argument; empty until the client greeted.
  std::string helo;
  bool esmtp = false;
  /// After STARTTLS: everything to and from the client passes through it.
  std::unique_ptr<tls_channel> tls;
  /// MAIL FROM of the open transaction, if one is open ("" is <>).
  std::optional<std::string> sender;
  std::vector<accepted_recipient> recipients;
  /// Present while DATA is being received.
  std::optional<smtp_data_decoder> data;
  /// Received bytes not processed yet.
  std::string input;
  /// STARTTLS was answered: what the client pipelined after it is dropped,
  /// never taken as commands.
  bool discard_input = false;
  /// An over-long command line is being skipped up to its LF.
  bool skipping_long_line = false;
  /// The store is committing this session's message; input waits.
  bool awaiting_store = false;
  /// Replies written but not yet taken by the client's socket.
  std::uint64_t unsent_output = 0;
  /// Too much input waits, or the client does not read its replies: the
  /// socket is not read (TCP holds the rest).
  bool reading_paused = false;
  /// QUIT or a fatal error: no more input is processed.
  bool closing = false;
  /// When the client last sent something.
  caf::actor_clock::time_point last_activity;
  /// When the unfinished command line in `input` began (a client trickling
  /// one line byte by byte is never idle).
  std::optional<caf::actor_clock::time_point> line_started;
  /// When DATA began (the 354).
  caf::actor_clock::time_point data_started;
  /// The queue is above smtp.queue_high_water: MAIL FROM gets 452 4.3.1.
  bool backlogged = false;
  /// This node cannot prove it holds its etcd lease, so it owns no
  /// postoffice: RCPT TO gets 452 4.3.0.
  bool fenced = false;
  std::shared_ptr<const smtp_settings> settings;
  /// Commits accepted mail: the store, or the cluster actor (cluster.replicas).
  acceptor_actor store;
  /// Commands by verb ("ehlo", "mail", ...; "unknown": a line that is no
  /// command), for the disconnect line.
  std::map<std::string, int> commands;
  /// The command being answered ("RCPT") and its path, for a reject line.
  std::string command;
  std::string command_path;

  smtp_session_state() = default;
  smtp_session_state(const smtp_session_state&) = delete;
  smtp_session_state& operator=(const smtp_session_state&) = delete;
  /// Logs "disconnect: client=..., ehlo=1, mail=1, ..., commands=N": the
  /// state ends with the session, whichever way it closed.
  ~smtp_session_state();

  static inline const char* name = "smtp_session";
};

/// The broker class that runs a typed broker interface (CAF 0.17 names one
/// for typed event-based actors only, `Interface::pointer`).
template <class Interface>
struct typed_broker_for;

template <class... Signatures>
struct typed_broker_for<caf::typed_actor<Signatures...>> {
  using type = caf::io::typed_broker<Signatures...>;
};

using smtp_session_pointer =
  caf::stateful_actor<smtp_session_state, typed_broker_for<smtp_session_broker>::type>*;

smtp_session_broker::behavior_type smtp_session(smtp_session_pointer self,
                                                caf::io::connection_handle connection,
                                                std::shared_ptr<const smtp_settings> settings,
                                                acceptor_actor store, bool backlogged);

/// A connection over a connection limit: answers 421 4.7.0 `why` and closes.
smtp_refusal_broker::behavior_type
smtp_refusal(typed_broker_for<smtp_refusal_broker>::type* self,
             caf::io::connection_handle connection, std::string why);

} // namespace postconn
