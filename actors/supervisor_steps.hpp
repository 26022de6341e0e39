// NAME
//   supervisor_steps -- what the supervisor's files call of each other.
//
// DESCRIPTION
//   Private to the supervisor (actors/supervisor*.cpp): the steps one of its
//   files takes on the actor's state that another needs. Each is defined in
//   the file named above its group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/system_messages.hpp>
#include <caf/result.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/supervisor.hpp"

namespace postconn {

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

// -- supervisor.cpp: the ledger and the retry decisions ------------------------

/// Unix time now, on the supervisor's clock.
std::int64_t unix_now(supervisor_ptr self);

/// Asks for one pass over the ledger after the messages already waiting.
void schedule_work(supervisor_ptr self);

/// Tells the holders of replicas (cluster.replicas, through the cluster
/// actor) of the changes committed since the last call.
void tell_replica_holders(supervisor_ptr self);

/// Where and how long an attempt went, for the log line of each recipient
/// it settled; empty for a decision that no attempt made.
struct attempt_trace {
  /// The share's path or the server's host:port ("" when not known).
  std::string relay;
  /// Unix time the supervisor handed the delivery to its postoffice.
  std::int64_t started_at = 0;
  std::int64_t open_micros = 0;
  std::int64_t transfer_micros = 0;
};

/// Persists a decision, then acts on it: a bounce or delay warning goes to
/// an NDR generator, anything else is recorded in the ledger.
void apply(supervisor_ptr self, ledger_decision decision, const attempt_trace& trace = {});

/// Tells the backlog listener when new mail is refused or taken again.
void note_backlog(supervisor_ptr self, bool always_tell);

// -- supervisor_postoffices.cpp: the postoffice actors ------------------------

/// Starts (or restarts) a slot's actor, monitored, with its injected fault.
void start_postoffice(supervisor_ptr self, postoffice_slot& slot);

/// Restarts the postoffice whose actor ended; false when `msg` is not of one.
bool restart_postoffice(supervisor_ptr self, const caf::down_msg& msg);

/// Replaces a postoffice's injected fault, kept for its restarts; false when
/// there is no such postoffice.
bool inject_fault(supervisor_ptr self, const std::string& postoffice, const fault_config& fault);

/// Takes the postoffices of a reloaded config.
void reload_postoffices(supervisor_ptr self, postoffice_lineup& lineup);

/// Every postoffice's last probe with its deliveries' counts.
caf::typed_response_promise<std::vector<postoffice_report>>
report_postoffices(supervisor_ptr self);

// -- supervisor_reports.cpp: what the ledger says, for the admin API -------------

/// Every unfinished delivery.
std::vector<ledger_entry> whole_ledger(const supervisor_state& st);

/// The unfinished deliveries of one message.
std::vector<ledger_entry> ledger_of(const supervisor_state& st, const std::string& message_id);

/// Unfinished deliveries by postoffice and state as shown (in_flight while
/// an attempt is under way).
std::vector<queue_depth> queue_depths(const supervisor_state& st);

/// One page of what a query selects.
queue_page queue_page_of(const supervisor_state& st, const queue_query& query);

/// The ages of what a filter selects at Unix time `now`, per postoffice.
std::vector<queue_shape> queue_shapes(const supervisor_state& st, const delivery_filter& filter,
                                      std::int64_t now);

/// Decisions by postoffice and outcome, bounced recipients by status.
std::vector<outcome_count> outcome_counts(const supervisor_state& st);

/// Keeps the recipients a decision bounces among the recent bounces.
void remember_bounces(supervisor_state& st, const ledger_decision& decision);

/// The recent bounces, newest first.
std::vector<bounce_report> recent_bounces(const supervisor_state& st);

// -- supervisor_handoff.cpp: deliveries of postoffices other nodes own --------

/// Hands a delivery to its postoffice's owner.
void hand_off(supervisor_ptr self, std::int64_t id);

/// cluster.replicas: the deliveries with these keys were adopted by node
/// `by` while this node was gone: each is finished here ("delivered", the
/// attempt log says by whom) without an attempt. Returns how many.
std::uint32_t finish_adopted_elsewhere(supervisor_ptr self, const std::vector<std::string>& keys,
                                       const std::string& by);

// -- supervisor_verbs.cpp: the operator's verbs, on what a filter selects ------

verb_tally hold_or_release(supervisor_ptr self, const delivery_filter& filter, bool hold);
verb_tally flush(supervisor_ptr self, const delivery_filter& filter);
caf::result<verb_tally> delete_messages(supervisor_ptr self, const delivery_filter& filter,
                                        bool with_ndr);
verb_tally requeue(supervisor_ptr self, const delivery_filter& filter,
                   const std::string& postoffice);

/// The postoffice is up again: its deferred deliveries are due now, ahead
/// of schedule, recovery_rate a second in the order they were due.
void recovered(supervisor_ptr self, const std::string& postoffice);

} // namespace postconn
