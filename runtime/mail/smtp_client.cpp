// NAME
//   smtp_client -- the SMTP/LMTP client session (see smtp_client.hpp).
//
// DESCRIPTION
//   Every command sent appends the reply it awaits to a queue; every complete
//   reply read pops the queue and goes to the handler of that step. So
//   pipelining and lock-step differ only in when the next command is sent:
//   lock-step handlers send it on each reply, pipelined ones find it sent.
//   Until finished(), at least one reply is always awaited.
#include "runtime/mail/smtp_client.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace postconn {

struct smtp_client_session::server_reply {
  int code = 0;
  std::vector<std::string> lines;
};

namespace {

/// One reply line split: its code, whether it ends the reply, its text.
struct reply_line {
  int code = 0;
  bool last = true;
  std::string_view text;
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Parses "250-text", "250 text" or "250"; false when malformed.
bool parse_reply_line(std::string_view line, reply_line& parsed) {
  if (line.size() > max_reply_line_length || line.size() < 3
      || !std::all_of(line.begin(), line.begin() + 3, is_digit))
    return false;
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-')
    return false;
  parsed.code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  parsed.last = line.size() == 3 || line[3] == ' ';
  parsed.text = line.size() > 3 ? line.substr(4) : std::string_view{};
  return true;
}

/// Length of a run of 1 to `most` digits at the start of `text`, 0 if none.
std::size_t digits_at(std::string_view text, std::size_t most) {
  std::size_t n = 0;
  while (n < text.size() && n < most && is_digit(text[n]))
    ++n;
  return n;
}

/// The enhanced status ("5.1.1") that starts `text`, empty when none.
std::string_view leading_status(std::string_view text) {
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5')
      || text[1] != '.')
    return {};
  auto subject = digits_at(text.substr(2), 3);
  auto dot = 2 + subject;
  if (subject == 0 || dot >= text.size() || text[dot] != '.')
    return {};
  auto detail = digits_at(text.substr(dot + 1), 3);
  auto end = dot + 1 + detail;
  if (detail == 0 || (end < text.size() && text[end] != ' '))
    return {};
  return text.substr(0, end);
}

/// `line` without a leading `status` and the space after it.
std::string_view without_status(std::string_view line, std::string_view status) {
  if (status.empty() || line.substr(0, status.size()) != status)
    return line;
  line.remove_prefix(status.size());
  return line.empty() ? line : line.substr(1);
}

/// Control and 8-bit characters as '?': a reply text stays one printable line.
std::string printable(std::string text) {
  for (auto& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      c = '?';
  return text;
}

/// The reply on one line: "550 5.1.1 No such user here".
std::string one_line(int code, const std::vector<std::string>& lines) {
  auto status = leading_status(lines.front());
  std::string text = std::to_string(code);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto part = i == 0 ? std::string_view{lines[i]} : without_status(lines[i], status);
    if (!part.empty())
      text.append(" ").append(part);
  }
  return printable(std::move(text));
}

bool positive(int code) {
  return code / 100 == 2;
}

/// A recipient's result from a reply to the end of data.
recipient_result result_of(int code) {
  if (positive(code))
    return recipient_result::delivered;
  return code / 100 == 5 ? recipient_result::permanent_failure
                         : recipient_result::temporary_failure;
}

/// The EHLO keyword that starts `line`, upper-cased.
std::string keyword_of(std::string_view line) {
  std::string keyword{line.substr(0, line.find(' '))};
  for (auto& c : keyword)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return keyword;
}

/// The number after the keyword ("SIZE 10240000"), 0 when there is none.
std::uint64_t number_after_keyword(std::string_view line) {
  std::uint64_t n = 0;
  auto space = line.find(' ');
  if (space != line.npos)
    std::from_chars(line.data() + space + 1, line.data() + line.size(), n);
  return n;
}

/// The extensions in an EHLO reply; its first line is the greeting.
server_extensions extensions_of(const std::vector<std::string>& lines) {
  server_extensions offered;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto keyword = keyword_of(lines[i]);
    if (keyword == "PIPELINING")
      offered.pipelining = true;
    else if (keyword == "8BITMIME")
      offered.eight_bit_mime = true;
    else if (keyword == "ENHANCEDSTATUSCODES")
      offered.enhanced_status_codes = true;
    else if (keyword == "SIZE") {
      offered.size = true;
      offered.max_size = number_after_keyword(lines[i]);
    } else if (keyword == "STARTTLS")
      offered.starttls = true;
  }
  return offered;
}

