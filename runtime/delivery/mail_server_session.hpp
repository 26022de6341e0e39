// NAME
//   mail_server_session -- runs one SMTP/LMTP client session over a socket.
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

#include "messages/vocabulary.hpp"

namespace postconn {

mail_server_result run_mail_server_session(const mail_server_job& job);

} // namespace postconn
