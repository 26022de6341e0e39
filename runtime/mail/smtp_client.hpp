// NAME
//   smtp_client -- the client side of the smtp and lmtp postoffice transports:
//   one session over one connection, bytes in, bytes out, one delivery outcome
//   per message. No I/O, no timers.
//
// DESCRIPTION
//   The caller connects, then loops: send take_output(), feed() what arrives,
//   until finished(), then closes. It reports a closed or failed connection
//   with connection_lost() and its own timeout with timed_out(); waiting_for()
//   names the step for its log ("EHLO reply").
//
//   Open: the greeting, then EHLO (smtp) or LHLO (lmtp); a 5xx to EHLO falls
//   back to HELO (smtp only). A greeting or EHLO/LHLO/HELO reply that is not
//   2xx is an open failure: every message gets opened = false with that
//   reply's status and text, and the session sends QUIT.
//
//   STARTTLS (RFC 3207), by the session's tls_policy: with `may` or `verify`
//   and STARTTLS offered in the EHLO/LHLO reply, the session sends STARTTLS;
//   after its 220 tls_wanted() is true and the caller runs the handshake,
//   then calls tls_started() (the session sends EHLO/LHLO again and forgets
//   what was offered before) or tls_failed() (every message fails to open
//   with 4.7.5 "TLS handshake failed: <why>"; nothing more is sent). Bytes
//   the server sent after its 220 are dropped. With `verify`, a server that
//   offers no STARTTLS fails the open with 4.7.10, and one that refuses
//   STARTTLS (or EHLO: no HELO fallback) with its reply; with `may` the
//   session goes on in plaintext then.
//
//   Transfer, per message of the batch over the same connection:
//     MAIL FROM:<sender> [SIZE=n] [BODY=8BITMIME]   SIZE= when the server
//       offers SIZE; BODY=8BITMIME when it offers 8BITMIME and the content has
//       8-bit bytes (without the offer such content is sent as it is)
//     RCPT TO:<recipient> for each recipient
//     DATA, the content dot-stuffed and ended with CRLF, then ".\r\n"
//   With PIPELINING offered, MAIL, every RCPT and DATA go in one write and the
//   replies are read in order; otherwise one command per reply. The content
//   is sent only after a 354. A refused MAIL applies to every recipient; a
//   refused RCPT to that recipient; a refused DATA to the recipients accepted
//   at RCPT. No accepted recipient: no content (pipelined: DATA gets its
//   503/554). The end of data gets one reply for the message (smtp) or one
//   per accepted recipient in RCPT order (lmtp, RFC 2033 4.2). A transaction
//   that ended before the content is followed by RSET when another message
//   comes; after the last message the session sends QUIT and waits for its
//   reply. A message without recipients is skipped (opened, no results).
//
//   A session may stay open after its batch for another one (a connection
//   kept for reuse, as Postfix's connection cache does): sent with
//   after_batch::stay_open, it waits again once every message has its
//   result (ready_for_batch()). Before the next batch, check_alive() sends
//   RSET: a 250 makes it ready again; a refusal, a 421 or a lost connection
//   ends it without a batch to fail (the caller opens a new connection).
//   Each batch has its own outcomes().
//
//   A recipient's result: delivered (2xx at the end of data), permanent
//   failure (5xx) or temporary failure (anything else). Its text is the
//   reply on one line ("550 5.1.1 No such user here"; continuation lines
//   joined with spaces, their repeated status dropped, control and 8-bit
//   characters as '?'), text_is_reply set. Its status is the enhanced
//   status the reply starts with when its class matches the result, whether
//   or not the server offered ENHANCEDSTATUSCODES (as Postfix reads it:
//   servers such as aiosmtpd send codes without offering them), else
//   "2.0.0", "4.0.0" or "5.0.0" (deliberately no guessing from the reply
//   code: a 550 to RCPT is as often a policy refusal as an unknown user).
//
//   The session ends early, and every recipient without a result yet gets
//   a temporary failure (or every message the open failure, before the open
//   completed), when:
//     the connection is lost     4.4.2 "connection lost while waiting for the
//                                RCPT reply"
//     the caller's timeout       4.4.2 "timeout waiting for the DATA reply"
//     a malformed reply          4.5.0 "malformed reply while waiting for the
//                                MAIL reply: <start of the line>"
//     a 421 to any command       the 421 reply (the server is closing)
//     RSET refused               4.5.0 "RSET refused: <reply>", then QUIT
//   Recipients that already have a result keep it (an LMTP recipient
//   delivered before the loss stays delivered). A reply line is malformed
//   when it does not start with three digits followed by ' ', '-' or its
//   end, is longer than 2048 octets, or changes the code of a multi-line
//   reply. Lines end at LF; a CR before it is dropped.
//
//   Senders and recipients are sent as given: they must be valid addresses
//   (address.hpp), empty sender for <>. Content is expected with CRLF line
//   endings; every line starting with '.' gets another one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "messages/vocabulary.hpp"

namespace postconn {

/// Longest reply line the client reads, CRLF not included.
constexpr std::size_t max_reply_line_length = 2048;

enum class mail_protocol { smtp, lmtp };

/// One delivery to transfer: one message for its recipients at this postoffice.
/// One message to send (messages/vocabulary.hpp's outgoing_mail).
using outgoing_message = outgoing_mail;

/// What the server offered in its EHLO/LHLO reply (nothing after HELO).
struct server_extensions {
  bool pipelining = false;
  bool eight_bit_mime = false;
  bool enhanced_status_codes = false;
  bool size = false;
  /// The SIZE limit in octets, 0 when none was stated.
  std::uint64_t max_size = 0;
  bool starttls = false;
};

class smtp_client_session {
public:
  /// `helo_name`: our host name for EHLO/LHLO/HELO.
  smtp_client_session(mail_protocol protocol, std::string helo_name,
                      std::vector<outgoing_message> batch,
                      tls_policy tls = tls_policy::none);