bool ends_with_crlf(const std::string& content) {
  return content.size() >= 2 && content.compare(content.size() - 2, 2, "\r\n") == 0;
}

bool has_8bit(const std::string& content) {
  return std::any_of(content.begin(), content.end(),
                     [](char c) { return static_cast<unsigned char>(c) > 0x7f; });
}

/// Octets as RFC 1870 counts them: CRLFs in, stuffing dots out.
std::uint64_t message_size(const std::string& content) {
  return content.size() + (content.empty() || ends_with_crlf(content) ? 0 : 2);
}

/// The content as sent after the 354, terminator included.
std::string data_of(const std::string& content) {
  std::string data;
  data.reserve(content.size() + content.size() / 64 + 5);
  // A line at a time: the copy is memchr and memcpy, not a byte loop.
  for (std::string_view rest{content}; !rest.empty();) {
    if (rest.front() == '.')
      data += '.';
    auto line = std::min(rest.find('\n'), rest.size() - 1) + 1;
    data.append(rest.data(), line);
    rest.remove_prefix(line);
  }
  if (!content.empty() && !ends_with_crlf(content))
    data += "\r\n";
  return data += ".\r\n";
}

std::string mail_command(const outgoing_message& message,
                         const server_extensions& offered) {
  auto command = "MAIL FROM:<" + message.sender + ">";
  if (offered.size)
    command += " SIZE=" + std::to_string(message_size(message.content));
  if (offered.eight_bit_mime && has_8bit(message.content))
    command += " BODY=8BITMIME";
  return command;
}

/// A temporary failure that is not a server reply (lost connection, timeout).
recipient_outcome broken_session(std::string status, std::string text) {
  return {"", recipient_result::temporary_failure, std::move(status), std::move(text),
          false};
}

} // namespace

smtp_client_session::smtp_client_session(mail_protocol protocol, std::string helo_name,
                                         std::vector<outgoing_message> batch,
                                         tls_policy tls)
  : protocol_{protocol}, helo_name_{std::move(helo_name)}, tls_{tls} {
  set_batch(std::move(batch));
  awaited_.push_back(step::greeting);
}

smtp_client_session::smtp_client_session(mail_protocol protocol, std::string helo_name,
                                         tls_policy tls)
  : protocol_{protocol}, helo_name_{std::move(helo_name)}, tls_{tls}, batch_pending_{true} {
  awaited_.push_back(step::greeting);
}

void smtp_client_session::set_batch(std::vector<outgoing_message> batch) {
  batch_ = std::move(batch);
  for (const auto& message : batch_) {
    delivery_outcome outcome;
    outcome.delivery_id = message.delivery_id;
    outcome.opened = true;
    for (const auto& recipient : message.recipients)
      outcome.recipients.push_back({recipient, recipient_result::temporary_failure,
                                    "", "", false});
    outcomes_.push_back(std::move(outcome));
  }
}

const recipient_outcome& smtp_client_session::ended_early() const {
  return ended_early_;
}

bool smtp_client_session::ready_for_batch() const {
  return batch_pending_ && opened_ && !finished_ && awaited_.empty();
}

void smtp_client_session::send_batch(std::vector<outgoing_message> batch, after_batch then) {
  batch_pending_ = false;
  after_ = then;
  outcomes_.clear();
  current_ = 0;
  set_batch(std::move(batch));
  if (finished_) {
    current_ = 0;
    auto reason = ended_early_.text.empty()
                    ? broken_session("4.4.2", "session ended before the messages were sent")
                    : ended_early_;
    settle_unfinished(reason);
    return;
  }
  start_message();
}

