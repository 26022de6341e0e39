// NAME
//   ndr_generator -- builds and commits one non-delivery report, then exits.
//
// DESCRIPTION
//   Spawned by the supervisor for each decision that bounces recipients, or
//   warns of their delay (the same DSN with "Action: delayed"). It
//   reads the original message from the store, builds the RFC 3464 DSN,
//   routes it to the original sender like any message, and has the store
//   commit the NDR together with the delivery's new ledger values in one
//   transaction, so a crash leaves exactly one NDR or none (and then the
//   bounce is decided again). An original with the null sender is itself a
//   report: it gets no NDR (a double bounce, logged and dropped), and so
//   does a sender whose domain no postoffice takes, and an original no
//   longer in the queue (its sender is unknown). It reports the committed
//   bounce to the supervisor and exits; a failure (the original unreadable,
//   the commit failed) ends it with an error, which the supervisor sees as
//   a down message: nothing was committed, and it decides the bounce again
//   after a pause.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/actors.hpp"
#include "runtime/retry/ledger_rules.hpp"
#include "runtime/config/routing.hpp"

namespace postconn {

struct ndr_settings {
  /// server.hostname: Reporting-MTA and MAILER-DAEMON@.
  std::string hostname;
  routing_table routes;
};

ndr_generator_actor::behavior_type
ndr_generator(ndr_generator_actor::pointer self, ledger_decision decision,
              std::shared_ptr<const ndr_settings> settings, store_actor store,
              supervisor_actor supervisor);

} // namespace postconn
