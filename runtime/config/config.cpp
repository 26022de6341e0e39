// NAME
//   config -- reading and validating postconn's TOML config (see config.hpp).
//
// DESCRIPTION
//   Each section is read with a table_reader (toml_table.hpp), so every
//   problem line names its key and one run reports them all. Rules that
//   span postoffices (unique names, domains claimed once, one default) run
//   after every postoffice has been read.
#include "runtime/config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <toml++/toml.h>

#include "runtime/mail/address.hpp"
#include "runtime/config/toml_table.hpp"
#include "runtime/mail/network_list.hpp"

namespace postconn {

namespace {

constexpr std::string_view log_levels[]
  = {"trace", "debug", "info", "warn", "error", "critical", "off"};


constexpr transport_kind transports[]
  = {transport_kind::maildir, transport_kind::smtp, transport_kind::lmtp};




bool is_ipv6(std::string_view text) {
  in6_addr ignored;
  return inet_pton(AF_INET6, std::string{text}.c_str(), &ignored) == 1;
}

/// 0 to 65535: a listener given port 0 binds a free one and logs it.
std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  if (!is_digits(text) || text.size() > 5)
    return std::nullopt;
  std::from_chars(text.data(), text.data() + text.size(), port);
  if (port > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

/// An address others connect to needs its port known in advance: port 0
/// is refused there.
void read_connect_address(table_reader& in, std::string_view key, std::string& out) {
  if (in.read_listen(key, out) && parse_listen_address(out)->port == 0)
    in.problem(key, "port 0 is not allowed here (others connect to this address)");
}


void read_server(table_reader in, server_config& server) {
  in.reject_unknown_keys(
    {"hostname", "data_dir", "log_level", "keep_finished", "min_free_space", "shutdown_grace"});
  if (in.read("hostname", server.hostname) && !is_domain(server.hostname))
    in.problem("hostname", "invalid host name " + in_quotes(server.hostname)
                             + " (letters, digits, - and . only, e.g. "
                               "\"mx.example.com\")");
  if (std::string data_dir; in.read("data_dir", data_dir)) {
    if (data_dir.empty())
      in.problem("data_dir", "must not be empty");
    else
      server.data_dir = data_dir;
  }
  auto& level = server.log_level;
  if (in.read("log_level", level)
      && std::find(std::begin(log_levels), std::end(log_levels), level)
           == std::end(log_levels))
    in.problem("log_level", "unknown level " + in_quotes(level)
                              + " (trace, debug, info, warn, error, critical or off)");
  in.read_duration("keep_finished", server.keep_finished, zero_duration::allowed);
  in.read("min_free_space", server.min_free_space, 0);
  in.read_duration("shutdown_grace", server.shutdown_grace, zero_duration::allowed);
}

/// tls_certificate and tls_key: both or neither.
void read_tls_files(table_reader& in, smtp_config& smtp) {
  for (auto [key, file] : {std::pair{"tls_certificate", &smtp.tls_certificate},
                           std::pair{"tls_key", &smtp.tls_key}}) {
    if (std::string path; in.read(key, path)) {
      if (path.empty())
        in.problem(key, "must not be empty (leave it out for no STARTTLS)");
      *file = path;
    }
  }
  if (smtp.tls_certificate.empty() != smtp.tls_key.empty())
    in.problem(smtp.tls_key.empty() ? "tls_key" : "tls_certificate",
               "missing: STARTTLS needs both tls_certificate and tls_key");
}

void read_smtp(table_reader in, smtp_config& smtp) {
  in.reject_unknown_keys(
    {"listen", "max_message_size", "max_recipients", "max_connections",
     "max_connections_per_client", "idle_timeout", "data_timeout", "queue_high_water",
     "relay_networks", "tls_certificate", "tls_key"});
  in.read_listen("listen", smtp.listen);
  in.read("max_message_size", smtp.max_message_size, 1);
  in.read("max_recipients", smtp.max_recipients, 1);
  in.read("max_connections", smtp.max_connections, 1);
  in.read("max_connections_per_client", smtp.max_connections_per_client, 1);
  in.read_duration("idle_timeout", smtp.idle_timeout, zero_duration::refused);
  in.read_duration("data_timeout", smtp.data_timeout, zero_duration::refused);
  in.read("queue_high_water", smtp.queue_high_water, 1);
  read_tls_files(in, smtp);
  std::vector<std::string> networks;
  if (in.read("relay_networks", networks)) {
    auto parsed = network_list::parse(networks);
    in.add_problems(parsed.problems);
    if (parsed.value)
      smtp.relay_networks = std::move(networks);
  }
}

} // namespace

/// [retry], or the keys of a [postoffice.retry] applied over `retry`.
void read_retry(table_reader in, retry_policy& retry) {
  in.reject_unknown_keys({"max_open_retries", "open_interval", "max_transfer_retries",
                          "transfer_interval", "max_transfer_interval",
                          "enforce_retry_limits", "max_lifetime", "delay_warning",
                          "recovery_probe_interval", "recovery_rate"});
  in.read("max_open_retries", retry.max_open_retries, 0);
  in.read_duration("open_interval", retry.open_interval, zero_duration::refused);
  in.read("max_transfer_retries", retry.max_transfer_retries, 0);
  in.read_duration("transfer_interval", retry.transfer_interval, zero_duration::refused);
  in.read_duration("max_transfer_interval", retry.max_transfer_interval,
                   zero_duration::allowed);
  in.read("enforce_retry_limits", retry.enforce_retry_limits);
  in.read_duration("max_lifetime", retry.max_lifetime, zero_duration::allowed);
  in.read_duration("delay_warning", retry.delay_warning, zero_duration::allowed);
  in.read_duration("recovery_probe_interval", retry.recovery_probe_interval,
                   zero_duration::allowed);
  in.read("recovery_rate", retry.recovery_rate, 1);
}

bool is_node_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

namespace {

constexpr const char* node_name_rule = "use lower-case letters, digits and -";

constexpr std::string_view http_scheme = "http://";

/// cluster.etcd: "host:port" or "http://host:port", each once.
void read_etcd_endpoints(table_reader& in, cluster_config& cluster) {
  if (!in.read("etcd", cluster.etcd))
    return;
  if (cluster.etcd.empty())
    in.problem("etcd", "empty (leave it out for membership from peer heartbeats)");
  for (std::size_t i = 0; i < cluster.etcd.size(); ++i) {
    auto key = "etcd[" + std::to_string(i) + "]";
    std::string_view text = cluster.etcd[i];
    if (text.rfind("https://", 0) == 0) {
      in.problem(key, "https is not supported (etcd's JSON gateway over http only)");
      continue;
    }
    if (text.rfind(http_scheme, 0) == 0)
      text.remove_prefix(http_scheme.size());
    if (auto where = parse_listen_address(text); !where || where->port == 0)
      in.problem(key, "invalid etcd endpoint " + in_quotes(cluster.etcd[i])
                        + " (use host:port, e.g. \"10.0.0.5:2379\")");
    for (std::size_t j = 0; j < i; ++j)
      if (etcd_url(cluster.etcd[j]) == etcd_url(cluster.etcd[i]))
        in.problem(key, "endpoint " + in_quotes(cluster.etcd[i]) + " is also etcd["
                          + std::to_string(j) + "]");
  }
}

/// The keys of replicated acceptance. replicas = 2 needs cluster.etcd:
/// without its quorum nothing tells a node gone from one cut off, and both
/// sides of a partition would adopt the other's deliveries. adopt_after is
/// checked with replicas = 2 only, where it has an effect: a node that
/// restarts, or loses etcd for a moment, is back within about a lease's
/// time, and adopting its deliveries before then would deliver them twice.
void read_replication(table_reader& in, cluster_config& cluster) {
  if (const auto* node = in.get("replicas")) {
    const auto* number = node->as_integer();
    if (number && (number->get() == 1 || number->get() == 2))
      cluster.replicas = static_cast<std::uint32_t>(number->get());
    else
      in.problem("replicas", "must be 1 (the accepting node alone) or 2 (it and one other "
                             "live node), got "
                               + (number ? std::to_string(number->get()) : type_name(*node)));
  }
  if (cluster.replicas == 2 && cluster.etcd.empty())
    in.problem("replicas", "2 needs cluster.etcd (only etcd's quorum can tell a node gone "
                           "from one cut off; else both sides of a partition would adopt)");
  in.read_duration("adopt_after", cluster.adopt_after, zero_duration::refused);
  if (cluster.replicas == 2 && cluster.adopt_after < 2 * cluster.lease_ttl)
    in.problem("adopt_after", "must be at least twice lease_ttl ("
                                + std::to_string(2 * cluster.lease_ttl.count()) + "s), got "
                                + std::to_string(cluster.adopt_after.count()) + "s");
  if (std::string choice; in.read("without_replica", choice)) {
    if (choice == "refuse" || choice == "accept")
      cluster.accept_unreplicated = choice == "accept";
    else
      in.problem("without_replica",
                 "unknown choice " + in_quotes(choice) + " (refuse or accept)");
  }
}

cluster_config read_cluster(table_reader in) {
  in.reject_unknown_keys({"node", "listen", "seeds", "reconnect_interval", "peer_timeout",
                          "etcd", "lease_ttl", "replicas", "adopt_after", "without_replica"});
  cluster_config cluster;
  if (in.require("node", "this node's name in the cluster") && in.read("node", cluster.node)
      && !is_node_name(cluster.node))
    in.problem("node", "invalid node name " + in_quotes(cluster.node) + " (" + node_name_rule
                         + ")");
  if (in.require("listen", "the host:port peers connect to"))
    read_connect_address(in, "listen", cluster.listen);
  if (in.read("seeds", cluster.seeds))
    for (std::size_t i = 0; i < cluster.seeds.size(); ++i)
      if (auto seed = parse_listen_address(cluster.seeds[i]); !seed || seed->port == 0)
        in.problem("seeds[" + std::to_string(i) + "]",
                   "invalid address " + in_quotes(cluster.seeds[i])
                     + " (use host:port, e.g. \"10.0.0.2:4200\")");
  in.read_duration("reconnect_interval", cluster.reconnect_interval, zero_duration::refused);
  in.read_duration("peer_timeout", cluster.peer_timeout, zero_duration::refused);
  read_etcd_endpoints(in, cluster);
  if (in.read_duration("lease_ttl", cluster.lease_ttl, zero_duration::refused)
      && cluster.lease_ttl < min_lease_ttl)
    in.problem("lease_ttl", "must be at least " + std::to_string(min_lease_ttl.count())
                              + "s (etcd's shortest lease), got "
                              + std::to_string(cluster.lease_ttl.count()) + "s");
  read_replication(in, cluster);
  return cluster;
}

void read_admin(table_reader in, admin_config& admin) {
  in.reject_unknown_keys({"listen", "token_file"});
  in.read_listen("listen", admin.listen);
  std::string token_file;
  if (in.read("token_file", token_file)) {
    if (token_file.empty())
      in.problem("token_file", "must not be empty (leave it out for no token)");
    admin.token_file = token_file;
  }
}

/// Lower-cases and checks the domains; only a default may have none.
void read_domains(table_reader& in, postoffice_config& po) {
  auto why = std::string{"a postoffice needs domains unless it is the default"};
  if (!po.is_default && !in.require("domains", why))
    return;
  if (!in.read("domains", po.domains))
    return;
  if (po.domains.empty() && !po.is_default)
    in.problem("domains", "empty (" + why + ")");
  for (std::size_t i = 0; i < po.domains.size(); ++i) {
    po.domains[i] = lower_cased(po.domains[i]);
    if (!is_domain(po.domains[i]))
      in.problem("domains[" + std::to_string(i) + "]",
                 "invalid domain " + in_quotes(po.domains[i]));
  }
}

std::optional<transport_kind> read_transport(table_reader& in) {
  std::string name;
  if (!in.require("transport", "maildir, smtp or lmtp") || !in.read("transport", name))
    return std::nullopt;
  for (auto kind : transports)
    if (to_string(kind) == name)
      return kind;
  in.problem("transport", "unknown transport " + in_quotes(name) + " (maildir, smtp or lmtp)");
  return std::nullopt;
}

void read_maildir_keys(table_reader& in, postoffice_config& po) {
  std::string root;
  if (in.require("path", "the root directory of a maildir postoffice")
      && in.read("path", root) && root.empty())
    in.problem("path", "must not be empty");
  po.path = root;
  in.read("create_mailboxes", po.create_mailboxes);
  for (auto key : {"address", "tls", "tls_ca_file"})
    if (in.has(key))
      in.problem(key, "only for smtp and lmtp postoffices");
}

void read_tls_keys(table_reader& in, postoffice_config& po) {
  if (std::string policy; in.read("tls", policy)) {
    if (policy == "none")
      po.tls = tls_policy::none;
    else if (policy == "may")
      po.tls = tls_policy::may;
    else if (policy == "verify")
      po.tls = tls_policy::verify;
    else
      in.problem("tls", "unknown TLS policy " + in_quotes(policy) + " (none, may or verify)");
  }
  std::string ca_file;
  if (!in.read("tls_ca_file", ca_file))
    return;
  if (po.tls != tls_policy::verify)
    in.problem("tls_ca_file", "only with tls = \"verify\"");
  else if (ca_file.empty() || !std::ifstream{ca_file})
    in.problem("tls_ca_file", "cannot read " + in_quotes(ca_file));
  po.tls_ca_file = ca_file;
}

void read_mail_server_keys(table_reader& in, postoffice_config& po) {
  for (auto key : {"path", "create_mailboxes"})
    if (in.has(key))
      in.problem(key, "only for maildir postoffices");
  auto server = std::string{to_string(po.transport)} + " server";
  if (in.require("address", "host:port of the " + server))
    read_connect_address(in, "address", po.address);
  read_tls_keys(in, po);
}

} // namespace

/// [postoffice.fault]: one mode and the keys that mode uses.
void read_fault(table_reader in, fault_config& fault) {
  in.reject_unknown_keys({"mode", "probability", "seed", "recipients", "latency", "up", "down"});
  std::string mode;
  if (in.require("mode", "the fault to inject (" + fault_mode_names() + ")")
      && in.read("mode", mode)) {
    if (auto parsed = parse_fault_mode(mode))
      fault.mode = *parsed;
    else
      in.problem("mode", "unknown fault " + in_quotes(mode) + " (" + fault_mode_names()
                           + " or none)");
  }
  in.read_probability("probability", fault.probability);
  in.read("seed", fault.seed, 0);
  if (in.read("recipients", fault.recipients))
    for (auto& rcpt : fault.recipients)
      std::transform(rcpt.begin(), rcpt.end(), rcpt.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  in.read_duration("latency", fault.latency, zero_duration::allowed);
  in.read_duration("up", fault.up, zero_duration::refused);
  in.read_duration("down", fault.down, zero_duration::refused);
  auto only_for = [&](const char* key, std::initializer_list<fault_mode> modes,
                      const char* which) {
    if (in.has(key) && std::find(modes.begin(), modes.end(), fault.mode) == modes.end())
      in.problem(key, std::string{"only for "} + which);
  };
  only_for("recipients", {fault_mode::permfail}, "mode = \"permfail\"");
  only_for("latency", {fault_mode::slow, fault_mode::hang}, "mode = \"slow\" or \"hang\"");
  only_for("up", {fault_mode::flap}, "mode = \"flap\"");
  only_for("down", {fault_mode::flap}, "mode = \"flap\"");
  if (fault.mode == fault_mode::slow)
    in.require("latency", "how much later each share call starts");
  if (fault.mode == fault_mode::flap) {
    in.require("up", "how long the postoffice stays up");
    in.require("down", "how long the postoffice stays down");
  }
}

namespace {

/// A postoffice's policy: its transport's defaults, the keys [retry] sets
/// over them (`global`, whose problems were reported when it was read),
/// then the keys of its own [postoffice.retry].
retry_policy resolve_retry(transport_kind kind, const std::optional<table_reader>& global,
                           std::optional<table_reader> own) {
  auto policy = default_retry(kind);
  if (global) {
    std::vector<std::string> reported_already;
    read_retry(global->recording_into(reported_already), policy);
  }
  if (own)
    read_retry(*own, policy);
  return policy;
}

postoffice_config read_postoffice(table_reader in, const std::optional<table_reader>& global) {
  in.reject_unknown_keys({"name", "domains", "transport", "path", "create_mailboxes",
                          "address", "tls", "tls_ca_file", "default", "probe_timeout",
                          "retry", "fault", "owner"});
  postoffice_config po;
  if (in.require("name", "every postoffice needs one") && in.read("name", po.name)
      && !is_plain_name(po.name))
    in.problem("name", "invalid name " + in_quotes(po.name)
                         + " (use lower-case letters, digits, _ and -)");
  in.read("default", po.is_default);
  read_domains(in, po);
  if (auto transport = read_transport(in)) {
    po.transport = *transport;
    if (po.transport == transport_kind::maildir)
      read_maildir_keys(in, po);
    else
      read_mail_server_keys(in, po);
  }
  in.read_duration("probe_timeout", po.probe_timeout, zero_duration::refused);
  po.retry = resolve_retry(po.transport, global, in.table("retry"));
  if (auto fault = in.table("fault"))
    read_fault(*fault, po.fault);
  if (in.read("owner", po.owner) && !is_node_name(po.owner))
    in.problem("owner", "invalid node name " + in_quotes(po.owner) + " (" + node_name_rule + ")");
  return po;
}

/// Names used twice, domains claimed twice, more than one default: the
/// problem names the later postoffice.
void check_postoffices(const std::vector<postoffice_config>& pos,
                       std::vector<std::string>& problems) {
  auto where = [](std::size_t i) { return "postoffice[" + std::to_string(i) + "]"; };
  std::map<std::string, std::size_t> names;
  std::map<std::string, std::size_t> domains;
  std::optional<std::size_t> first_default;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    const auto& po = pos[i];
    if (auto [it, fresh] = names.emplace(po.name, i); !fresh && !po.name.empty())
      problems.push_back(where(i) + ".name: duplicate name " + in_quotes(po.name) + " (also "
                         + where(it->second) + ")");
    for (const auto& domain : po.domains)
      if (auto [it, fresh] = domains.emplace(domain, i); !fresh && it->second != i)
        problems.push_back(where(i) + ".domains: domain " + in_quotes(domain)
                           + " is already routed to " + where(it->second));
    if (po.is_default && first_default)
      problems.push_back(where(i) + ".default: only one postoffice can be the default (also "
                         + where(*first_default) + ")");
    else if (po.is_default)
      first_default = i;
  }
}

void read_postoffices(const toml::node* node, const std::optional<table_reader>& global_retry,
                      config& cfg, std::vector<std::string>& problems) {
  const auto* array = node ? node->as_array() : nullptr;
  if (!node || (array && array->empty())) {
    problems.push_back("postoffice: at least one [[postoffice]] is required");
    return;
  }
  if (!array || !array->is_array_of_tables()) {
    problems.push_back("postoffice: expected [[postoffice]] tables, got " + type_name(*node));
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    table_reader entry{*(*array)[i].as_table(), "postoffice[" + std::to_string(i) + "]",
                       problems};
    cfg.postoffices.push_back(read_postoffice(entry, global_retry));
  }
  check_postoffices(cfg.postoffices, problems);
}

void read_document(const toml::table& doc, config& cfg, std::vector<std::string>& problems) {
  table_reader in{doc, "", problems};
  in.reject_unknown_keys({"server", "smtp", "retry", "admin", "postoffice", "cluster"});
  if (auto server = in.table("server"))
    read_server(*server, cfg.server);
  if (auto smtp = in.table("smtp"))
    read_smtp(*smtp, cfg.smtp);
  auto retry = in.table("retry");
  if (retry)
    read_retry(*retry, cfg.retry);
  if (auto admin = in.table("admin"))
    read_admin(*admin, cfg.admin);
  // Wherever [retry] stands in the file, its keys apply to every postoffice.
  read_postoffices(in.get("postoffice"), retry, cfg, problems);
  if (auto cluster = in.table("cluster"))
    cfg.cluster = read_cluster(*cluster);
  for (std::size_t i = 0; i < cfg.postoffices.size(); ++i)
    if (!cfg.cluster && !cfg.postoffices[i].owner.empty())
      problems.push_back("postoffice[" + std::to_string(i)
                         + "].owner: only with a [cluster] section");
}


} // namespace

std::string_view to_string(transport_kind kind) {
  switch (kind) {
    case transport_kind::maildir:
      return "maildir";
    case transport_kind::smtp:
      return "smtp";
    case transport_kind::lmtp:
      return "lmtp";
  }
  return "unknown";
}

retry_policy default_retry(transport_kind kind) {
  retry_policy policy;
  if (kind == transport_kind::smtp || kind == transport_kind::lmtp) {
    policy.transfer_interval = std::chrono::seconds{300};
    policy.max_transfer_interval = std::chrono::seconds{4000};
    policy.max_transfer_retries = 120;
  }
  return policy;
}

config_result parse_config(std::string_view toml_text, std::string_view source) {
  config_result result;
  auto doc = parse_toml(toml_text, source, result.problems);
  if (!doc)
    return result;
  config cfg;
  read_document(*doc, cfg, result.problems);
  if (result.problems.empty())
    result.value = std::move(cfg);
  return result;
}

token_result read_token_file(const std::filesystem::path& file) {
  std::string text;
  if (int error = read_whole_file(file, text))
    return {{}, file.string() + ": cannot read: " + std::strerror(error)};
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return {{}, file.string() + ": empty, no token in it"};
  auto last = text.find_last_not_of(" \t\r\n");
  return {text.substr(first, last - first + 1), {}};
}

config_result load_config_file(const std::filesystem::path& file) {
  std::string text;
  if (int error = read_whole_file(file, text))
    return {std::nullopt, {file.string() + ": cannot read: " + std::strerror(error)}};
  return parse_config(text, file.string());
}

std::string etcd_url(const std::string& endpoint) {
  return endpoint.rfind(http_scheme, 0) == 0 ? endpoint : std::string{http_scheme} + endpoint;
}

std::optional<listen_address> parse_listen_address(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  auto host = text.substr(0, colon);
  auto port = parse_port(text.substr(colon + 1));
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed)
    host = host.substr(1, host.size() - 2);
  if (!port || !(bracketed ? is_ipv6(host) : is_domain(host)))
    return std::nullopt;
  return listen_address{std::string{host}, *port};
}

} // namespace postconn
