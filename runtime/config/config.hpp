// NAME
//   config -- postconn's configuration: the TOML schema, its defaults and its
//   validation.
//
// DESCRIPTION
//   Every key of DESIGN.md's config section lives here next to its default.
//   parse_config() reads TOML text, checks every key, and reports one line per
//   problem naming the key (`postoffice[2].path: ...`). Unknown keys are
//   problems, never silently ignored. A postoffice's retry policy is, key by
//   key, what its `[postoffice.retry]` sets, else what `[retry]` sets, else
//   its transport's default (default_retry()); the result is stored
//   resolved, so callers never merge policies themselves. Every struct
//   compares with ==, field by field (config_writer.hpp writes a config
//   back out as TOML).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/fault.hpp"
#include "messages/policy.hpp"

namespace postconn {

enum class transport_kind { maildir, smtp, lmtp };

// The policy words live in messages/, which has no use for comparing them;
// the config does (a config written out and read back must be equal).
inline bool operator==(const retry_policy& a, const retry_policy& b) {
  return a.max_open_retries == b.max_open_retries && a.open_interval == b.open_interval
         && a.max_transfer_retries == b.max_transfer_retries
         && a.transfer_interval == b.transfer_interval
         && a.max_transfer_interval == b.max_transfer_interval
         && a.enforce_retry_limits == b.enforce_retry_limits
         && a.max_lifetime == b.max_lifetime && a.delay_warning == b.delay_warning
         && a.recovery_probe_interval == b.recovery_probe_interval
         && a.recovery_rate == b.recovery_rate;
}

inline bool operator==(const fault_config& a, const fault_config& b) {
  return a.mode == b.mode && a.probability == b.probability && a.seed == b.seed
         && a.recipients == b.recipients && a.latency == b.latency && a.up == b.up
         && a.down == b.down;
}

/// Name of a transport as written in the config ("maildir", "smtp", "lmtp").
std::string_view to_string(transport_kind kind);

/// The retry policy of a postoffice of `kind` where neither [retry] nor its
/// [postoffice.retry] sets a key. maildir: the seed's (retry_policy's
/// defaults, made for MS Mail shares: a temporary failure is tried again
/// twice, 120 s apart). smtp and lmtp: a 4xx (greylisting, a full mailbox)
/// backs off as in Postfix, from 5 min (minimal_backoff_time 300s) doubling
/// up to 4000 s (maximal_backoff_time), for 120 retries: about 5.4 days,
/// so max_lifetime (5d, Postfix's maximal_queue_lifetime) ends it first.
retry_policy default_retry(transport_kind kind);

/// The file a maildir postoffice's root holds; an unmounted share's empty
/// mount point does not, so the server probes it as down.
constexpr std::string_view maildir_marker = ".postoffice";

struct postoffice_config {
  /// Unique name, [a-z0-9_-]+.
  std::string name;
  /// Recipient domains routed here, lower-cased.
  std::vector<std::string> domains;
  transport_kind transport = transport_kind::maildir;
  /// maildir: root directory of the postoffice (a share's mount point).
  std::filesystem::path path;
  /// maildir: create a missing mailbox instead of failing with 5.1.1.
  bool create_mailboxes = false;
  /// smtp / lmtp: "host:port" of the server.
  std::string address;
  /// smtp / lmtp: STARTTLS towards the server (see tls_policy).
  tls_policy tls = tls_policy::none;
  /// smtp / lmtp with tls = verify: PEM file of the CAs to trust; empty:
  /// the system's.
  std::filesystem::path tls_ca_file;
  /// Takes every domain no other postoffice claims (at most one).
  bool is_default = false;
  /// Budget for one probe / open.
  std::chrono::seconds probe_timeout{10};
  /// Its transport's default_retry() with the keys [retry] sets, then those
  /// of its [postoffice.retry], applied.
  retry_policy retry;
  /// [postoffice.fault]: the fault injected over the real transport.
  fault_config fault;
  /// Cluster only: the node that owns it while that node is up; empty: the
  /// live node rendezvous hashing picks (runtime/cluster/ownership.hpp).
  std::string owner;

