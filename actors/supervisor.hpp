// NAME
//   supervisor -- owns the retry ledger of every unfinished delivery.
//
// DESCRIPTION
//   Starts with the ledger the server read from the queue (unfinished
//   deliveries), learns of new deliveries from the store as each commit
//   that creates them is durable, and wakes at the earliest moment a
//   delivery needs it: its next attempt or the end of its lifetime. Due
//   deliveries go to their postoffice actor in batches, one attempt per
//   postoffice at a time. Each outcome goes through ledger_rules; the new
//   ledger values are persisted before the supervisor acts on them, and a
//   decision that bounces recipients is handed to an NDR generator, which
//   commits the NDR and the bounce in one transaction. The supervisor starts
//   the postoffice actors and restarts one that dies; a config reload adds,
//   replaces and stops them. A delivery for a postoffice that is not
//   configured (or no longer) fails to open, so its limits still end it: no
//   delivery can wait forever. In a cluster, deliveries of postoffices
//   another node owns are handed to that node through the cluster actor
//   (with their counts) and finish here once the owner has committed them;
//   their lifetime and delay limits are still checked here until then.
//
//   Its files: supervisor.cpp holds the ledger, the retry decisions and the
//   NDR generators, and the behaviour; supervisor_postoffices.cpp starts,
//   restarts, reloads and reports the postoffice actors;
//   supervisor_verbs.cpp carries out the operator's verbs (hold, release,
//   flush, delete, requeue) and makes a recovered postoffice's deferred
//   deliveries due; supervisor_reports.cpp answers what the ledger
//   holds; supervisor_handoff.cpp hands deliveries to
//   other nodes; supervisor_backlog and supervisor_ndr_queue are the plain
//   state of admission control and of the NDR generators at work.
//   supervisor_steps.hpp declares what these files call of each other.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/ndr_generator.hpp"
#include "actors/supervisor_backlog.hpp"
#include "actors/supervisor_ndr_queue.hpp"
#include "messages/actors.hpp"
#include "messages/unix_clock.hpp"
#include "runtime/config/config.hpp"
#include "runtime/retry/due_index.hpp"
#include "runtime/retry/ledger_rules.hpp"

namespace caf {
class actor_system;
} // namespace caf

namespace postconn {

/// A configured postoffice as the supervisor sees it.
struct postoffice_slot {
  std::string name;
  retry_policy retry;
  postoffice_factory start;
  /// The running actor; the supervisor monitors it and restarts it when it
  /// dies.
  postoffice_actor actor;
  /// An attempt is in flight; the next one waits for its outcome.
  bool busy = false;
  /// The fault last injected at run time; given again to a restarted actor.
  std::optional<fault_config> injected;
};

struct supervisor_options {
  /// Unix time at the moment the supervisor starts (tests fix it).
  unix_time_origin origin;
  /// How long a postoffice actor may take to answer an attempt before it
  /// counts as a failed open.
  std::chrono::seconds attempt_timeout{600};
  /// Deliveries handed to a postoffice in one attempt, at most.
  std::size_t max_batch = 100;
  /// Wait before retrying a delivery whose ledger could not be persisted.
  std::chrono::seconds store_retry{60};
  /// Policy for deliveries of postoffices that are not configured.
  retry_policy fallback_retry;
  /// Cluster: this node's name, in the maildir keys of its deliveries
  /// (delivery_key()); empty on a single node.
  std::string node;
  /// Cluster: no attempt until the cluster actor's first lineup says which
  /// postoffices run here (until then every one would look unconfigured).
  bool await_lineup = false;
  /// How long the owner may take to commit a delivery handed over.
  std::chrono::seconds handoff_timeout{30};
  /// Wait before a failed handoff is tried again (it counts no retry).
  std::chrono::seconds handoff_retry{5};
  /// NDR generators at work at once, at most; more bounces wait their turn.
  /// Each generator has two store requests, so in a storm this bounds the
  /// store's queue: new mail is committed without waiting behind all of them.
  std::size_t max_ndr_generators = 256;
};

/// Every configured postoffice that runs here, by name.
class postoffice_roster {
public:
  /// The running postoffice of that name, null when there is none.
  postoffice_slot* find(const std::string& name);
  const postoffice_slot* find(const std::string& name) const;

