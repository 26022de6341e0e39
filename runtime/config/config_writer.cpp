// NAME
//   config_writer -- a config written back out as TOML (see config_writer.hpp).
//
// DESCRIPTION
//   Each section binds every field of its struct by name: a field added to
//   config.hpp stops this file compiling until it is written here too. A
//   table's keys go through table_lines, which writes each one, or only
//   those that differ from the default.
#include "runtime/config/config_writer.hpp"

#include <charconv>
#include <cstdio>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace postconn {

namespace {

/// A TOML basic string. Quotes, backslashes and control characters are
/// escaped; other bytes (UTF-8, as the parser let them in) stay as they are.
std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Named apart from toml_string(): a string converts to a path as easily as to a
// string_view, and the call would be ambiguous.
std::string toml_path(const std::filesystem::path& path) {
  return toml_string(path.native());
}

std::string toml_duration(std::chrono::seconds duration) {
  return toml_string(duration_to_toml(duration));
}

std::string array_of(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items)
    out += (out.size() > 1 ? ", " : "") + toml_string(item);
  return out + "]";
}

std::string boolean(bool value) {
  return value ? "true" : "false";
}

/// The shortest text that reads back as the same double, as a TOML float
/// (which needs a fraction or an exponent).
std::string floating(double value) {
  char text[64];
  auto [end, error] = std::to_chars(std::begin(text), std::end(text), value);
  std::string out{text, error == std::errc{} ? end : text};
  if (out.find_first_of(".e") == std::string::npos)
    out += ".0";
  return out;
}

std::string_view name_of(transport_kind kind) {
  return to_string(kind);
}

std::string_view name_of(fault_mode mode) {
  return to_string(mode);
}

std::string_view name_of(tls_policy tls) {
  switch (tls) {
    case tls_policy::may:
      return "may";
    case tls_policy::verify:
      return "verify";
    case tls_policy::none:
      break;
  }
  return "none";
}

/// The text of a value as TOML writes it.
template <class T>
std::string value_text(const T& value) {
  if constexpr (std::is_same_v<T, bool>)
    return boolean(value);
  else if constexpr (std::is_integral_v<T>)
    return std::to_string(value);
  else if constexpr (std::is_floating_point_v<T>)
    return floating(value);
  else if constexpr (std::is_same_v<T, std::chrono::seconds>)
    return toml_duration(value);
  else if constexpr (std::is_same_v<T, std::filesystem::path>)
    return toml_path(value);
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return array_of(value);
  else if constexpr (std::is_same_v<T, std::string>)
    return toml_string(value);
  else
    return toml_string(name_of(value)); // the config's enums
}

/// The key lines of one table: every key, or only those whose value
/// differs from the base's.
class table_lines {
public:
  table_lines(key_choice choice, std::string indent = "")
    : every_(choice == key_choice::every), indent_(std::move(indent)) {
  }

  /// Written unless only changed keys are and `value` equals `base`.
  template <class T>
  void key(std::string_view name, const T& value, const T& base) {
    if (every_ || !(value == base))
      always(name, value);
  }

  template <class T>
  void always(std::string_view name, const T& value) {
    text_.append(indent_).append(name).append(" = ").append(value_text(value)).append("\n");
  }

  /// `header` and the lines, or nothing when there are none.
  void write(std::string& out, std::string_view header) const {
    if (text_.empty())
      return;
    if (!out.empty())
      out += "\n";
    out.append(indent_).append(header).append("\n").append(text_);
  }

private:
  bool every_;
  std::string indent_;
  std::string text_;
};