void smtp_client_session::check_alive() {
  checking_ = true;
  send("RSET", step::rset);
}

std::string smtp_client_session::take_output() {
  return std::exchange(output_, std::string{});
}

void smtp_client_session::feed(std::string_view bytes) {
  if (finished_)
    return;
  input_.append(bytes);
  std::size_t read = 0;
  for (auto end = input_.find('\n'); !finished_ && !tls_wanted_ && end != input_.npos;
       end = input_.find('\n', read)) {
    std::string_view line{input_.data() + read, end - read};
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    read = end + 1;
    take_line(line);
  }
  input_.erase(0, read);
  if (!finished_ && !tls_wanted_ && input_.size() > max_reply_line_length + 1)
    take_line(input_);
}

void smtp_client_session::connection_lost() {
  if (!finished_)
    end_early(broken_session("4.4.2", "connection lost while waiting for the "
                                        + waiting_for()));
}

void smtp_client_session::timed_out() {
  if (!finished_)
    end_early(broken_session("4.4.2", "timeout waiting for the " + waiting_for()));
}

bool smtp_client_session::finished() const {
  return finished_;
}

bool smtp_client_session::tls_wanted() const {
  return tls_wanted_;
}

void smtp_client_session::tls_started() {
  tls_wanted_ = false;
  tls_active_ = true;
  // Nothing learnt in plaintext counts (RFC 3207 4.2): not what was
  // offered, nor bytes the server sent after its 220.
  extensions_ = {};
  input_.clear();
  send_hello();
}

void smtp_client_session::tls_failed(const std::string& why) {
  tls_wanted_ = false;
  end_early(broken_session("4.7.5", "TLS handshake failed: " + why));
}

bool smtp_client_session::opened() const {
  return opened_;
}

std::string smtp_client_session::waiting_for() const {
  if (ready_for_batch())
    return "messages of the batch";
  if (awaited_.empty())
    return "";
  switch (awaited_.front()) {
    case step::greeting:
      return "greeting";
    case step::hello:
      return protocol_ == mail_protocol::smtp ? "EHLO reply" : "LHLO reply";
    case step::starttls:
      return "STARTTLS reply";
    case step::helo:
      return "HELO reply";
    case step::mail:
      return "MAIL reply";
    case step::rcpt:
      return "RCPT reply";
    case step::data:
      return "DATA reply";
    case step::end_of_data:
      return "end-of-data reply";
    case step::rset:
      return "RSET reply";
    case step::quit:
      return "QUIT reply";
  }
  return "";
}

const server_extensions& smtp_client_session::extensions() const {
  return extensions_;
}

const std::vector<delivery_outcome>& smtp_client_session::outcomes() const {
  return outcomes_;
}

void smtp_client_session::take_line(std::string_view line) {
  reply_line parsed;
  if (!parse_reply_line(line, parsed)
      || (!reply_lines_.empty() && parsed.code != reply_code_)) {
    auto start = printable(std::string{line.substr(0, 80)});
    end_early(broken_session("4.5.0", "malformed reply while waiting for the "
                                        + waiting_for() + ": " + start));
    return;
  }
  reply_code_ = parsed.code;
  reply_lines_.emplace_back(parsed.text);
  if (!parsed.last)
    return;
  server_reply reply{parsed.code, std::exchange(reply_lines_, {})};
  if (awaited_.empty()) // a session waiting for its batch asked nothing
    return end_early(failure_of(reply));
  auto awaited = awaited_.front();
  awaited_.pop_front();
  on_reply(awaited, reply);
}