  bool operator==(const postoffice_config& other) const {
    return name == other.name && domains == other.domains && transport == other.transport
           && path == other.path && create_mailboxes == other.create_mailboxes
           && address == other.address && tls == other.tls
           && tls_ca_file == other.tls_ca_file && is_default == other.is_default
           && probe_timeout == other.probe_timeout && retry == other.retry
           && fault == other.fault && owner == other.owner;
  }
};

struct server_config {
  /// Banner, Received, Reporting-MTA, MAILER-DAEMON@.
  std::string hostname = "localhost";
  /// The queue database lives here.
  std::filesystem::path data_dir = "var";
  /// spdlog level name: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
  /// A message whose deliveries all finished stays this long after its
  /// last attempt (for the admin API), then is removed; 0: at once.
  std::chrono::seconds keep_finished{24 * 3600};
  /// Bytes kept free on the queue's disk for the mail already queued
  /// (ledger changes, NDRs): below it new mail gets 452 4.3.1; 0: none.
  std::uint64_t min_free_space = 100 * 1024 * 1024;
  /// On SIGTERM, how long the attempts under way may take to end and be
  /// recorded before the server exits anyway; 0: exit at once.
  std::chrono::seconds shutdown_grace{30};

  bool operator==(const server_config& other) const {
    return hostname == other.hostname && data_dir == other.data_dir
           && log_level == other.log_level && keep_finished == other.keep_finished
           && min_free_space == other.min_free_space
           && shutdown_grace == other.shutdown_grace;
  }
};

struct smtp_config {
  /// "host:port" of the SMTP listener.
  std::string listen = "127.0.0.1:2525";
  /// Bytes; advertised as SIZE.
  std::uint64_t max_message_size = 35882577;
  std::uint32_t max_recipients = 1000;
  /// Open SMTP connections at most, in all and from one client address;
  /// one more is answered 421 4.7.0 and closed.
  std::uint32_t max_connections = 500;
  std::uint32_t max_connections_per_client = 20;
  /// A client silent this long, or sending one command line for this long,
  /// is disconnected with 421 4.4.2.
  std::chrono::seconds idle_timeout{300};
  /// The whole DATA phase (354 to the final dot) must end within this, or
  /// the client gets 421 4.4.2 and the message is not queued.
  std::chrono::seconds data_timeout{600};
  /// Unfinished deliveries in the queue at which MAIL FROM is answered
  /// 452 4.3.1 until the queue is back under 90 % of it.
  std::uint64_t queue_high_water = 1000000;
  /// PEM files of the certificate (chain) and key for STARTTLS; both empty:
  /// no STARTTLS.
  std::filesystem::path tls_certificate;
  std::filesystem::path tls_key;
  /// CIDR networks allowed to relay, e.g. "127.0.0.0/8", "::1/128".
  std::vector<std::string> relay_networks{"127.0.0.0/8", "::1/128"};

  bool operator==(const smtp_config& other) const {
    return listen == other.listen && max_message_size == other.max_message_size
           && max_recipients == other.max_recipients
           && max_connections == other.max_connections
           && max_connections_per_client == other.max_connections_per_client
           && idle_timeout == other.idle_timeout && data_timeout == other.data_timeout
           && queue_high_water == other.queue_high_water
           && tls_certificate == other.tls_certificate && tls_key == other.tls_key
           && relay_networks == other.relay_networks;
  }
};

struct admin_config {
  /// "host:port" of the admin HTTP API.
  std::string listen = "127.0.0.1:8025";
  /// A file holding the bearer token every request must carry; empty: none.
  std::filesystem::path token_file;