/// Calls `each(name, member)` for every key of a retry table, in the order
/// of conf/postconn.toml.
template <class Each>
void for_each_retry_key(Each each) {
  // A field added to retry_policy breaks this binding until it gets its key.
  [[maybe_unused]] const auto& [k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = retry_policy{};
  each("max_open_retries", &retry_policy::max_open_retries);
  each("open_interval", &retry_policy::open_interval);
  each("max_transfer_retries", &retry_policy::max_transfer_retries);
  each("transfer_interval", &retry_policy::transfer_interval);
  each("max_transfer_interval", &retry_policy::max_transfer_interval);
  each("enforce_retry_limits", &retry_policy::enforce_retry_limits);
  each("max_lifetime", &retry_policy::max_lifetime);
  each("delay_warning", &retry_policy::delay_warning);
  each("recovery_probe_interval", &retry_policy::recovery_probe_interval);
  each("recovery_rate", &retry_policy::recovery_rate);
}

void write_retry_keys(table_lines& lines, const retry_policy& policy,
                      const retry_policy& base) {
  for_each_retry_key(
    [&](std::string_view name, auto member) { lines.key(name, policy.*member, base.*member); });
}

/// What a postoffice of `kind` gets when the file has no [postoffice.retry]
/// and a [retry] that sets the keys in which `global` differs from the
/// seed's defaults (what key_choice::changed writes of it).
retry_policy implied_retry(transport_kind kind, const retry_policy& global) {
  auto implied = default_retry(kind);
  const retry_policy seed;
  for_each_retry_key([&](std::string_view, auto member) {
    if (!(global.*member == seed.*member))
      implied.*member = global.*member;
  });
  return implied;
}

void write_server(std::string& out, const server_config& server, key_choice choice) {
  const auto& [hostname, data_dir, log_level, keep_finished, min_free_space, shutdown_grace]
    = server;
  const server_config base;
  table_lines lines{choice};
  lines.key("hostname", hostname, base.hostname);
  lines.key("data_dir", data_dir, base.data_dir);
  lines.key("log_level", log_level, base.log_level);
  lines.key("keep_finished", keep_finished, base.keep_finished);
  lines.key("min_free_space", min_free_space, base.min_free_space);
  lines.key("shutdown_grace", shutdown_grace, base.shutdown_grace);
  lines.write(out, "[server]");
}

void write_smtp(std::string& out, const smtp_config& smtp, key_choice choice) {
  const auto& [listen, max_message_size, max_recipients, max_connections,
               max_connections_per_client, idle_timeout, data_timeout, queue_high_water,
               tls_certificate, tls_key, relay_networks]
    = smtp;
  const smtp_config base;
  table_lines lines{choice};
  lines.key("listen", listen, base.listen);
  lines.key("max_message_size", max_message_size, base.max_message_size);
  lines.key("max_recipients", max_recipients, base.max_recipients);
  lines.key("max_connections", max_connections, base.max_connections);
  lines.key("max_connections_per_client", max_connections_per_client,
            base.max_connections_per_client);
  lines.key("idle_timeout", idle_timeout, base.idle_timeout);
  lines.key("data_timeout", data_timeout, base.data_timeout);
  lines.key("queue_high_water", queue_high_water, base.queue_high_water);
  lines.key("relay_networks", relay_networks, base.relay_networks);
  // Both or neither: empty means no STARTTLS, which the key left out says.
  if (!tls_certificate.empty())
    lines.always("tls_certificate", tls_certificate);
  if (!tls_key.empty())
    lines.always("tls_key", tls_key);
  lines.write(out, "[smtp]");
}

void write_admin(std::string& out, const admin_config& admin, key_choice choice) {
  const auto& [listen, token_file] = admin;
  table_lines lines{choice};
  lines.key("listen", listen, admin_config{}.listen);
  if (!token_file.empty())
    lines.always("token_file", token_file);
  lines.write(out, "[admin]");
}

/// cluster.without_replica's word for accept_unreplicated.
std::string without_replica(bool accept_unreplicated) {
  return accept_unreplicated ? "accept" : "refuse";
}

void write_cluster(std::string& out, const cluster_config& cluster, key_choice choice) {
  const auto& [node, listen, seeds, reconnect_interval, peer_timeout, etcd, lease_ttl, replicas,
               adopt_after, accept_unreplicated]
    = cluster;
  const cluster_config base;
  table_lines lines{choice};
  lines.always("node", node);
  lines.always("listen", listen);
  lines.key("seeds", seeds, base.seeds);
  lines.key("reconnect_interval", reconnect_interval, base.reconnect_interval);
  lines.key("peer_timeout", peer_timeout, base.peer_timeout);
  if (!etcd.empty())
    lines.always("etcd", etcd);
  lines.key("lease_ttl", lease_ttl, base.lease_ttl);
  lines.key("replicas", replicas, base.replicas);
  lines.key("adopt_after", adopt_after, base.adopt_after);
  lines.key("without_replica", without_replica(accept_unreplicated),
            without_replica(base.accept_unreplicated));
  lines.write(out, "[cluster]");
}

/// [postoffice.fault] with the keys its mode uses; nothing for no fault.
void write_fault(std::string& out, const fault_config& fault, key_choice choice) {
  const auto& [mode, probability, seed, recipients, latency, up, down] = fault;
  if (fault == fault_config{})
    return;
  const fault_config base;
  table_lines lines{choice, "  "};
  lines.always("mode", mode);
  lines.key("probability", probability, base.probability);
  lines.key("seed", seed, base.seed);
  if (mode == fault_mode::permfail && !recipients.empty())
    lines.always("recipients", recipients);
  if (mode == fault_mode::slow || mode == fault_mode::hang)
    lines.always("latency", latency);
  if (mode == fault_mode::flap) {
    lines.always("up", up);
    lines.always("down", down);
  }
  lines.write(out, "[postoffice.fault]");
}

void write_postoffice(std::string& out, const postoffice_config& po,
                      const retry_policy& global, key_choice choice) {
  const auto& [name, domains, transport, path, create_mailboxes, address, tls, tls_ca_file,
               is_default, probe_timeout, retry, fault, owner]
    = po;
  const postoffice_config base;
  table_lines lines{choice};
  lines.always("name", name);
  // Only a default postoffice may have none, and then it need not say so.
  lines.key("domains", domains, base.domains);
  lines.always("transport", transport);
  // Only the keys of the transport: the others are refused.
  if (transport == transport_kind::maildir) {
    lines.always("path", path);
    lines.key("create_mailboxes", create_mailboxes, base.create_mailboxes);
  } else {
    lines.always("address", address);
    lines.key("tls", tls, base.tls);
    if (!tls_ca_file.empty())
      lines.always("tls_ca_file", tls_ca_file);
  }
  lines.key("default", is_default, base.is_default);
  lines.key("probe_timeout", probe_timeout, base.probe_timeout);
  if (!owner.empty())
    lines.always("owner", owner);
  lines.write(out, "[[postoffice]]");
  // The keys in which its policy differs from what it gets without them.
  table_lines overrides{key_choice::changed, "  "};
  write_retry_keys(overrides, retry,
                   choice == key_choice::every ? global : implied_retry(transport, global));
  overrides.write(out, "[postoffice.retry]");
  write_fault(out, fault, choice);
}

} // namespace

