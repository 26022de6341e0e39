// NAME
//   vocabulary -- the words postconn's actors speak: atoms and message structs.
//
// DESCRIPTION
//   Plain structs with CAF 0.17 inspect() overloads, so they can cross actor
//   and node boundaries. Times are Unix seconds (std::int64_t, 0 = never).
//   Every type here is registered in messages/registry.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/fault.hpp"
#include "messages/policy.hpp"

namespace postconn {

// -- atoms: the verbs (at most 10 characters) ---------------------------------

using accept_atom = caf::atom_constant<caf::atom("accept")>;
using record_atom = caf::atom_constant<caf::atom("record")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using ledger_atom = caf::atom_constant<caf::atom("ledger")>;
using page_atom = caf::atom_constant<caf::atom("page")>;
using outcomes_atom = caf::atom_constant<caf::atom("outcomes")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using reported_atom = caf::atom_constant<caf::atom("reported")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using fault_atom = caf::atom_constant<caf::atom("fault")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using reload_atom = caf::atom_constant<caf::atom("reload")>;
using postoffice_atom = caf::atom_constant<caf::atom("postoffice")>;
using delete_atom = caf::atom_constant<caf::atom("delete")>;
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;
using sender_atom = caf::atom_constant<caf::atom("sender")>;
using work_atom = caf::atom_constant<caf::atom("work")>;
using backlog_atom = caf::atom_constant<caf::atom("backlog")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using handoff_atom = caf::atom_constant<caf::atom("handoff")>;
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;
using connected_atom = caf::atom_constant<caf::atom("connected")>;
using depth_atom = caf::atom_constant<caf::atom("depth")>;
using purge_atom = caf::atom_constant<caf::atom("purge")>;
using space_atom = caf::atom_constant<caf::atom("space")>;
using open_atom = caf::atom_constant<caf::atom("open")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using shape_atom = caf::atom_constant<caf::atom("shape")>;
using bounced_atom = caf::atom_constant<caf::atom("bounced")>;
using recovered_atom = caf::atom_constant<caf::atom("recovered")>;
using replicate_atom = caf::atom_constant<caf::atom("replicate")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;

// -- messages and deliveries ----------------------------------------------------

/// The recipients of one message that route to one postoffice.
struct routed_recipients {
  std::string postoffice;
  std::vector<std::string> recipients;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, routed_recipients& x) {
  return f(caf::meta::type_name("routed_recipients"), x.postoffice,
           x.recipients);
}

/// A message received over SMTP, not yet committed to the queue.
struct incoming_message {
  /// Envelope sender (MAIL FROM), empty for the null sender <>.
  std::string sender;
  /// Header and body as it will be delivered (Received: already prepended).
  std::string content;
  std::int64_t received_at = 0;
  /// One delivery per postoffice the recipients route to.
  std::vector<routed_recipients> deliveries;
  /// cluster.replicas: the node that holds the replica of this message's
  /// deliveries. When set, the store does not announce the deliveries:
  /// whoever committed the replica does, so none is attempted before it
  /// exists.
  std::string replica_node = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, incoming_message& x) {
  return f(caf::meta::type_name("incoming_message"), x.sender, x.content,
           x.received_at, x.deliveries, x.replica_node);
}

/// A committed message as the queue holds it.
struct stored_message {
  std::string id;
  std::string sender;
  std::string content;
  std::int64_t received_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_message& x) {
  return f(caf::meta::type_name("stored_message"), x.id, x.sender, x.content,
           x.received_at);
}

/// Where a delivery stands (DESIGN.md, "Retry semantics").
enum class delivery_state : std::uint8_t {
  queued,
  in_flight,
  deferred,
  delivered,
  bounced,
  held,
};

/// Name of a state as stored and shown ("queued", "in_flight", ...).
const char* to_string(delivery_state state);

/// Parses a name written by to_string(); false when unknown.
bool from_string(const std::string& name, delivery_state& state);

/// The retry ledger of one delivery: one message's recipients at one
/// postoffice.
struct ledger_entry {
  std::int64_t delivery_id = 0;
  std::string message_id;
  std::string postoffice;
  std::vector<std::string> recipients;
  delivery_state state = delivery_state::queued;
  /// Retries granted after failures: a failed open (counted only under
  /// enforce_retry_limits) adds one to open_retries, a temporary transfer
  /// failure one to transfer_retries, until the count is at its limit; the
  /// next such failure bounces instead. So a count never passes its limit
  /// (unless a reload lowered the limit below it).
  std::int32_t open_retries = 0;
  std::int32_t transfer_retries = 0;
  /// Attempts made: opens tried, failed or not (counted in either mode; a
  /// requeue starts again at 0). The NDR's "N attempts" is this number.
  std::int32_t attempts = 0;
  /// Attempts made ahead of schedule (an operator's flush or release, the
  /// postoffice's recovery) that failed: they used no retry.
  std::int32_t unscheduled_failures = 0;
  /// An attempt had opened the postoffice and may have delivered when the
  /// server stopped before its outcome was recorded: failed opens no longer
  /// bounce it (only max_lifetime does) until an attempt opens again.
  bool in_doubt = false;
  std::int64_t queued_at = 0;
  std::int64_t first_attempt_at = 0;
  std::int64_t next_attempt_at = 0;
  /// Last failure: enhanced status or reply code ("4.4.1", "451") and text.
  std::string last_error_code;
  std::string last_error_text;
  /// A "delayed" DSN was sent for this delivery.
  bool delay_warned = false;
  /// Handed over by another node: the delivery key it had there (see
  /// delivery_key()); empty for a delivery first queued here.
  std::string origin;
  /// cluster.replicas: the node holding this delivery's replica, told of
  /// each change; empty when none does.
  std::string replica_node = {};
};

/// The name a delivery's maildir file is derived from, the same on every
/// node it passes through, so a delivery repeated on another node after a
/// lost acknowledgement replaces the file instead of duplicating it:
/// its origin when it was handed over, else "<message id>.<delivery id>"
/// (a single node) or "<node>.<message id>.<delivery id>" (a cluster, where
/// ids are only unique per node).
std::string delivery_key(const ledger_entry& entry, const std::string& node);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ledger_entry& x) {
  return f(caf::meta::type_name("ledger_entry"), x.delivery_id, x.message_id,
           x.postoffice, x.recipients, x.state, x.open_retries,
           x.transfer_retries, x.queued_at, x.first_attempt_at,
           x.next_attempt_at, x.last_error_code, x.last_error_text,
           x.delay_warned, x.origin, x.attempts, x.unscheduled_failures, x.in_doubt,
           x.replica_node);
}