  bool operator==(const admin_config& other) const {
    return listen == other.listen && token_file == other.token_file;
  }
};

/// [cluster]: this node's place among the nodes that share the postoffices.
struct cluster_config {
  /// This node's name, [a-z0-9-]+, unique in the cluster; it names the
  /// node's maildir files, so it must not change while mail is queued.
  std::string node;
  /// "host:port" the cluster actor is published on; peers connect here.
  std::string listen;
  /// "host:port" of other nodes to join at start (the cluster listen
  /// addresses); members learn the rest from each other.
  std::vector<std::string> seeds;
  /// Wait between attempts to reach a seed or a lost member, and before a
  /// failed handoff is tried again.
  std::chrono::seconds reconnect_interval{5};
  /// A peer silent this long (no heartbeat) is declared lost.
  std::chrono::seconds peer_timeout{10};
  /// etcd endpoints, "host:port" or "http://host:port", one per etcd
  /// member: membership, ownership and fencing come from etcd
  /// (actors/cluster.hpp). Empty: from peer heartbeats, without quorum.
  std::vector<std::string> etcd;
  /// The TTL of this node's etcd lease: a node that cannot renew it stops
  /// delivering before it runs out, and the others take its postoffices
  /// over once it has.
  std::chrono::seconds lease_ttl{10};
  /// Nodes that hold each accepted message before its 250: 1 (the
  /// accepting node) or 2 (it and one other live node, so the mail
  /// survives the loss of either with its disk). 2 needs cluster.etcd.
  std::uint32_t replicas = 1;
  /// How long a node is gone from etcd's members before the nodes holding
  /// replicas of its deliveries adopt them (`postconn cluster forget`
  /// adopts at once).
  std::chrono::seconds adopt_after{300};
  /// With replicas = 2 and no other live node to hold a replica: refuse
  /// mail with 451 4.3.0 (false, cluster.without_replica = "refuse") or
  /// accept it unreplicated, logged and counted (true, "accept").
  bool accept_unreplicated = false;

  bool operator==(const cluster_config& other) const {
    return node == other.node && listen == other.listen && seeds == other.seeds
           && reconnect_interval == other.reconnect_interval
           && peer_timeout == other.peer_timeout && etcd == other.etcd
           && lease_ttl == other.lease_ttl && replicas == other.replicas
           && adopt_after == other.adopt_after
           && accept_unreplicated == other.accept_unreplicated;
  }
};

/// A node's name as cluster.node has it: [a-z0-9-]+.
bool is_node_name(std::string_view name);

/// The shortest cluster.lease_ttl: etcd's own minimum with its default
/// election timeout (1 s) is 2 s.
constexpr std::chrono::seconds min_lease_ttl{2};

/// "http://host:port" for an entry of cluster.etcd.
std::string etcd_url(const std::string& endpoint);

/// The token in `file` (surrounding white space removed), or why there is
/// none: unreadable, or empty.
struct token_result {
  std::string token;
  std::string problem;
};
token_result read_token_file(const std::filesystem::path& file);

struct config {
  server_config server;
  smtp_config smtp;
  /// The global [retry] table over the seed's defaults (its keys are
  /// already applied to every postoffice); the policy of deliveries whose
  /// postoffice is not configured.
  retry_policy retry;
  admin_config admin;
  std::vector<postoffice_config> postoffices;
  /// Absent: a single node owning every postoffice.
  std::optional<cluster_config> cluster;

  bool operator==(const config& other) const {
    return server == other.server && smtp == other.smtp && retry == other.retry
           && admin == other.admin && postoffices == other.postoffices
           && cluster == other.cluster;
  }
};

/// A parsed config, or the problems that kept it from being one.
struct config_result {
  std::optional<config> value;
  /// One line per problem, each starting with the key: "retry.open_interval: ...".
  std::vector<std::string> problems;
};

class table_reader;

/// The keys a [retry] table (or a [postoffice.retry]) sets, applied over `retry`.
void read_retry(table_reader in, retry_policy& retry);

/// The keys of a [postoffice.fault] table: one mode and the keys it uses.
void read_fault(table_reader in, fault_config& fault);

/// Parses TOML text. `source` names the input in syntax-error lines.
config_result parse_config(std::string_view toml_text, std::string_view source);

/// Reads and parses a config file; an unreadable file is one problem.
config_result load_config_file(const std::filesystem::path& file);

/// "90s", "10m", "24h", "5d", "0", or a bare integer count of seconds.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

/// Splits "host:port" or "[v6]:port". Empty optional when malformed.
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<listen_address> parse_listen_address(std::string_view text);

} // namespace postconn