  /// A session whose batch comes once it is open: after the greeting and
  /// EHLO/LHLO it waits (ready_for_batch()) until send_batch().
  smtp_client_session(mail_protocol protocol, std::string helo_name, tls_policy tls);

  /// What the session does once every message of a batch has its result.
  enum class after_batch { quit, stay_open };

  /// Open and waiting for its batch: nothing to send, nothing awaited.
  bool ready_for_batch() const;

  /// Why the session ended or failed early (the open's refusal, a lost
  /// connection, ...): its status and text; empty text when it did not.
  const recipient_outcome& ended_early() const;

  /// The batch of a session that waited for it; an empty one ends it (QUIT)
  /// unless `then` is stay_open. A session that ended meanwhile (connection
  /// lost, timeout) fails every recipient with that reason.
  void send_batch(std::vector<outgoing_message> batch, after_batch then = after_batch::quit);

  /// A session ready for a batch after an earlier one: sends RSET, to learn
  /// that the server still holds the connection (see the top of the file).
  void check_alive();

  /// The bytes to send now, moved out; empty when there are none.
  std::string take_output();

  /// Reads bytes received from the server, split anywhere.
  void feed(std::string_view bytes);

  /// The server closed the connection, or it failed.
  void connection_lost();

  /// The caller's timeout for the current step expired.
  void timed_out();

  /// True once QUIT is answered or the session ended early: close then.
  bool finished() const;

  /// The server said 220 to STARTTLS: run the TLS handshake now.
  bool tls_wanted() const;
  /// The handshake succeeded: from here on bytes go through TLS.
  void tls_started();
  /// The handshake failed for `why`: the session ends.
  void tls_failed(const std::string& why);

  /// True once the greeting and EHLO/LHLO (or HELO) succeeded.
  bool opened() const;

  /// The reply waited for ("greeting", "EHLO reply", "RCPT reply", "DATA
  /// reply", "end-of-data reply", ...), "messages of the batch" while ready
  /// for it; empty once finished().
  std::string waiting_for() const;

  /// What the server offered (valid once opened()).
  const server_extensions& extensions() const;

  /// One outcome per message, in batch order; final once finished().
  const std::vector<delivery_outcome>& outcomes() const;

private:
  /// The replies awaited, in the order the commands were sent.
  enum class step : std::uint8_t {
    greeting,
    hello,
    starttls,
    helo,
    mail,
    rcpt,
    data,
    end_of_data,
    rset,
    quit,
  };

  /// One complete reply: its code and the text of each line.
  struct server_reply;

  /// The message being transferred.
  struct transaction {
    /// Per recipient: it has its result.
    std::vector<bool> decided;
    /// Recipients accepted at RCPT, in RCPT order.
    std::vector<std::size_t> accepted;
    /// RCPT replies read so far.
    std::size_t rcpt_replies = 0;
    /// End-of-data replies read so far (lmtp: one per accepted recipient).
    std::size_t end_replies = 0;
    /// MAIL was refused: the RCPT replies that follow change nothing.
    bool mail_refused = false;
  };

  void set_batch(std::vector<outgoing_message> batch);
  void take_line(std::string_view line);
  void on_reply(step awaited, const server_reply& reply);
  void on_hello_reply(const server_reply& reply);
  void on_starttls_reply(const server_reply& reply);
  void on_helo_reply(const server_reply& reply);
  void opened_now();
  void send_hello();
  void on_mail_reply(const server_reply& reply);
  void on_rcpt_reply(const server_reply& reply);
  void on_data_reply(const server_reply& reply);
  void on_end_of_data_reply(const server_reply& reply);
  void on_rset_reply(const server_reply& reply);
  void open_failed(const server_reply& reply);
  void start_message();
  void next_message(bool reset);
  void send_rcpt(std::size_t index);
  void send_content();
  void send(std::string command, step awaited);
  void decide(std::size_t recipient, recipient_outcome outcome);
  recipient_outcome outcome_of(const server_reply& reply, recipient_result result) const;
  recipient_outcome failure_of(const server_reply& reply) const;
  void settle_unfinished(const recipient_outcome& reason);
  void end_early(const recipient_outcome& reason);
  bool pipelining() const;

  mail_protocol protocol_;
  std::string helo_name_;
  std::vector<outgoing_message> batch_;
  /// One per message; recipients filled in as results arrive.
  std::vector<delivery_outcome> outcomes_;
  server_extensions extensions_;
  /// Index of the message in progress; batch size once all have results.
  std::size_t current_ = 0;
  transaction transaction_;
  std::deque<step> awaited_;
  /// Received bytes not read yet (at most one incomplete line).
  std::string input_;
  /// Lines of the multi-line reply being read, code and separator removed.
  std::vector<std::string> reply_lines_;
  int reply_code_ = 0;
  std::string output_;
  tls_policy tls_;
  bool tls_wanted_ = false;
  bool tls_active_ = false;
  bool opened_ = false;
  bool finished_ = false;
  /// The batch comes with send_batch(), once open.
  bool batch_pending_ = false;
  after_batch after_ = after_batch::quit;
  /// The RSET awaited is check_alive()'s.
  bool checking_ = false;
  /// See ended_early().
  recipient_outcome ended_early_;
};

} // namespace postconn