/// One line of a delivery's attempt log.
struct attempt_record {
  std::int64_t delivery_id = 0;
  std::int64_t at = 0;
  /// What happened: "open_failed", "transfer_failed", "rejected",
  /// "delivered", "bounced", "held", "released", ...
  std::string outcome;
  std::string code;
  std::string text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_record& x) {
  return f(caf::meta::type_name("attempt_record"), x.delivery_id, x.at,
           x.outcome, x.code, x.text);
}

/// Where one recipient of a delivery stands after its last attempt.
enum class recipient_state : std::uint8_t {
  delivered,
  deferred,
  bounced,
};

/// Name of a recipient state as stored and shown ("delivered", ...).
const char* to_string(recipient_state state);

/// Parses a name written by to_string(); false when unknown.
bool from_string(const std::string& name, recipient_state& state);

/// What became of one recipient of a delivery, kept with the delivery until
/// its message leaves the queue: who received it, who was refused and why.
struct recipient_record {
  std::string address;
  recipient_state state = recipient_state::deferred;
  /// Enhanced status ("2.0.0", "4.2.1", "5.1.1").
  std::string code;
  /// The server's reply ("250 2.0.0 OK: message accepted"), where a maildir
  /// put it, or why it bounced.
  std::string text;
  /// Unix time of the decision.
  std::int64_t at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recipient_record& x) {
  return f(caf::meta::type_name("recipient_record"), x.address, x.state, x.code, x.text,
           x.at);
}

