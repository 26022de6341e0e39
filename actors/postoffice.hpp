// NAME
//   postoffice -- one actor per postoffice: probes it and delivers to it.
//
// DESCRIPTION
//   A cheap event-based actor (100,000 of them must fit), the same for every
//   transport (transport.hpp: maildir_transport, mail_server_transport),
//   whose blocking work runs on the share pool. An attempt opens the
//   postoffice first; if that fails every job's outcome is "not opened",
//   which the supervisor counts as a failed open. Only once it is open are
//   the jobs' messages read from the store, in one request, and handed to
//   the transport, which answers one outcome per job, each with where it
//   went (relay) and how long the open and the transfer took. The actor
//   probes as soon as it starts (its state is unknown until that probe
//   answers), then on its own every open_interval (the first idle probe at
//   a random point of the first interval, so many postoffices do not probe
//   at once), and every recovery_probe_interval while the postoffice is
//   down, one probe at a time. It logs when the postoffice goes down or
//   comes back, and when its sessions' TLS changes; when it comes back it
//   tells its recovery listener (the supervisor), which sends the deferred
//   mail then instead of at its retry times.
//
//   The fault-injecting transport (runtime/delivery/fault_injector.hpp) sits
//   in front of the real one: the actor fails opens, transfers and
//   recipients the injector picks, and the transport passes slow, hung and
//   dropped calls on to the share worker. `fault` messages replace the
//   fault at run time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor_clock.hpp>

#include "actors/transport.hpp"
#include "messages/actors.hpp"
#include "runtime/config/config.hpp"
#include "runtime/delivery/fault_injector.hpp"

namespace postconn {

struct postoffice_state {
  /// Its settings, shared with the supervisor's way to restart it (one
  /// copy per postoffice, not one per actor and factory).
  std::shared_ptr<const postoffice_config> cfg;
  share_pool_actor pool;
  store_actor store;
  /// server.hostname, for the Received header of each delivery; one string
  /// shared by every postoffice.
  std::shared_ptr<const std::string> hostname;
  /// Last probe (or open) result: unknown before the first, and the
  /// problem when not up.
  reachability state = reachability::unknown;
  std::string problem;
  /// smtp / lmtp: the TLS of the last session that opened; empty: plaintext.
  std::string tls;
  /// Unix time `state` last changed (the actor's start while unknown).
  std::int64_t since = 0;
  /// How the postoffice is reached.
  std::unique_ptr<transport> link;
  /// The fault injected over the real transport (mode none: no fault).
  fault_injector faults;
  /// Told when the postoffice, down, is found up again.
  recovery_listener_actor recovery_listener;
  /// A probe is under way: the next waits for it (a hung share must not
  /// collect probes).
  bool probing = false;
  /// When the next idle probe is due; a probe message that comes before it
  /// was overtaken by a sooner one and is dropped.
  caf::actor_clock::time_point next_probe_at;

  static inline const char* name = "postoffice";
};

postoffice_actor::behavior_type
postoffice(postoffice_actor::stateful_pointer<postoffice_state> self,
           std::shared_ptr<const postoffice_config> cfg, share_pool_actor pool,
           store_actor store, std::shared_ptr<const std::string> hostname);

} // namespace postconn
