// NAME
//   actors -- the typed interfaces of every postconn actor, in one place.
//
// DESCRIPTION
//   Actors talk only through these interfaces; one comment line per handler.
//   Handlers an actor sends to itself are listed too (CAF needs them in the
//   interface) and are marked "internal".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_control_block.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/io/system_messages.hpp>
#include <caf/io/typed_broker.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/vocabulary.hpp"

namespace postconn {

/// Hears from the store what it alone knows: the deliveries each commit
/// creates (new mail, adopted handoffs, NDRs), and the state of the disk.
using store_listener_actor = caf::typed_actor<
  // Deliveries newly committed to the queue.
  caf::reacts_to<enqueue_atom, std::vector<ledger_entry>>,
  // The queue's disk fell below its reserve (server.min_free_space: true)
  // or is back above 110 % of it (false).
  caf::reacts_to<space_atom, bool>>;

/// How long an actor waits for an answer of the store before it gives up:
/// far beyond a commit's time, so only a store that is stuck runs into it.
constexpr std::chrono::seconds store_timeout{120};

/// The durable queue: messages, deliveries (retry ledgers), attempt log.
/// Writes are group-committed; a reply means the data is on disk.
using store_actor = caf::typed_actor<
  // Commits a message and its deliveries; replies with its id and ledger.
  caf::replies_to<accept_atom, incoming_message>::with<accept_receipt>,
  // Commits a DSN (an NDR or a delay warning; no deliveries: none) with the
  // ledger change that caused it, in one transaction; replies with the
  // DSN's deliveries.
  caf::replies_to<report_atom, ledger_change,
                  incoming_message>::with<std::vector<ledger_entry>>,
  // Commits a delivery handed over by another node under a new queue id,
  // with the attempt that records it; replies with its ledger entry, none
  // when that delivery was handed over before.
  // With a replica node (cluster.replicas), the entry is not announced:
  // whoever committed the replica there does.
  caf::replies_to<adopt_atom, handoff, attempt_record,
                  std::string>::with<std::vector<ledger_entry>>,
  // cluster.replicas: commits replicas of deliveries another node holds
  // (each handoff's from_node; delivery.origin is the key); replies once
  // they are durable. A replica whose delivery already finished stays
  // finished.
  caf::replies_to<replicate_atom, std::vector<handoff>>::with<bool>,
  // cluster.replicas: the deliveries `node` holds changed (delivery.origin
  // is the key): their counts are updated, finished ones dropped.
  caf::reacts_to<replicate_atom, std::string, std::vector<ledger_entry>>,
  // cluster.replicas: `node` is gone; its unfinished replicas become
  // deliveries of this node (counts kept, origin = their key), announced;
  // replies with them.
  caf::replies_to<forget_atom, std::string>::with<std::vector<ledger_entry>>,
  // cluster.replicas: the keys of `node`'s deliveries adopted here.
  caf::replies_to<load_atom, forget_atom, std::string>::with<std::vector<std::string>>,
  // Persists ledger changes with their recipients' outcomes, each alone
  // (one at fault fails alone) but in the same commit; replies with one line per change: empty when it is
  // durable, else why not.
  caf::replies_to<record_atom, std::vector<ledger_change>>::with<std::vector<std::string>>,
  // Lists every delivery that is not finished (delivered or bounced).
  caf::replies_to<load_atom>::with<std::vector<ledger_entry>>,
  // Reads one message by queue id.
  caf::replies_to<fetch_atom, std::string>::with<stored_message>,
  // An attempt that opened its postoffice: marks its deliveries (second
  // list) in doubt, durably, then reads its messages (first list) in the
  // order asked, leaving out those not in the queue. Once marked, a copy may
  // reach the postoffice before the outcome is recorded; a restart in
  // between finds the delivery in doubt (ledger_entry::in_doubt).
  caf::replies_to<fetch_atom, std::vector<std::string>, std::vector<std::int64_t>>::with<
    std::vector<stored_message>>,
  // Lists every delivery of a message, finished or not.
  caf::replies_to<load_atom, std::string>::with<std::vector<ledger_entry>>,
  // Lists the messages with unfinished deliveries whose sender contains the
  // text (any case), by queue id.
  caf::replies_to<load_atom, sender_atom, std::string>::with<std::vector<std::string>>,
  // Reads the attempt log of a delivery, oldest first.
  caf::replies_to<load_atom, std::int64_t>::with<std::vector<attempt_record>>,
  // Reads what became of each recipient of a delivery, by address.
  caf::replies_to<load_atom, outcomes_atom,
                  std::int64_t>::with<std::vector<recipient_record>>,
  // Removes messages with their deliveries and attempts, in one
  // transaction; replies with how many of them there were.
  caf::replies_to<delete_atom, std::vector<std::string>>::with<std::uint32_t>,
  // Removes finished messages received after the queue id given whose
  // every delivery finished before the Unix time given; a bounded round.
  caf::replies_to<purge_atom, std::int64_t, std::string>::with<purge_report>,
  // Reports the store's counters.
  caf::replies_to<status_atom>::with<store_status>,
  // Tells the listener of the deliveries every commit creates, and whether
  // the queue's disk is below its reserve, now and at every crossing;
  // replaces an earlier one.
  caf::reacts_to<watch_atom, store_listener_actor>,
  // Replaces the reserve of free bytes on the queue's disk (0: none).
  caf::reacts_to<reload_atom, std::uint64_t>,
  // Internal: commits the writes received so far in one transaction.
  caf::reacts_to<commit_atom>,
  // Internal: looks at the free space again while below the reserve.
  caf::reacts_to<space_atom>>;

/// Learns that a postoffice that was down is reachable again (by name).
using recovery_listener_actor = caf::typed_actor<caf::reacts_to<recovered_atom, std::string>>;

/// One postoffice: probes it and attempts the deliveries it is handed.
using postoffice_actor = caf::typed_actor<
  // Opens the postoffice, then transfers; one outcome per job.
  caf::replies_to<deliver_atom, std::vector<delivery_job>>::with<
    std::vector<delivery_outcome>>,
  // Replaces the injected fault (mode none: the real transport alone).
  caf::reacts_to<fault_atom, fault_config>,
  // Reports the last probe: up or down, why, and since when.
  caf::replies_to<status_atom>::with<postoffice_report>,
  // Tells the listener whenever the postoffice, down, is found up again;
  // replaces an earlier one.
  caf::reacts_to<watch_atom, recovery_listener_actor>,
  // Internal: the probe it runs every open_interval, even when idle, and
  // every recovery_probe_interval while down.
  caf::reacts_to<probe_atom>>;

/// How long a share worker holds an opened SMTP/LMTP session for its batch,
/// which the postoffice reads from the store meanwhile.
constexpr std::chrono::seconds held_session_limit = store_timeout + std::chrono::seconds{30};

/// The blocking calls of the transports, each under its job's injected
/// fault (runtime/delivery/fault_injector.hpp).
using share_calls = caf::typed_actor<
  // Probes a maildir root; replies with the problem, "" when reachable.
  caf::replies_to<probe_atom, probe_job>::with<std::string>,
  // Delivers one message to one mailbox.
  caf::replies_to<deliver_atom, maildir_job>::with<recipient_outcome>,
  // Runs one SMTP/LMTP session (blocking sockets, a timeout on each step);
  // without messages, a probe.
  caf::replies_to<deliver_atom, mail_server_job>::with<mail_server_result>,
  // Opens an SMTP/LMTP session for the caller (the job's messages are not
  // sent) and holds it until the caller's batch comes.
  caf::replies_to<open_atom, mail_server_job>::with<mail_server_opening>,
  // Sends the caller's batch over the session it opened, then closes it.
  caf::replies_to<deliver_atom, std::vector<outgoing_mail>>::with<mail_server_result>>;

/// Runs blocking file-share operations (a thread each), so a hung share
/// blocks a worker, never the scheduler. The pool hands each request to an
/// idle worker; a worker tells the pool when it is free again.
using share_worker_actor = share_calls::extend<
  // Internal: makes the call it put off (a slow or hung share), by number.
  caf::reacts_to<tick_atom, std::uint64_t>,
  // Internal: closes the session it holds, by number, if its batch has
  // not come by now.
  caf::reacts_to<expire_atom, std::uint64_t>>;

/// The pool in front of the share workers: the same calls, plus the
/// workers' "done" reports.
using share_pool_actor = share_calls::extend<
  // From a worker: it finished a request and is idle.
  caf::reacts_to<done_atom, share_worker_actor>,
  // Internal: fails calls past hang_limit, starts workers for calls waiting
  // behind stuck ones, ends workers idle too long.
  caf::reacts_to<tick_atom>>;

/// What the cluster actors of two nodes say to each other: the only
/// interface published on the network.
using cluster_peer_actor = caf::typed_actor<
  // A peer joined (its name and cluster address); replies with this node
  // first, then every other live member it knows.
  caf::replies_to<join_atom, cluster_member>::with<std::vector<cluster_member>>,
  // A delivery handed over; replies once it is committed here (also when it
  // was committed before: a retry after a lost reply).
  caf::replies_to<handoff_atom, handoff>::with<bool>,
  // cluster.replicas: replicas of the calling node's deliveries; replies
  // once they are committed here.
  caf::replies_to<replicate_atom, std::vector<handoff>>::with<bool>,
  // cluster.replicas: the calling node's deliveries (named first) changed
  // or finished.
  caf::reacts_to<replicate_atom, std::string, std::vector<ledger_entry>>,
  // cluster.replicas: `node` is gone: adopt the replicas of its
  // deliveries held here; replies with how many were adopted.
  caf::replies_to<forget_atom, std::string>::with<std::uint32_t>,
  // cluster.replicas: the keys of `node`'s deliveries adopted here.
  caf::replies_to<load_atom, forget_atom, std::string>::with<std::vector<std::string>>>;

/// Where the supervisor sends deliveries of postoffices other nodes own.
using handoff_actor = caf::typed_actor<
  // Hands a delivery to its postoffice's owner; replies with the owner's
  // name once the owner has committed it.
  caf::replies_to<handoff_atom, ledger_entry>::with<std::string>,
  // cluster.replicas: deliveries with a replica node changed (committed):
  // the holders are told.
  caf::reacts_to<replicate_atom, std::vector<ledger_entry>>>;

/// Where an SMTP session commits what it accepted: the store, or with
/// cluster.replicas the cluster actor, which answers once a replica is
/// committed on another node too.
using acceptor_actor = caf::typed_actor<
  caf::replies_to<accept_atom, incoming_message>::with<accept_receipt>>;

/// Starts (and restarts) the actor of one postoffice.
using postoffice_factory = std::function<postoffice_actor()>;

struct ndr_settings;
struct smtp_settings;

/// A postoffice as a config (re)load defines it.
struct postoffice_definition {
  std::string name;
  retry_policy retry;
  /// Starts its actor with the new transport settings; empty when they did
  /// not change and the running actor stays.
  postoffice_factory start;
};

/// Every postoffice after a config reload: the supervisor starts the new
/// ones, replaces those with a new `start`, and stops those not listed.
struct postoffice_lineup {
  std::vector<postoffice_definition> postoffices;
  /// For deliveries of postoffices that are not configured.
  retry_policy fallback_retry;
  /// NDR routing by the new config; null keeps the running one.
  std::shared_ptr<const ndr_settings> ndr;
  /// Cluster: postoffices other nodes own, with their retry policies. Their
  /// deliveries are handed to `handoff`; their limits are still checked here.
  std::map<std::string, retry_policy> elsewhere = {};
  handoff_actor handoff = {};
};

/// Learns whether the queue is over its high-water mark: true when the
/// unfinished deliveries reach it, false when they are back under 90 % of it.
using backlog_listener_actor = caf::typed_actor<caf::reacts_to<backlog_atom, bool>>;

/// The SMTP listener as other actors and the admin API see it.
using smtp_listener_actor = backlog_listener_actor::extend<
  // A config reload: the settings of sessions opened from now on.
  caf::reacts_to<reload_atom, std::shared_ptr<const smtp_settings>>,
  // From the cluster actor: this node cannot prove it holds its etcd lease
  // (true: RCPT TO gets 452 4.3.0), or can again.
  caf::reacts_to<expire_atom, bool>,
  // Replies with the number of open sessions.
  caf::replies_to<status_atom>::with<std::uint64_t>>;

/// The SMTP listener as its broker runs it: the listening socket's messages
/// (accept_handler: a new connection, the socket closed) besides the above.
using smtp_listener_broker = smtp_listener_actor::extend_with<caf::io::accept_handler>::extend<
  // Internal: a connection over a limit, looked at again behind the
  // messages already waiting (the end of a session among them).
  caf::reacts_to<connected_atom, caf::io::connection_handle>,
  // Internal: tells every open session to check its deadlines.
  caf::reacts_to<tick_atom>>;

/// One SMTP connection, forked by the listener: its connection's messages
/// (connection_handler: bytes in, the connection closed) and the listener's.
using smtp_session_broker = caf::io::connection_handler::extend<
  // The client's socket took written bytes; replies not yet taken pace
  // reading.
  caf::reacts_to<caf::io::data_transferred_msg>,
  // From the listener, once a second while sessions are open: checks the
  // idle, command line and DATA deadlines.
  caf::reacts_to<idle_atom>,
  // From the listener: the queue is over its high-water mark (true: MAIL
  // FROM gets 452 4.3.1) or back under it.
  caf::reacts_to<backlog_atom, bool>,
  // From the listener: this node cannot prove it holds its etcd lease
  // (true: RCPT TO gets 452 4.3.0), or can again.
  caf::reacts_to<expire_atom, bool>>;

/// A connection over a connection limit: says 421 4.7.0 and closes at once,
/// so the connection's messages never reach it.
using smtp_refusal_broker = caf::io::connection_handler;

/// Every configured postoffice, for the cluster actor to line up those this
/// node owns.
struct cluster_postoffices {
  /// Every postoffice, each with a way to start its actor.
  postoffice_lineup all;
  /// Explicit owners by postoffice (empty: rendezvous hashing decides).
  std::map<std::string, std::string> owners;
  /// Postoffices whose transport changed: restarted if they run here.
  std::set<std::string> changed;
};

/// What one round with etcd found: this node's lease renewed (or granted
/// and its member key written) and the members read, or why not. Times are
/// steady_clock's (CAF's actor clock).
struct membership_round {
  /// The lease was renewed or granted, and the members were read.
  bool ok = false;
  /// Why not, for the log.
  std::string problem;
  /// etcd said the lease was gone (expired or revoked); this round granted
  /// a new one if `registered_at` is set.
  bool lease_lost = false;
  /// Read before the keepalive (or the grant) was sent.
  std::chrono::steady_clock::time_point asked_at;
  /// The TTL etcd granted.
  std::chrono::seconds ttl{0};
  std::int64_t lease = 0;
  /// When the put of the member key returned, if this round wrote it.
  std::chrono::steady_clock::time_point registered_at;
  bool registered = false;
  /// The members etcd holds: node -> cluster address.
  std::map<std::string, std::string> members;
  /// cluster.replicas: the nodes that adopted this node's deliveries while
  /// it was gone (found after this round registered it); it then holds no
  /// lease and takes part no more.
  std::vector<std::string> adopted_by = {};
};

/// Keeps this node's etcd lease and member key, and reads the members: a
/// detached actor (its HTTP calls block its own thread), linked to the
/// cluster actor, which it tells what each round found. It revokes the
/// lease when it exits.
using cluster_lease_actor = caf::typed_actor<
  // cluster.replicas: records in etcd that this node adopts `node`'s
  // deliveries, only if `node` holds no member key; replies whether it did.
  caf::replies_to<forget_atom, std::string>::with<bool>,
  // cluster.replicas: this node has learnt what `by` adopted of it; the
  // record of that goes.
  caf::reacts_to<delete_atom, std::string>,
  // Internal: the next round.
  caf::reacts_to<tick_atom>>;

/// This node's place in the cluster: keeps the membership, lines up the
/// postoffices this node owns, and carries deliveries between nodes.
using cluster_actor = cluster_peer_actor::extend_with<handoff_actor>::extend_with<
  acceptor_actor>::extend<
  // From the admin API: `node` is gone for good; every live node adopts
  // the replicas it holds of that node's deliveries. Replies with how many
  // were adopted in all.
  caf::replies_to<forget_atom, std::string, bool>::with<std::uint32_t>,
  // The configured postoffices, at start and after a reload.
  caf::reacts_to<reload_atom, cluster_postoffices>,
  // From the lease actor (cluster.etcd): what a round with etcd found.
  caf::reacts_to<report_atom, membership_round>,
  // The lease actor, for the etcd writes it makes for this actor.
  caf::reacts_to<watch_atom, cluster_lease_actor>,
  // Tells the SMTP listener whenever this node cannot prove it holds its
  // etcd lease, and when it can again; now, too.
  caf::reacts_to<watch_atom, smtp_listener_actor>,
  // Internal: the lease's fence or the end of the join wait is due.
  caf::reacts_to<expire_atom>,
  // Reports the live members and every postoffice's owner.
  caf::replies_to<status_atom>::with<cluster_report>,
  // Internal: the connection to the cluster actor at an address was made
  // (null: it failed).
  caf::reacts_to<connected_atom, std::string, caf::strong_actor_ptr>,
  // Internal: reaches seeds and lost members that are not live.
  caf::reacts_to<tick_atom>>;

/// Builds and commits one NDR, then exits.
using ndr_generator_actor = caf::typed_actor<
  // Internal: the original was read (empty: it is gone from the queue);
  // builds the NDR and commits it with the bounce.
  caf::reacts_to<report_atom, stored_message>>;

/// Removes finished messages from the queue once their retention is over.
using purger_actor = caf::typed_actor<
  // A config reload: the new server.keep_finished, in seconds.
  caf::reacts_to<reload_atom, std::int64_t>,
  // Internal: the next round of purge requests to the store.
  caf::reacts_to<purge_atom>>;

/// Owns the retry ledger of every unfinished delivery and schedules attempts.
using supervisor_actor = caf::typed_actor<
  // From the store: deliveries newly committed to the queue.
  caf::reacts_to<enqueue_atom, std::vector<ledger_entry>>,
  // From an NDR generator: the delivery's new values are committed with
  // its DSN (whose deliveries the store announces).
  caf::reacts_to<reported_atom, ledger_entry>,
  // Lists the unfinished deliveries as the supervisor sees them.
  caf::replies_to<ledger_atom>::with<std::vector<ledger_entry>>,
  // One page of the unfinished deliveries a query selects, oldest first,
  // copying only that page (the ledger may hold a million).
  caf::replies_to<page_atom, queue_query>::with<queue_page>,
  // The unfinished deliveries of one message, as the supervisor sees them.
  caf::replies_to<ledger_atom, std::string>::with<std::vector<ledger_entry>>,
  // Holds the deliveries a filter selects: no attempt, no expiry, until
  // released (one with an attempt under way once that ends).
  caf::replies_to<hold_atom, delivery_filter>::with<verb_tally>,
  // Releases the held deliveries a filter selects, due at once.
  caf::replies_to<release_atom, delivery_filter>::with<verb_tally>,
  // Makes the deferred deliveries a filter selects due now.
  caf::replies_to<flush_atom, delivery_filter>::with<verb_tally>,
  // A config reload: postoffices added, changed or removed, new retry
  // policies; deliveries keep their counts.
  caf::reacts_to<reload_atom, postoffice_lineup>,
  // Counts decisions by postoffice and outcome, and bounced recipients by
  // status (postoffice ""), since start.
  caf::replies_to<outcomes_atom>::with<std::vector<outcome_count>>,
  // The last recipients bounced since start, newest first (at most 20).
  caf::replies_to<bounced_atom>::with<std::vector<bounce_report>>,
  // Counts the unfinished deliveries by postoffice and state (for metrics:
  // the ledger is not copied).
  caf::replies_to<depth_atom>::with<std::vector<queue_depth>>,
  // Reports every postoffice: its last probe and its deliveries' counts.
  caf::replies_to<postoffice_atom>::with<std::vector<postoffice_report>>,
  // Deletes the messages with a delivery a filter selects: with an NDR,
  // their unfinished deliveries bounce (5.0.0); without, they leave the
  // queue with no trace, in one store request. A message with an attempt
  // under way is left alone.
  caf::replies_to<delete_atom, delivery_filter, bool>::with<verb_tally>,
  // Moves the deliveries a filter selects to a postoffice, their counts
  // reset (their lifetime still runs from acceptance); those with an
  // attempt under way stay.
  caf::replies_to<requeue_atom, delivery_filter, std::string>::with<verb_tally>,
  // The ages of the deliveries a filter selects, per postoffice, at the
  // Unix time given.
  caf::replies_to<shape_atom, delivery_filter, std::int64_t>::with<std::vector<queue_shape>>,
  // Replaces a postoffice's injected fault; false when there is no such
  // postoffice.
  caf::replies_to<fault_atom, std::string, fault_config>::with<bool>,
  // From a postoffice actor: the postoffice, down, is up again; its
  // deferred deliveries are made due, recovery_rate a second.
  caf::reacts_to<recovered_atom, std::string>,
  // From the cluster actor (cluster.etcd), at every renewal of the lease:
  // attempts and handoffs may start until this moment of the actor clock
  // (time since its epoch), the lease's fence, and none after it.
  caf::reacts_to<expire_atom, caf::timespan>,
  // Tells the listener the backlog state against this high-water mark (in
  // unfinished deliveries) now and at every crossing; replaces an earlier one.
  caf::reacts_to<watch_atom, backlog_listener_actor, std::uint64_t>,
  // The queue's disk fell below its reserve (true) or is back above it:
  // while below, the backlog listener is told to refuse new mail too.
  caf::reacts_to<space_atom, bool>,
  // A planned stop: starts no attempt from now on and replies once every
  // attempt, ledger write, NDR and handoff under way has ended and is
  // recorded.
  caf::replies_to<drain_atom>::with<bool>,
  // cluster.replicas: node `by` adopted the deliveries with these delivery
  // keys while this node was gone; they finish here unattempted. Replies
  // with how many there were.
  caf::replies_to<forget_atom, std::vector<std::string>, std::string>::with<std::uint32_t>,
  // Internal: attempts what is due and enforces the limits.
  caf::reacts_to<tick_atom>,
  // One pass over the ledger, asked for by the supervisor itself.
  caf::reacts_to<work_atom>,
  // Internal: persists the ledger changes decided so far in one request.
  caf::reacts_to<record_atom>>;

} // namespace postconn

// Local only: they carry functions and shared settings, never cross nodes.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postconn::postoffice_lineup)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postconn::cluster_postoffices)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(postconn::membership_round)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const postconn::smtp_settings>)