/// A ledger entry's new values with the attempt that changed them and what
/// it did to each recipient it decided.
struct ledger_change {
  ledger_entry entry;
  attempt_record attempt;
  std::vector<recipient_record> recipients;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ledger_change& x) {
  return f(caf::meta::type_name("ledger_change"), x.entry, x.attempt, x.recipients);
}

/// A committed message: its queue id and the deliveries it created.
struct accept_receipt {
  std::string id;
  std::vector<ledger_entry> deliveries;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accept_receipt& x) {
  return f(caf::meta::type_name("accept_receipt"), x.id, x.deliveries);
}

/// How far one round of removing finished messages got.
struct purge_report {
  /// The last message looked at; the next round continues after it.
  std::string last_examined;
  /// Messages removed (with their deliveries and attempts).
  std::uint32_t removed = 0;
  /// The round stopped at its size limit: more messages are waiting to be
  /// looked at.
  bool more = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, purge_report& x) {
  return f(caf::meta::type_name("purge_report"), x.last_examined, x.removed, x.more);
}

/// One delivery handed to a postoffice actor for an attempt.
/// (The postoffice actor reads the sender and content from the store.)
struct delivery_job {
  std::int64_t delivery_id = 0;
  std::string message_id;
  std::vector<std::string> recipients;
  /// Names the maildir file (delivery_key()).
  std::string key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_job& x) {
  return f(caf::meta::type_name("delivery_job"), x.delivery_id, x.message_id,
           x.recipients, x.key);
}

/// What became of one recipient in a transfer.
enum class recipient_result : std::uint8_t {
  delivered,
  temporary_failure,
  permanent_failure,
};

struct recipient_outcome {
  std::string address;
  recipient_result result = recipient_result::temporary_failure;
  /// Enhanced status ("2.0.0", "4.2.1", "5.1.1").
  std::string status;
  /// The server's reply or the reason, for the log and the NDR.
  std::string text;
  /// `text` is an SMTP/LMTP reply (Diagnostic-Code: smtp; ...).
  bool text_is_reply = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recipient_outcome& x) {
  return f(caf::meta::type_name("recipient_outcome"), x.address, x.result,
           x.status, x.text, x.text_is_reply);
}

/// The outcome of one attempt at one delivery: the postoffice could not be
/// opened, or it was and every recipient has a result.
struct delivery_outcome {
  std::int64_t delivery_id = 0;
  bool opened = false;
  /// Why the open failed ("4.4.1", "connection refused") when !opened.
  std::string status;
  std::string text;
  std::vector<recipient_outcome> recipients;
  /// Where it went: the share's path, or the server's host:port.
  std::string relay{};
  /// How long the open took, and the transfer of the batch it went in.
  std::int64_t open_micros = 0;
  std::int64_t transfer_micros = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_outcome& x) {
  return f(caf::meta::type_name("delivery_outcome"), x.delivery_id, x.opened,
           x.status, x.text, x.recipients, x.relay, x.open_micros, x.transfer_micros);
}

// -- cluster (actors/cluster.hpp) ------------------------------------------------

/// A node of the cluster: its name and the address its cluster actor is
/// published on.
struct cluster_member {
  std::string node;
  std::string address;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_member& x) {
  return f(caf::meta::type_name("cluster_member"), x.node, x.address);
}

/// A delivery handed from the node that queued it to its postoffice's
/// owner: the message and the ledger entry with its counts, so the retry
/// limits hold across the move. `delivery.origin` is the key that detects
/// a delivery handed over twice.
///
/// The same carries a replica (cluster.replicas): `from_node` holds the
/// delivery, and `delivery.origin` is its delivery key there.
struct handoff {
  std::string from_node;
  stored_message message;
  ledger_entry delivery;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handoff& x) {
  return f(caf::meta::type_name("handoff"), x.from_node, x.message, x.delivery);
}