std::string duration_to_toml(std::chrono::seconds duration) {
  auto count = duration.count();
  if (count == 0)
    return "0";
  for (auto [unit, seconds] : {std::pair{'d', 86400}, std::pair{'h', 3600}, std::pair{'m', 60}})
    if (count % seconds == 0)
      return std::to_string(count / seconds) + unit;
  return std::to_string(count) + "s";
}

std::string config_to_toml(const config& cfg, key_choice choice) {
  const auto& [server, smtp, retry, admin, postoffices, cluster] = cfg;
  std::string out;
  write_server(out, server, choice);
  write_smtp(out, smtp, choice);
  table_lines retry_lines{choice};
  write_retry_keys(retry_lines, retry, retry_policy{});
  retry_lines.write(out, "[retry]");
  write_admin(out, admin, choice);
  if (cluster)
    write_cluster(out, *cluster, choice);
  for (const auto& po : postoffices)
    write_postoffice(out, po, retry, choice);
  auto heading = choice == key_choice::every
                   ? "# postconn config: every key with its value. A postoffice's own\n"
                     "# retry table holds what differs from [retry] (smtp and lmtp\n"
                     "# postoffices have retry defaults of their own).\n\n"
                   : "# postconn config: the keys whose value is not the default.\n\n";
  return heading + out;
}

} // namespace postconn
