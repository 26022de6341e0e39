// NAME
//   mail_server_transport -- a postoffice that is an SMTP or LMTP server.
//
// DESCRIPTION
//   An attempt is one session on a share worker (blocking sockets, each step
//   under probe_timeout): open() connects, reads the greeting, says
//   EHLO/LHLO (and STARTTLS as `tls` asks), and the worker holds the session
//   while the postoffice reads the batch from the store; deliver() sends
//   every message over that connection, then QUIT; close() sends QUIT
//   alone. A probe is a session without messages.
#pragma once

#include "actors/transport.hpp"

namespace postconn {

class mail_server_transport : public transport {
public:
  void probe(postoffice_ptr self, opened_callback done) override;
  void open(postoffice_ptr self, opened_callback done) override;
  void deliver(postoffice_ptr self, std::vector<transfer> batch,
               delivered_callback done) override;
  void close(postoffice_ptr self) override;
};

} // namespace postconn