/// The cluster as one node sees it: the live members and every
/// postoffice's owner.
struct cluster_report {
  std::string node;
  /// This node's standing: "member" (membership from heartbeats), or with
  /// cluster.etcd "owning", "joining" (the wait after registering) or
  /// "fenced" (it cannot prove it holds its lease).
  std::string state;
  /// Live members, this node included, by name.
  std::vector<cluster_member> members;
  /// Postoffice name -> owner node.
  std::map<std::string, std::string> owners;
  /// cluster.replicas: 1 or 2, and the mail accepted without a replica.
  std::uint32_t replicas = 1;
  std::uint64_t unreplicated = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_report& x) {
  return f(caf::meta::type_name("cluster_report"), x.node, x.state, x.members, x.owners,
           x.replicas, x.unreplicated);
}

/// One probe of a maildir root, for a share worker.
struct probe_job {
  std::string root;
  io_fault fault;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_job& x) {
  return f(caf::meta::type_name("probe_job"), x.root, x.fault);
}

/// One message for one maildir mailbox, for a share worker.
struct maildir_job {
  std::string root;
  bool create_mailboxes = false;
  /// Names the file, so a repeated delivery replaces instead of duplicating.
  std::string delivery_key;
  std::string sender;
  std::string recipient;
  std::string received_header;
  std::string content;
  io_fault fault;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, maildir_job& x) {
  return f(caf::meta::type_name("maildir_job"), x.root, x.create_mailboxes,
           x.delivery_key, x.sender, x.recipient, x.received_header, x.content,
           x.fault);
}

/// One message for an SMTP or LMTP server.
struct outgoing_mail {
  std::int64_t delivery_id = 0;
  /// Envelope sender, empty for the null sender <>.
  std::string sender;
  std::vector<std::string> recipients;
  /// Header and body, CRLF line endings, not dot-stuffed.
  std::string content;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outgoing_mail& x) {
  return f(caf::meta::type_name("outgoing_mail"), x.delivery_id, x.sender,
           x.recipients, x.content);
}

/// One SMTP/LMTP session for a share worker: connect, greet, send the
/// messages over one connection, quit. No messages: a probe.
struct mail_server_job {
  /// "host:port" of the server.
  std::string server;
  bool lmtp = false;
  /// Our name in EHLO/LHLO.
  std::string helo_name;
  /// Each step (connect, every reply) may take this long.
  std::int64_t step_timeout_seconds = 0;
  std::vector<outgoing_mail> messages;
  /// drop: the connection is cut in the middle of the first message's data.
  io_fault fault;
  tls_policy tls = tls_policy::none;
  /// verify: PEM file of the CAs to trust; empty: the system's.
  std::string tls_ca_file;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_server_job& x) {
  return f(caf::meta::type_name("mail_server_job"), x.server, x.lmtp, x.helo_name,
           x.step_timeout_seconds, x.messages, x.fault, x.tls, x.tls_ca_file);
}

/// What a mail server session came to: opened or why not, and one outcome
/// per message.
struct mail_server_result {
  bool opened = false;
  std::string problem;
  std::vector<delivery_outcome> outcomes;
  /// The session's TLS ("TLSv1.3 with cipher ..."); empty: plaintext.
  std::string tls;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_server_result& x) {
  return f(caf::meta::type_name("mail_server_result"), x.opened, x.problem,
           x.outcomes, x.tls);
}

/// How the open of an SMTP/LMTP session went; an opened session waits on
/// its share worker for its messages.
struct mail_server_opening {
  bool opened = false;
  /// Why it did not open.
  std::string problem;
  /// Enhanced status of the refusal ("4.7.10"), or "4.4.1" when none.
  std::string status;
  /// The session's TLS ("TLSv1.3 with cipher ..."); empty: plaintext.
  std::string tls;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_server_opening& x) {
  return f(caf::meta::type_name("mail_server_opening"), x.opened, x.problem, x.status,
           x.tls);
}

/// What the last probe or open of a postoffice found; unknown until the
/// first one has answered (a restart does not keep the state).
enum class reachability : std::uint8_t {
  unknown,
  up,
  down,
};

/// "unknown", "up" or "down", as the admin API and the metrics show it.
const char* to_string(reachability state);