  /// Replaces every slot (a start, a reload).
  void assign(std::vector<postoffice_slot> slots);

  std::vector<postoffice_slot>& slots() {
    return slots_;
  }
  const std::vector<postoffice_slot>& slots() const {
    return slots_;
  }

private:
  std::vector<postoffice_slot> slots_;
  std::map<std::string, std::size_t> index_;
};

/// Cluster: the postoffices other nodes own, and the deliveries on their way
/// to those owners.
struct handoff_lane {
  /// Postoffices other nodes own, with their retry policies.
  std::map<std::string, retry_policy> elsewhere;
  /// Hands deliveries of those postoffices to their owners.
  handoff_actor courier;
  /// Handoffs under way.
  std::size_t in_flight = 0;
  /// Deliveries whose handoff failed, with the Unix time to try again.
  std::map<std::int64_t, std::int64_t> waiting;
};

struct supervisor_state {
  /// The retry ledger: unfinished deliveries by id.
  std::map<std::int64_t, ledger_entry> ledger;
  /// Deliveries with an attempt, a ledger write or an NDR under way.
  std::set<std::int64_t> busy;
  /// When the idle, unheld deliveries need work(); see reindex().
  due_index due;
  /// Busy deliveries to hold once their attempt is decided.
  std::set<std::int64_t> hold_requested;
  /// Deliveries made due ahead of their schedule (a flush, a release, their
  /// postoffice's recovery), with the Unix time they are due: their next
  /// attempt is ahead of schedule (ledger_rules: attempt_timing). Dropped
  /// when the attempt starts, or when the delivery is held or finished.
  std::map<std::int64_t, std::int64_t> ahead_of_schedule;
  /// Ledger changes decided since the last store request, written together
  /// by the next (a record_atom is on its way while there are any).
  std::vector<ledger_change> records_waiting;
  /// Committed changes of deliveries with a replica on another node
  /// (cluster.replicas), for the courier to tell the holders.
  std::vector<ledger_entry> replica_changes;
  /// Bounces and delay warnings, and the NDR generators at work on them.
  ndr_queue ndrs;
  std::shared_ptr<const ndr_settings> ndr;
  postoffice_roster postoffices;
  handoff_lane handoff;
  /// When new mail is refused (admission control).
  backlog_watch backlog;
  /// Decisions by postoffice and outcome, and bounced recipients by status
  /// (under postoffice ""), since start: for metrics.
  std::map<std::pair<std::string, std::string>, std::uint64_t> outcomes;
  /// The last recipients bounced since start, oldest first, at most
  /// recent_bounces_kept: for the status page.
  std::deque<bounce_report> recent_bounces;
  static constexpr std::size_t recent_bounces_kept = 20;
  store_actor store;
  supervisor_options options;
  unix_clock clock;
  /// When the pending wake-up fires, 0 when none is pending.
  std::int64_t wake_at = 0;
  /// A work_atom is on its way: a pass over the ledger is coming.
  bool work_scheduled = false;
  /// Cluster with etcd: no attempt or handoff starts at or after this
  /// moment (the lease's fence), even before the lineup that owns nothing
  /// arrives -- a node resumed after a hang must not start one.
  std::optional<caf::actor_clock::time_point> fence;
  /// A planned stop: no new attempt; the promise is kept once nothing is
  /// busy.
  std::optional<caf::typed_response_promise<bool>> draining;

  /// The retry policy of a delivery's postoffice.
  const retry_policy& policy_of(const ledger_entry& entry) const;

  /// Brings the delivery's place in `due` up to date with its ledger entry,
  /// its busy state and its postoffice; every change to those calls it.
  void reindex(std::int64_t delivery_id);

  void mark_busy(std::int64_t delivery_id);
  void mark_idle(std::int64_t delivery_id);

  static inline const char* name = "supervisor";
};

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::vector<postoffice_slot> postoffices, std::vector<ledger_entry> ledger,
           store_actor store, std::shared_ptr<const ndr_settings> ndr,
           supervisor_options options);

} // namespace postconn