void smtp_client_session::on_reply(step awaited, const server_reply& reply) {
  if (reply.code == 421 && awaited != step::quit)
    return end_early(failure_of(reply));
  switch (awaited) {
    case step::greeting:
      if (!positive(reply.code))
        return open_failed(reply);
      return send_hello();
    case step::hello:
      return on_hello_reply(reply);
    case step::starttls:
      return on_starttls_reply(reply);
    case step::helo:
      return on_helo_reply(reply);
    case step::mail:
      return on_mail_reply(reply);
    case step::rcpt:
      return on_rcpt_reply(reply);
    case step::data:
      return on_data_reply(reply);
    case step::end_of_data:
      return on_end_of_data_reply(reply);
    case step::rset:
      return on_rset_reply(reply);
    case step::quit:
      finished_ = true;
      return;
  }
}

void smtp_client_session::send_hello() {
  send((protocol_ == mail_protocol::smtp ? "EHLO " : "LHLO ") + helo_name_, step::hello);
}

void smtp_client_session::on_hello_reply(const server_reply& reply) {
  if (reply.code / 100 == 5 && protocol_ == mail_protocol::smtp
      && tls_ != tls_policy::verify)
    return send("HELO " + helo_name_, step::helo);
  if (!positive(reply.code))
    return open_failed(reply);
  extensions_ = extensions_of(reply.lines);
  if (tls_ != tls_policy::none && !tls_active_) {
    if (extensions_.starttls)
      return send("STARTTLS", step::starttls);
    if (tls_ == tls_policy::verify) {
      settle_unfinished(broken_session("4.7.10", "TLS required (tls = \"verify\") but the "
                                                 "server does not offer STARTTLS"));
      return send("QUIT", step::quit);
    }
  }
  opened_now();
}

void smtp_client_session::on_starttls_reply(const server_reply& reply) {
  if (reply.code == 220) {
    tls_wanted_ = true;
    return;
  }
  if (tls_ == tls_policy::verify)
    return open_failed(reply);
  opened_now();
}

void smtp_client_session::opened_now() {
  opened_ = true;
  if (!batch_pending_)
    start_message();
}

void smtp_client_session::on_helo_reply(const server_reply& reply) {
  if (!positive(reply.code))
    return open_failed(reply);
  opened_now();
}

void smtp_client_session::on_mail_reply(const server_reply& reply) {
  if (positive(reply.code)) {
    if (!pipelining())
      send_rcpt(0);
    return;
  }
  transaction_.mail_refused = true;
  auto failure = failure_of(reply);
  for (std::size_t i = 0; i < transaction_.decided.size(); ++i)
    decide(i, failure);
  if (!pipelining())
    next_message(true);
}

void smtp_client_session::on_rcpt_reply(const server_reply& reply) {
  auto index = transaction_.rcpt_replies++;
  if (!transaction_.mail_refused) {
    if (positive(reply.code))
      transaction_.accepted.push_back(index);
    else
      decide(index, failure_of(reply));
  }
  if (pipelining())
    return;
  if (index + 1 < transaction_.decided.size())
    send_rcpt(index + 1);
  else if (transaction_.accepted.empty())
    next_message(true);
  else
    send("DATA", step::data);
}

void smtp_client_session::on_data_reply(const server_reply& reply) {
  if (reply.code / 100 == 3)
    return send_content();
  auto failure = failure_of(reply);
  for (auto index : transaction_.accepted)
    decide(index, failure);
  next_message(true);
}

void smtp_client_session::on_end_of_data_reply(const server_reply& reply) {
  const auto& accepted = transaction_.accepted;
  auto result = outcome_of(reply, result_of(reply.code));
  if (protocol_ == mail_protocol::lmtp && !accepted.empty()) {
    decide(accepted[transaction_.end_replies++], result);
    if (transaction_.end_replies < accepted.size())
      return;
  } else {
    for (auto index : accepted)
      decide(index, result);
  }
  next_message(false);
}

void smtp_client_session::on_rset_reply(const server_reply& reply) {
  if (std::exchange(checking_, false)) {
    if (!positive(reply.code))
      end_early(failure_of(reply));
    return;
  }
  if (positive(reply.code))
    return start_message();
  settle_unfinished(broken_session("4.5.0", "RSET refused: "
                                              + one_line(reply.code, reply.lines)));
  send("QUIT", step::quit);
}