/// A postoffice as the admin API shows it: its actor's last probe, and the
/// supervisor's counts of its deliveries.
struct postoffice_report {
  std::string name;
  std::string transport;
  reachability state = reachability::unknown;
  /// Why the last probe failed (or why the state is unknown); empty when up.
  std::string problem;
  /// Unix time the state last changed; while unknown, when its actor started.
  std::int64_t since = 0;
  std::int32_t queued = 0;
  std::int32_t held = 0;
  std::int32_t in_flight = 0;
  /// Failed opens counted against its queued deliveries.
  std::int32_t open_failures = 0;
  /// smtp / lmtp: the TLS of its last session that opened; empty:
  /// plaintext (or none yet).
  std::string tls;
  /// When its oldest unfinished delivery was queued; 0 when it has none.
  std::int64_t oldest_queued_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, postoffice_report& x) {
  return f(caf::meta::type_name("postoffice_report"), x.name, x.transport, x.state,
           x.problem, x.since, x.queued, x.held, x.in_flight, x.open_failures, x.tls,
           x.oldest_queued_at);
}

/// One recipient bounced: when, at which postoffice, with which status and
/// why (the supervisor keeps the last few for the status page).
struct bounce_report {
  std::int64_t at = 0;
  std::string message_id;
  std::string postoffice;
  std::string recipient;
  /// Class 5 status ("5.4.1", "5.1.1").
  std::string status;
  std::string diagnostic;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bounce_report& x) {
  return f(caf::meta::type_name("bounce_report"), x.at, x.message_id, x.postoffice,
           x.recipient, x.status, x.diagnostic);
}

/// How many attempts ended how at a postoffice ("delivered", "open_failed",
/// "transfer_failed", "rejected", "expired", ...), or, for NDRs, how many
/// recipients bounced with which status (postoffice empty).
struct outcome_count {
  std::string postoffice;
  std::string outcome;
  std::uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outcome_count& x) {
  return f(caf::meta::type_name("outcome_count"), x.postoffice, x.outcome, x.count);
}

/// Which unfinished deliveries a queue listing, a queue shape or an
/// operator's verb (hold, release, flush, delete, requeue) selects: each
/// field that is set narrows the selection; none set selects every one.
struct delivery_filter {
  /// Only this postoffice's; empty: any.
  std::string postoffice;
  /// Only those in this state as shown (a delivery_state name; in_flight:
  /// an attempt under way); empty: any.
  std::string state;
  /// With only_messages, only the deliveries of these messages.
  std::vector<std::string> message_ids;
  bool only_messages = false;
  /// Only those with a recipient whose address contains this text, in any
  /// case; empty: any.
  std::string recipient;
  /// Only those queued at or before this Unix time; 0: any.
  std::int64_t queued_before = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_filter& x) {
  return f(caf::meta::type_name("delivery_filter"), x.postoffice, x.state, x.message_ids,
           x.only_messages, x.recipient, x.queued_before);
}

/// The filter of the per-message verbs: every delivery of one message.
delivery_filter message_filter(const std::string& message_id);

/// True when `filter` narrows nothing: it selects every delivery.
bool selects_everything(const delivery_filter& filter);

/// Which page of the deliveries a filter selects the admin API's /queue
/// lists, oldest first (queued time, then delivery id).
struct queue_query {
  delivery_filter filter;
  /// With after_delivery, only those after that delivery (queued at
  /// after_queued_at) in the listing's order: the page after one already
  /// read, which stays right while deliveries leave the queue.
  std::int64_t after_queued_at = 0;
  std::int64_t after_delivery = 0;
  std::uint64_t offset = 0;
  std::uint64_t limit = 100;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_query& x) {
  return f(caf::meta::type_name("queue_query"), x.filter, x.after_queued_at, x.after_delivery,
           x.offset, x.limit);
}

/// One page of the deliveries a queue_query selects, and how many it
/// selects in all.
struct queue_page {
  std::uint64_t total = 0;
  std::vector<ledger_entry> deliveries;
  /// More deliveries follow this page.
  bool more = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_page& x) {
  return f(caf::meta::type_name("queue_page"), x.total, x.deliveries, x.more);
}

