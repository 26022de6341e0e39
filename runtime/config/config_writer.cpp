// NAME
//   config_writer -- a config written back out as TOML (see config_writer.hpp).
//
// DESCRIPTION
//   Each section binds every field of its struct by name: a field added to
//   config.hpp stops this file compiling until it is written here too.
#include "runtime/config/config_writer.hpp"

#include <charconv>
#include <cstdio>
#include <string_view>
#include <system_error>
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

void key(std::string& out, std::string_view name, const std::string& value) {
  out.append(name).append(" = ").append(value).append("\n");
}

void write_server(std::string& out, const server_config& server) {
  const auto& [hostname, data_dir, log_level, keep_finished, min_free_space, shutdown_grace]
    = server;
  out += "[server]\n";
  key(out, "hostname", toml_string(hostname));
  key(out, "data_dir", toml_path(data_dir));
  key(out, "log_level", toml_string(log_level));
  key(out, "keep_finished", toml_duration(keep_finished));
  key(out, "min_free_space", std::to_string(min_free_space));
  key(out, "shutdown_grace", toml_duration(shutdown_grace));
}

void write_smtp(std::string& out, const smtp_config& smtp) {
  const auto& [listen, max_message_size, max_recipients, max_connections,
               max_connections_per_client, idle_timeout, data_timeout, queue_high_water,
               tls_certificate, tls_key, relay_networks]
    = smtp;
  out += "\n[smtp]\n";
  key(out, "listen", toml_string(listen));
  key(out, "max_message_size", std::to_string(max_message_size));
  key(out, "max_recipients", std::to_string(max_recipients));
  key(out, "max_connections", std::to_string(max_connections));
  key(out, "max_connections_per_client", std::to_string(max_connections_per_client));
  key(out, "idle_timeout", toml_duration(idle_timeout));
  key(out, "data_timeout", toml_duration(data_timeout));
  key(out, "queue_high_water", std::to_string(queue_high_water));
  key(out, "relay_networks", array_of(relay_networks));
  // Both or neither: empty means no STARTTLS, which the key left out says.
  if (!tls_certificate.empty())
    key(out, "tls_certificate", toml_path(tls_certificate));
  if (!tls_key.empty())
    key(out, "tls_key", toml_path(tls_key));
}

/// The keys of `policy`; with a `base`, only those that differ from it.
void write_retry_keys(std::string& out, const retry_policy& policy,
                      const retry_policy* base = nullptr) {
  const auto& [max_open_retries, open_interval, max_transfer_retries, transfer_interval,
               enforce_retry_limits, max_lifetime, delay_warning]
    = policy;
  auto differs = [&](auto member) { return !base || base->*member != policy.*member; };
  if (differs(&retry_policy::max_open_retries))
    key(out, "max_open_retries", std::to_string(max_open_retries));
  if (differs(&retry_policy::open_interval))
    key(out, "open_interval", toml_duration(open_interval));
  if (differs(&retry_policy::max_transfer_retries))
    key(out, "max_transfer_retries", std::to_string(max_transfer_retries));
  if (differs(&retry_policy::transfer_interval))
    key(out, "transfer_interval", toml_duration(transfer_interval));
  if (differs(&retry_policy::enforce_retry_limits))
    key(out, "enforce_retry_limits", boolean(enforce_retry_limits));
  if (differs(&retry_policy::max_lifetime))
    key(out, "max_lifetime", toml_duration(max_lifetime));
  if (differs(&retry_policy::delay_warning))
    key(out, "delay_warning", toml_duration(delay_warning));
}

void write_admin(std::string& out, const admin_config& admin) {
  const auto& [listen, token_file] = admin;
  out += "\n[admin]\n";
  key(out, "listen", toml_string(listen));
  if (!token_file.empty())
    key(out, "token_file", toml_path(token_file));
}

void write_cluster(std::string& out, const cluster_config& cluster) {
  const auto& [node, listen, seeds, reconnect_interval, peer_timeout] = cluster;
  out += "\n[cluster]\n";
  key(out, "node", toml_string(node));
  key(out, "listen", toml_string(listen));
  key(out, "seeds", array_of(seeds));
  key(out, "reconnect_interval", toml_duration(reconnect_interval));
  key(out, "peer_timeout", toml_duration(peer_timeout));
}

/// [postoffice.fault] with the keys its mode uses; nothing for no fault.
void write_fault(std::string& out, const fault_config& fault) {
  const auto& [mode, probability, seed, recipients, latency, up, down] = fault;
  if (fault == fault_config{})
    return;
  out += "\n  [postoffice.fault]\n";
  key(out, "  mode", toml_string(to_string(mode)));
  key(out, "  probability", floating(probability));
  key(out, "  seed", std::to_string(seed));
  if (mode == fault_mode::permfail && !recipients.empty())
    key(out, "  recipients", array_of(recipients));
  if (mode == fault_mode::slow || mode == fault_mode::hang)
    key(out, "  latency", toml_duration(latency));
  if (mode == fault_mode::flap) {
    key(out, "  up", toml_duration(up));
    key(out, "  down", toml_duration(down));
  }
}

void write_postoffice(std::string& out, const postoffice_config& po,
                      const retry_policy& global) {
  const auto& [name, domains, transport, path, create_mailboxes, address, tls, tls_ca_file,
               is_default, probe_timeout, retry, fault, owner]
    = po;
  out += "\n[[postoffice]]\n";
  key(out, "name", toml_string(name));
  key(out, "domains", array_of(domains));
  key(out, "transport", toml_string(to_string(transport)));
  // Only the keys of the transport: the others are refused.
  if (transport == transport_kind::maildir) {
    key(out, "path", toml_path(path));
    key(out, "create_mailboxes", boolean(create_mailboxes));
  } else {
    key(out, "address", toml_string(address));
    key(out, "tls", toml_string(tls == tls_policy::verify ? "verify"
                           : tls == tls_policy::may  ? "may"
                                                     : "none"));
    if (!tls_ca_file.empty())
      key(out, "tls_ca_file", toml_path(tls_ca_file));
  }
  key(out, "default", boolean(is_default));
  key(out, "probe_timeout", toml_duration(probe_timeout));
  if (!owner.empty())
    key(out, "owner", toml_string(owner));
  std::string overrides;
  write_retry_keys(overrides, retry, &global);
  if (!overrides.empty()) {
    out += "\n  [postoffice.retry]\n";
    // Indented like the table header, as in conf/postconn.toml.
    for (std::size_t line = 0; line < overrides.size();) {
      auto end = overrides.find('\n', line) + 1;
      out += "  " + overrides.substr(line, end - line);
      line = end;
    }
  }
  write_fault(out, fault);
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

std::string config_to_toml(const config& cfg) {
  const auto& [server, smtp, retry, admin, postoffices, cluster] = cfg;
  std::string out = "# postconn config: every key with its value.\n\n";
  write_server(out, server);
  write_smtp(out, smtp);
  out += "\n[retry]\n";
  write_retry_keys(out, retry);
  write_admin(out, admin);
  if (cluster)
    write_cluster(out, *cluster);
  for (const auto& po : postoffices)
    write_postoffice(out, po, retry);
  return out;
}

} // namespace postconn