void smtp_client_session::open_failed(const server_reply& reply) {
  settle_unfinished(failure_of(reply));
  send("QUIT", step::quit);
}

void smtp_client_session::start_message() {
  while (current_ < batch_.size() && batch_[current_].recipients.empty())
    ++current_;
  if (current_ == batch_.size()) {
    if (after_ == after_batch::stay_open) {
      batch_pending_ = true;
      return;
    }
    return send("QUIT", step::quit);
  }
  const auto& message = batch_[current_];
  transaction_ = transaction{};
  transaction_.decided.assign(message.recipients.size(), false);
  send(mail_command(message, extensions_), step::mail);
  if (!pipelining())
    return;
  for (std::size_t i = 0; i < message.recipients.size(); ++i)
    send_rcpt(i);
  send("DATA", step::data);
}

void smtp_client_session::next_message(bool reset) {
  transaction_ = transaction{};
  if (++current_ < batch_.size() && reset)
    send("RSET", step::rset);
  else
    start_message();
}

void smtp_client_session::send_rcpt(std::size_t index) {
  send("RCPT TO:<" + batch_[current_].recipients[index] + ">", step::rcpt);
}

void smtp_client_session::send_content() {
  const auto& accepted = transaction_.accepted;
  output_ += accepted.empty() ? ".\r\n" : data_of(batch_[current_].content);
  bool per_recipient = protocol_ == mail_protocol::lmtp && !accepted.empty();
  auto replies = per_recipient ? accepted.size() : 1;
  awaited_.insert(awaited_.end(), replies, step::end_of_data);
}

void smtp_client_session::send(std::string command, step awaited) {
  output_ += command;
  output_ += "\r\n";
  awaited_.push_back(awaited);
}

void smtp_client_session::decide(std::size_t recipient, recipient_outcome outcome) {
  auto& slot = outcomes_[current_].recipients[recipient];
  outcome.address = std::move(slot.address);
  slot = std::move(outcome);
  transaction_.decided[recipient] = true;
}

recipient_outcome smtp_client_session::outcome_of(const server_reply& reply,
                                                  recipient_result result) const {
  char digit = result == recipient_result::delivered           ? '2'
               : result == recipient_result::permanent_failure ? '5'
                                                               : '4';
  auto status = std::string{digit} + ".0.0";
  auto given = leading_status(reply.lines.front());
  if (!given.empty() && given[0] == digit)
    status = given;
  return {"", result, std::move(status), one_line(reply.code, reply.lines), true};
}

recipient_outcome smtp_client_session::failure_of(const server_reply& reply) const {
  return outcome_of(reply, reply.code / 100 == 5 ? recipient_result::permanent_failure
                                                 : recipient_result::temporary_failure);
}

void smtp_client_session::settle_unfinished(const recipient_outcome& reason) {
  if (ended_early_.text.empty())
    ended_early_ = reason;
  for (auto i = current_; i < batch_.size(); ++i) {
    auto& outcome = outcomes_[i];
    if (!opened_) {
      outcome = {outcome.delivery_id, false, reason.status, reason.text, {}};
      continue;
    }
    for (std::size_t r = 0; r < outcome.recipients.size(); ++r) {
      bool decided = i == current_ && r < transaction_.decided.size()
                     && transaction_.decided[r];
      if (!decided)
        outcome.recipients[r] = {outcome.recipients[r].address, reason.result,
                                 reason.status, reason.text, reason.text_is_reply};
    }
  }
  current_ = batch_.size();
  awaited_.clear();
}

void smtp_client_session::end_early(const recipient_outcome& reason) {
  settle_unfinished(reason);
  output_.clear();
  finished_ = true;
}

bool smtp_client_session::pipelining() const {
  return extensions_.pipelining;
}

} // namespace postconn