/// What an operator's verb did to the deliveries its filter selected.
struct verb_tally {
  /// Deliveries changed: held (also those held once their attempt ends),
  /// released, made due, moved, or ended with their messages (delete).
  std::uint32_t deliveries = 0;
  /// delete: the messages removed (or whose deliveries bounced).
  std::uint32_t messages = 0;
  /// Selected deliveries with an attempt under way: hold holds them when
  /// it ends (they are in `deliveries`); flush, requeue and delete leave
  /// them alone (delete: their whole messages).
  std::uint32_t in_flight = 0;
  /// Why nothing was done (requeue: no such postoffice); empty: done.
  std::string refused;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verb_tally& x) {
  return f(caf::meta::type_name("verb_tally"), x.deliveries, x.messages, x.in_flight,
           x.refused);
}

/// Upper bounds (seconds since queued) of the age buckets of a queue
/// shape, Postfix qshape's: 5, 10, 20, ... 1280 minutes; a last bucket
/// takes everything older.
constexpr std::int64_t queue_age_bounds[] = {300,  600,   1200,  2400,  4800,
                                             9600, 19200, 38400, 76800};

/// The ages of one postoffice's unfinished deliveries.
struct queue_shape {
  std::string postoffice;
  /// Deliveries by age: queued at most queue_age_bounds[i] seconds ago
  /// (and more than the bound before), then the older ones.
  std::vector<std::uint64_t> ages;
  /// When its oldest delivery was queued.
  std::int64_t oldest_queued_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_shape& x) {
  return f(caf::meta::type_name("queue_shape"), x.postoffice, x.ages, x.oldest_queued_at);
}

/// How many unfinished deliveries of a postoffice are in one state.
struct queue_depth {
  std::string postoffice;
  delivery_state state = delivery_state::queued;
  std::uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_depth& x) {
  return f(caf::meta::type_name("queue_depth"), x.postoffice, x.state, x.count);
}

/// Upper bounds (seconds) of the store's commit latency histogram buckets;
/// a last bucket takes everything slower.
constexpr double commit_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,  0.1,    0.25,  0.5,  1.0};

/// Counters of the store, for benchmarks and metrics.
struct store_status {
  /// Transactions committed since start.
  std::uint64_t commits = 0;
  /// Write requests acknowledged since start.
  std::uint64_t writes = 0;
  /// Write requests that failed (and were answered with an error).
  std::uint64_t failed_writes = 0;
  /// Messages committed from SMTP (NDRs and delay warnings not included).
  std::uint64_t messages_accepted = 0;
  /// Finished messages removed after their retention (server.keep_finished).
  std::uint64_t messages_purged = 0;
  /// Messages refused because the queue's disk was below its reserve
  /// (server.min_free_space).
  std::uint64_t messages_refused_low_space = 0;
  /// Bytes free on the queue's disk when the store last looked (it looks
  /// before each commit of new mail); 0 before the first look.
  std::uint64_t free_bytes = 0;
  /// Commits per latency bucket (commit_latency_bounds, then the rest), and
  /// the seconds they took in all.
  std::vector<std::uint64_t> commit_latency_buckets;
  double commit_seconds = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_status& x) {
  return f(caf::meta::type_name("store_status"), x.commits, x.writes,
           x.failed_writes, x.messages_accepted, x.messages_purged,
           x.messages_refused_low_space, x.free_bytes, x.commit_latency_buckets, x.commit_seconds);
}

// -- errors ---------------------------------------------------------------------

/// Errors of the store, category atom "store".
enum class store_errc : std::uint8_t {
  /// The transaction could not be committed (disk full, I/O error).
  commit_failed = 1,
  /// The request itself was refused (constraint, unknown delivery).
  rejected,
  /// No such message or delivery.
  not_found,
  /// Reading the queue failed (I/O error, corrupt file).
  read_failed,
  /// New mail refused: the queue's disk is below its reserve.
  low_space,
  /// New mail refused (cluster.replicas): no other live node took its
  /// replica.
  no_replica,
};

/// An error of the store with a human-readable detail ("disk I/O error").
caf::error make_error(store_errc code, std::string detail);

/// True when `err` is the store's error `code`.
bool is_store_error(const caf::error& err, store_errc code);

} // namespace postconn
