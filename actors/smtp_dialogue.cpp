// NAME
//   smtp_dialogue -- the commands of an SMTP session, EHLO to QUIT, and the
//   end of DATA: the message committed before the 250 (see smtp_session.hpp).
#include "actors/smtp_session_steps.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "messages/unix_clock.hpp"
#include "runtime/mail/smtp_command.hpp"

namespace postconn {

namespace {

std::string lower_case(std::string_view text) {
  std::string lower{text};
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

void reset_transaction(smtp_session_state& st) {
  st.sender.reset();
  st.recipients.clear();
  st.data.reset();
}

/// RFC 5322 date of now, for the Received header.
std::string rfc5322_now() {
  std::time_t now = unix_time_origin::now().seconds;
  std::tm local{};
  localtime_r(&now, &local);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S %z", &local);
  return text;
}

std::string received_header(const smtp_session_state& st) {
  auto header = "Received: from " + st.helo + " ([" + st.client_ip + "])\r\n\tby "
                + st.settings->hostname + " (postconn) with "
                + (st.esmtp ? "ESMTP" : "SMTP") + (st.tls ? "S" : "");
  if (st.recipients.size() == 1)
    header += "\r\n\tfor <" + st.recipients.front().address + ">";
  return header + "; " + rfc5322_now() + "\r\n";
}

/// The envelope and content, one delivery per postoffice the recipients
/// route to.
incoming_message make_incoming(const smtp_session_state& st, std::string content) {
  incoming_message msg;
  msg.sender = *st.sender;
  msg.content = received_header(st) + content;
  msg.received_at = unix_time_origin::now().seconds;
  std::map<std::string, std::vector<std::string>> by_postoffice;
  for (const auto& rcpt : st.recipients)
    by_postoffice[rcpt.postoffice].push_back(rcpt.address);
  for (auto& [postoffice, recipients] : by_postoffice)
    msg.deliveries.push_back({postoffice, std::move(recipients)});
  return msg;
}

} // namespace

void finish_data(session_ptr self) {
  auto& st = self->state;
  auto decoder = std::move(*st.data);
  st.data.reset();
  if (decoder.rejection()) {
    spdlog::info("smtp {}: message from <{}> refused: {} {}", st.client_ip,
                 *st.sender, decoder.rejection()->code, decoder.rejection()->text);
    reply(self, *decoder.rejection());
    reset_transaction(st);
    return;
  }
  auto msg = make_incoming(st, decoder.take_content());
  auto size = msg.content.size();
  auto recipients = st.recipients.size();
  st.awaiting_store = true;
  // No request timeout: the session waits for the store's answer even
  // after its client has gone, to log what was queued (a slow store is
  // answered by the DATA deadline instead); the store itself tells the
  // supervisor of the new deliveries.
  self->request(st.store, caf::infinite, accept_atom::value, std::move(msg))
    .then(
      [=](accept_receipt& receipt) {
        auto& st = self->state;
        st.awaiting_store = false;
        if (st.closing) {
          spdlog::warn("smtp {}: queued as {} from=<{}> after the client left or was "
                       "told 451; it will be delivered",
                       st.client_ip, receipt.id, *st.sender);
          return self->quit();
        }
        spdlog::info("smtp {}: queued as {} from=<{}> recipients={} size={}",
                     st.client_ip, receipt.id, *st.sender, recipients, size);
        reply(self, 250, "2.0.0", "Ok: queued as " + receipt.id);
        reset_transaction(st);
        process_input(self);
      },
      [=](const caf::error& err) {
        auto& st = self->state;
        st.awaiting_store = false;
        spdlog::error("smtp {}: message from <{}> not queued: {}", st.client_ip,
                      *st.sender, self->system().render(err));
        if (st.closing)
          return self->quit();
        if (is_store_error(err, store_errc::low_space))
          reply(self, 452, "4.3.1", "Insufficient system storage, try again later");
        else if (is_store_error(err, store_errc::no_replica))
          reply(self, 451, "4.3.0", "Temporary failure: no second node to hold a replica, "
                                    "try again later");
        else
          reply(self, 451, "4.3.0", "Temporary failure: queue not available, try again later");
        reset_transaction(st);
        process_input(self);
      });
}

namespace {

void on_ehlo(session_ptr self, const smtp_command& cmd) {
  auto& st = self->state;
  if (cmd.argument.empty())
    return reply(self, 501, "5.5.4", "Syntax: EHLO hostname");
  reset_transaction(st);
  st.helo = cmd.argument;
  st.esmtp = cmd.verb == smtp_verb::ehlo;
  if (!st.esmtp)
    return reply(self, 250, "", st.settings->hostname);
  // RFC 2034: the EHLO response carries no enhanced status codes.
  std::vector<std::string> lines{st.settings->hostname, "PIPELINING",
                                 "SIZE " + std::to_string(st.settings->max_message_size),
                                 "8BITMIME", "ENHANCEDSTATUSCODES"};
  if (st.settings->tls && !st.tls)
    lines.push_back("STARTTLS");
  send_text(self, format_reply(250, "", lines));
}

/// RFC 3207: 220, then the handshake; the session starts over inside TLS.
void on_starttls(session_ptr self) {
  auto& st = self->state;
  if (!st.settings->tls)
    return reply(self, 502, "5.5.1", "Command not implemented");
  if (st.tls)
    return reply(self, 503, "5.5.1", "Error: TLS already active");
  if (st.sender)
    return reply(self, 503, "5.5.1", "Error: MAIL transaction in progress");
  reply(self, 220, "2.0.0", "Ready to start TLS");
  st.tls = std::make_unique<tls_channel>(*st.settings->tls);
  st.discard_input = true;
  st.helo.clear();
  st.esmtp = false;
}

void on_mail(session_ptr self, const smtp_command& cmd) {
  auto& st = self->state;
  if (st.helo.empty())
    return reply(self, 503, "5.5.1", "Error: send HELO/EHLO first");
  if (st.sender)
    return reply(self, 503, "5.5.1", "Error: nested MAIL command");
  if (cmd.size && *cmd.size > st.settings->max_message_size)
    return reply(self, 552, "5.3.4", "Message size exceeds fixed limit");
  if (st.backlogged)
    return reply(self, 452, "4.3.1", "Insufficient system storage, try again later");
  st.sender = cmd.path;
  reply(self, 250, "2.1.0", "Ok");
}

void on_rcpt(session_ptr self, const smtp_command& cmd) {
  auto& st = self->state;
  if (!st.sender)
    return reply(self, 503, "5.5.1", "Error: need MAIL command");
  if (st.recipients.size() >= st.settings->max_recipients)
    return reply(self, 452, "4.5.3", "Error: too many recipients");
  auto route = st.settings->routes.route(cmd.path);
  if (!route.postoffice)
    return reply(self, route.error);
  if (route.by_default && !st.relay_client)
    return reply(self, 554, "5.7.1", "Relay access denied for <" + cmd.path + ">");
  if (st.fenced)
    return reply(self, 452, "4.3.0", "Cannot take mail for <" + cmd.path
                                       + "> now: this node lost its cluster membership, "
                                         "try again later");
  st.recipients.push_back({cmd.path, route.postoffice_name});
  reply(self, 250, "2.1.5", "Ok");
}

void on_data(session_ptr self, const smtp_command& cmd) {
  auto& st = self->state;
  if (!cmd.argument.empty())
    return reply(self, 501, "5.5.4", "Syntax: DATA");
  if (!st.sender)
    return reply(self, 503, "5.5.1", "Error: need MAIL command");
  if (st.recipients.empty())
    return reply(self, 554, "5.5.1", "Error: no valid recipients");
  st.data.emplace(st.settings->max_message_size);
  st.data_started = self->clock().now();
  reply(self, 354, "", "End data with <CR><LF>.<CR><LF>");
}

} // namespace


void on_command(session_ptr self, std::string_view line) {
  auto& st = self->state;
  auto parsed = parse_smtp_command(line);
  // Counted by its verb even when its argument is refused ("RCPT TO:<..>"
  // with a bad address is a rcpt), as Postfix counts; "unknown" otherwise.
  auto verb = smtp_verb_named(line.substr(0, std::min(line.find(' '), line.size())));
  st.command = verb ? std::string{to_string(*verb)} : "unknown";
  st.command_path = parsed.command ? parsed.command->path : std::string{};
  ++st.commands[lower_case(st.command)];
  if (!parsed.command)
    return reply(self, parsed.error);
  const auto& cmd = *parsed.command;
  switch (cmd.verb) {
    case smtp_verb::ehlo:
    case smtp_verb::helo:
      return on_ehlo(self, cmd);
    case smtp_verb::mail:
      return on_mail(self, cmd);
    case smtp_verb::rcpt:
      return on_rcpt(self, cmd);
    case smtp_verb::data:
      return on_data(self, cmd);
    case smtp_verb::rset:
      reset_transaction(self->state);
      return reply(self, 250, "2.0.0", "Ok");
    case smtp_verb::noop:
      return reply(self, 250, "2.0.0", "Ok");
    case smtp_verb::starttls:
      return on_starttls(self);
    case smtp_verb::vrfy:
      return reply(self, 252, "2.5.0", "Cannot VRFY user, but will accept message");
    case smtp_verb::quit:
      reply(self, 221, "2.0.0", "Bye");
      return close_session(self);
  }
}

} // namespace postconn
