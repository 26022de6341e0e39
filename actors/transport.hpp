// NAME
//   transport -- how a postoffice actor reaches its postoffice: probe, open,
//   deliver a batch, close.
//
// DESCRIPTION
//   The postoffice actor (postoffice.hpp) is the same for every transport:
//   it applies the injected fault's refused opens and failed recipients,
//   opens the postoffice, reads the batch's messages from the store only
//   once it is open, hands them to deliver(), and keeps the probe state. A
//   transport makes the calls, each on the share pool (its blocking work
//   never runs on the scheduler), and answers through callbacks on the
//   postoffice actor. Adding a transport is a class here, a file pair, and
//   its place in the config and in make_transport().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/actors.hpp"
#include "runtime/config/config.hpp"

namespace postconn {

struct postoffice_state;

using postoffice_ptr = postoffice_actor::stateful_pointer<postoffice_state>;

/// How an open went.
struct transport_opening {
  bool opened = false;
  /// Why not: the enhanced status ("4.4.1", "4.7.10") and the text.
  std::string status;
  std::string problem;
  /// The TLS of a session that opened ("" for plaintext); none for a
  /// transport without sessions.
  std::optional<std::string> tls;
};

/// One job's message, for the recipients the injected fault let through.
struct transfer {
  delivery_job job;
  stored_message message;
  std::vector<std::string> recipients;
};

class transport {
public:
  using opened_callback = std::function<void(transport_opening)>;
  using delivered_callback = std::function<void(std::vector<delivery_outcome>)>;

  virtual ~transport() = default;

  /// Checks that the postoffice can be opened, and leaves it closed.
  virtual void probe(postoffice_ptr self, opened_callback done) = 0;

  /// Opens the postoffice for a batch.
  virtual void open(postoffice_ptr self, opened_callback done) = 0;

  /// Delivers the batch over what open() opened, then closes it: one
  /// outcome per transfer, in order, each opened.
  virtual void deliver(postoffice_ptr self, std::vector<transfer> batch,
                       delivered_callback done) = 0;

  /// Closes what open() opened when nothing is delivered.
  virtual void close(postoffice_ptr self) = 0;
};

/// The transport of a configured postoffice.
std::unique_ptr<transport> make_transport(const postoffice_config& cfg);

} // namespace postconn
