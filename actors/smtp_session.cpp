// NAME
//   smtp_session -- one SMTP connection (see smtp_session.hpp).
#include "actors/smtp_session_steps.hpp"

#include <sys/socket.h>

#include <ctime>
#include <map>
#include <stdexcept>
#include <utility>

#include <caf/io/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "runtime/log/log_event.hpp"

#include "runtime/mail/smtp_command.hpp"

namespace postconn {

void write_raw(session_ptr self, const std::string& bytes) {
  auto& st = self->state;
  std::size_t sent = 0;
  if (st.settings->socket_writes && st.unsent_output == 0 && !bytes.empty()) {
    // A failure (EAGAIN, a reset) leaves the bytes to CAF, which waits for
    // the socket or reports the connection closed.
    auto n = ::send(static_cast<int>(st.connection.id()), bytes.data(), bytes.size(),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0)
      sent = static_cast<std::size_t>(n);
  }
  if (sent == bytes.size())
    return;
  self->write(st.connection, bytes.size() - sent, bytes.data() + sent);
  self->flush(st.connection);
  st.unsent_output += bytes.size() - sent;
}

void send_text(session_ptr self, const std::string& text) {
  auto& tls = self->state.tls;
  if (!tls)
    return write_raw(self, text);
  tls->send(text);
  write_raw(self, tls->take_output());
}

void reply(session_ptr self, int code, const char* status, const std::string& text) {
  reply(self, smtp_reply{code, status, text});
}

/// A refusal (4xx, 5xx) gets a "reject:" line with the client, the command
/// and the envelope so far, as Postfix logs one.
void reply(session_ptr self, const smtp_reply& r) {
  auto line = format_reply(r);
  if (r.code >= 400) {
    const auto& st = self->state;
    auto text = line.substr(0, line.find_last_not_of("\r\n") + 1);
    log_fields fields{{"client", st.client_ip}, {"command", st.command}};
    if (st.sender)
      fields.emplace_back("from", *st.sender);
    if (st.command == "RCPT" && !st.command_path.empty())
      fields.emplace_back("to", st.command_path);
    fields.emplace_back("helo", st.helo);
    fields.emplace_back("reply", text);
    log_event(spdlog::level::info, {"smtp", "reject"}, fields);
  }
  send_text(self, line);
}

smtp_session_state::~smtp_session_state() {
  if (client_ip.empty())
    return;
  log_fields fields{{"client", client_ip}};
  int total = 0;
  for (const auto& [verb, count] : commands) {
    fields.emplace_back(verb, count);
    total += count;
  }
  fields.emplace_back("commands", total);
  log_event(spdlog::level::info, {"smtp", "disconnect"}, fields);
}

/// Ends the session after the reply already written.
void close_session(session_ptr self) {
  self->state.closing = true;
  self->close(self->state.connection);
  self->quit();
}

namespace {

/// Input kept while it cannot be handled (the store is committing): more
/// than pipelining ever needs. Beyond it the socket is not read, so a
/// client cannot fill the server's memory.
constexpr std::size_t max_waiting_input = 256 * 1024;

/// Replies not yet taken by a client that pipelines commands without
/// reading the answers; beyond it the socket is not read either.
constexpr std::uint64_t max_unsent_output = 256 * 1024;

/// Decrypts what came from the client into the input buffer; false when the
/// session ended (a TLS failure, or the client closed TLS).
bool receive_tls(session_ptr self, std::string_view bytes) {
  auto& st = self->state;
  auto was_done = st.tls->handshake_done();
  try {
    st.input += st.tls->receive(bytes);
    write_raw(self, st.tls->take_output());
  } catch (const tls_error& e) {
    spdlog::info("smtp {}: TLS failed, disconnected: {}", st.client_ip, e.what());
    write_raw(self, st.tls->take_output()); // the alert, if any
    close_session(self);
    return false;
  }
  if (!was_done && st.tls->handshake_done())
    spdlog::info("smtp {}: TLS started, {}", st.client_ip, st.tls->description());
  if (st.tls->closed() && st.input.empty()) {
    close_session(self);
    return false;
  }
  return true;
}

/// Stops reading the socket while too much input waits, and reads again
/// once it is handled.
void pace_reading(session_ptr self) {
  auto& st = self->state;
  if (st.closing)
    return;
  auto too_much_input = st.input.size() > max_waiting_input;
  auto too_much_output = st.unsent_output > max_unsent_output;
  if (!st.reading_paused && (too_much_input || too_much_output)) {
    if (too_much_input)
      spdlog::info("smtp {}: {} bytes waiting, reading paused", st.client_ip,
                   st.input.size());
    else
      spdlog::info("smtp {}: {} bytes of replies not taken, reading paused",
                   st.client_ip, st.unsent_output);
    self->halt(st.connection);
    st.reading_paused = true;
  } else if (st.reading_paused && !too_much_input && !too_much_output) {
    self->trigger(st.connection);
    st.reading_paused = false;
  }
}

void handle_input(session_ptr self);

} // namespace

/// Handles the buffered input, then paces reading by what is left.
void process_input(session_ptr self) {
  handle_input(self);
  pace_reading(self);
}

/// Handles every complete command line and DATA chunk in the buffer, in
/// order, until the buffer is empty or the session must wait for the store.
namespace {

void handle_input(session_ptr self) {
  auto& st = self->state;
  while (!st.closing && !st.awaiting_store && !st.input.empty()) {
    if (st.data) {
      auto used = st.data->feed(st.input);
      st.input.erase(0, used);
      if (!st.data->finished())
        return;
      finish_data(self);
      continue;
    }
    auto lf = st.input.find('\n');
    if (st.skipping_long_line) {
      st.input.erase(0, lf == std::string::npos ? st.input.size() : lf + 1);
      st.skipping_long_line = lf == std::string::npos;
      continue;
    }
    if (lf == std::string::npos) {
      if (st.input.size() > max_command_line_length + 2) {
        reply(self, 500, "5.5.2", "Error: line too long");
        st.input.clear();
        st.skipping_long_line = true;
      }
      return;
    }
    auto length = lf > 0 && st.input[lf - 1] == '\r' ? lf - 1 : lf;
    if (length > max_command_line_length) {
      reply(self, 500, "5.5.2", "Error: line too long");
    } else {
      on_command(self, std::string_view{st.input}.substr(0, length));
    }
    st.input.erase(0, lf + 1);
    st.line_started.reset(); // what is left begins a new line
    if (st.discard_input) {
      // Plaintext sent before the handshake must not count as sent inside
      // TLS (the STARTTLS command injection of CVE-2011-0411).
      if (!st.input.empty())
        spdlog::warn("smtp {}: {} bytes pipelined after STARTTLS dropped", st.client_ip,
                     st.input.size());
      st.input.clear();
      st.discard_input = false;
    }
  }
}

/// The first moment the client runs out of time, and what it ran out of.
struct session_deadline {
  caf::actor_clock::time_point at;
  std::string what;
};

session_deadline next_deadline(const smtp_session_state& st) {
  session_deadline next{st.last_activity + st.settings->idle_timeout,
                        "silent for " + std::to_string(st.settings->idle_timeout.count())
                          + "s"};
  if (st.data && st.data_started + st.settings->data_timeout < next.at)
    next = {st.data_started + st.settings->data_timeout, "DATA not finished in time"};
  if (!st.data && st.line_started && *st.line_started + st.settings->idle_timeout < next.at)
    next = {*st.line_started + st.settings->idle_timeout, "command line not finished in time"};
  return next;
}

} // namespace

std::shared_ptr<const smtp_settings> make_smtp_settings(const config& cfg,
                                                        reply_writes writes) {
  auto relay = network_list::parse(cfg.smtp.relay_networks);
  if (!relay.value)
    throw std::runtime_error(relay.problems.front());
  std::shared_ptr<tls_server_context> tls;
  if (!cfg.smtp.tls_certificate.empty()) {
    tls = std::make_shared<tls_server_context>();
    auto load = [](const char* key, auto&& use) {
      try {
        use();
      } catch (const tls_error& e) {
        throw std::runtime_error(std::string{key} + ": " + e.what());
      }
    };
    load("smtp.tls_certificate", [&] { tls->use_certificate_chain(cfg.smtp.tls_certificate); });
    load("smtp.tls_key", [&] { tls->use_private_key(cfg.smtp.tls_key); });
  }
  return std::make_shared<const smtp_settings>(smtp_settings{
    cfg.server.hostname, cfg.smtp.max_message_size, cfg.smtp.max_recipients,
    cfg.smtp.idle_timeout, cfg.smtp.data_timeout, cfg.smtp.max_connections,
    cfg.smtp.max_connections_per_client, routing_table{cfg}, std::move(*relay.value), std::move(tls),
    writes == reply_writes::to_socket});
}

smtp_refusal_broker::behavior_type
smtp_refusal(typed_broker_for<smtp_refusal_broker>::type* self,
             caf::io::connection_handle connection, std::string why) {
  auto line = format_reply(smtp_reply{421, "4.7.0", std::move(why)});
  self->write(connection, line.size(), line.data());
  self->flush(connection);
  self->close(connection);
  self->quit();
  // Done before the connection could say anything: nothing to handle.
  return smtp_refusal_broker::behavior_type::make_empty_behavior();
}

smtp_session_broker::behavior_type smtp_session(session_ptr self,
                                                caf::io::connection_handle connection,
                                                std::shared_ptr<const smtp_settings> settings,
                                                acceptor_actor store, bool backlogged) {
  auto& st = self->state;
  st.backlogged = backlogged;
  st.connection = connection;
  st.client_ip = self->remote_addr(connection);
  st.relay_client = settings->relay_networks.contains(st.client_ip);
  st.settings = std::move(settings);
  st.store = std::move(store);
  st.last_activity = self->clock().now();
  log_event(spdlog::level::info, {"smtp", "connect"}, {{"client", st.client_ip}});
  self->configure_read(connection, caf::io::receive_policy::at_most(read_size));
  self->ack_writes(connection, true);
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    if (!self->state.closing) {
      reply(self, 421, "4.3.2", self->state.settings->hostname
                                  + " Service shutting down, try again later");
      self->state.closing = true;
      self->close(self->state.connection);
    }
    self->quit(msg.reason);
  });
  reply(self, 220, "", st.settings->hostname + " ESMTP postconn");
  return {
    [=](const caf::io::new_data_msg& msg) {
      auto& st = self->state;
      st.last_activity = self->clock().now();
      if (!st.tls)
        st.input.append(msg.buf.begin(), msg.buf.end());
      else if (!receive_tls(self, std::string_view{msg.buf.data(), msg.buf.size()}))
        return;
      process_input(self);
      if (st.input.empty() || st.data)
        st.line_started.reset();
      else if (!st.line_started)
        st.line_started = st.last_activity;
    },
    [=](idle_atom) {
      auto& st = self->state;
      if (st.closing)
        return;
      if (st.awaiting_store) {
        if (self->clock().now() < st.data_started + st.settings->data_timeout)
          return;
        // The answer is still awaited after the client is told (see
        // finish_data); the session ends with it.
        spdlog::warn("smtp {}: the queue did not answer within data_timeout: 451, closed",
                     st.client_ip);
        reply(self, 451, "4.3.0", "Temporary failure: queue not available, try again later");
        st.closing = true;
        self->close(st.connection);
        return;
      }
      auto deadline = next_deadline(st);
      if (self->clock().now() < deadline.at)
        return;
      spdlog::info("smtp {}: {}, disconnected", st.client_ip, deadline.what);
      reply(self, 421, "4.4.2", st.settings->hostname + " Error: timeout exceeded");
      close_session(self);
    },
    [=](const caf::io::data_transferred_msg& msg) {
      self->state.unsent_output = msg.remaining;
      pace_reading(self);
    },
    [=](backlog_atom, bool backlogged) {
      self->state.backlogged = backlogged;
    },
    [=](expire_atom, bool fenced) {
      self->state.fenced = fenced;
    },
    [=](const caf::io::connection_closed_msg&) {
      self->state.closing = true;
      if (!self->state.awaiting_store) // else it ends with the store's answer
        self->quit();
    },
  };
}

} // namespace postconn
