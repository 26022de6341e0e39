// NAME
//   mail_server_session -- runs SMTP/LMTP client sessions over sockets.
//
// DESCRIPTION
//   Connects to the server, then drives smtp_client_session: sends what it
//   asks for and feeds it what the server answers, until it is finished.
//   Every step -- the connect, each send, each reply -- waits at most
//   `step_timeout`; a step that takes longer ends the session as a timeout
//   of that step. Blocking: it runs on a share worker thread, never on the
//   scheduler. A connect that fails or times out is an open failure of every
//   message. When the session asks for TLS (STARTTLS answered 220), the
//   handshake runs here, each of its round trips a step, towards the host of
//   the job's address (SNI, and the name checked with tls = verify); from
//   then on every byte goes through the TLS channel.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "messages/vocabulary.hpp"

namespace postconn {

/// One connection to an SMTP/LMTP server, opened first and given its
/// messages after: the open (connect, greeting, EHLO/LHLO, STARTTLS) is
/// done before the caller reads the messages from the queue, so an attempt
/// at a server that is down reads nothing.
class mail_server_connection {
public:
  /// Opens the connection for `job` (its messages are not sent).
  explicit mail_server_connection(const mail_server_job& job);
  ~mail_server_connection();
  mail_server_connection(const mail_server_connection&) = delete;
  mail_server_connection& operator=(const mail_server_connection&) = delete;

  /// The open succeeded: the server waits for the messages.
  bool opened() const;

  /// Why the open failed; empty when it did not.
  const std::string& problem() const;

  /// The enhanced status of a failed open: the refusal's ("4.7.10"), else
  /// "4.4.1" (the server could not be reached).
  std::string refusal_status() const;

  /// The connection's TLS ("TLSv1.3 with cipher ..."); empty: plaintext.
  std::string tls() const;

  /// Sends `messages` (none: only QUIT) and closes the connection: one
  /// outcome per message; every message failed to open when the open failed.
  mail_server_result deliver(std::vector<outgoing_mail> messages);

  /// Sends `messages` and keeps the connection open for another batch when
  /// the session is still sound (kept() tells), else closes it.
  mail_server_result deliver_and_keep(std::vector<outgoing_mail> messages);

  /// Open, between batches, and ready for the next one.
  bool kept() const;

  /// A kept connection taken for `job`'s batch (its step timeout and
  /// injected fault apply from now on): true when the server answers RSET
  /// with 250 (it may have closed an idle connection); else it is closed.
  bool still_open(const mail_server_job& job);

  /// When the connection was opened.
  std::chrono::steady_clock::time_point opened_at() const;

  /// Sends what the session still wants to (QUIT) and closes the socket.
  void finish();

private:
  mail_server_result send(std::vector<outgoing_mail> messages, bool keep);

  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A whole session: opens, sends the job's messages, closes (no messages:
/// a probe).
mail_server_result run_mail_server_session(const mail_server_job& job);

} // namespace postconn
