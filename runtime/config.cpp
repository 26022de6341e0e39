// NAME
//   config -- reading and validating postconn's TOML config (see config.hpp).
//
// DESCRIPTION
//   A config_reader walks the parsed document table by table. Every table
//   lists the keys it knows; anything else is an "unknown key" problem. Each
//   value is checked for type and range where it is read, and every problem
//   is recorded (never thrown), so one run reports them all.
#include "runtime/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>

#include <toml++/toml.h>

#include "runtime/address.hpp"
#include "runtime/network_list.hpp"

namespace postconn {

namespace {

constexpr const char* log_levels[]
  = {"trace", "debug", "info", "warn", "error", "critical", "off"};

std::string join_key(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string{key} : prefix + "." + std::string{key};
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number with a fraction";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

bool is_hostname(std::string_view name) {
  return !name.empty() && name.size() <= 253
         && std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-'
                     || c == '.';
            });
}

bool is_postoffice_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
  });
}

/// Reads values out of TOML tables, recording one problem per bad key.
class config_reader {
public:
  explicit config_reader(std::vector<std::string>& problems)
    : problems_(problems) {
  }

  void problem(const std::string& key, const std::string& what) {
    problems_.push_back(key + ": " + what);
  }

  /// Records every key of `table` not in `known`.
  void reject_unknown_keys(const toml::table& table, const std::string& prefix,
                           std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : table) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end())
        problem(join_key(prefix, key.str()), "unknown key");
    }
  }

  /// The table under `key`, or nullptr when absent or not a table.
  const toml::table* table(const toml::table& parent, const std::string& prefix,
                           std::string_view key) {
    const auto* node = parent.get(key);
    if (!node)
      return nullptr;
    if (const auto* found = node->as_table())
      return found;
    problem(join_key(prefix, key), "expected a table, got " + type_name(*node));
    return nullptr;
  }

  /// The node under `key` if it has type T; a problem if it has another.
  template <class T>
  const toml::value<T>* value(const toml::table& parent, const std::string& key_path,
                              std::string_view key, const char* expected) {
    const auto* node = parent.get(key);
    if (!node)
      return nullptr;
    if (const auto* typed = node->as<T>())
      return typed;
    problem(key_path, std::string{"expected "} + expected + ", got " + type_name(*node));
    return nullptr;
  }

  bool read(const toml::table& t, const std::string& prefix, std::string_view key,
            std::string& out) {
    if (auto* v = value<std::string>(t, join_key(prefix, key), key, "a string")) {
      out = v->get();
      return true;
    }
    return false;
  }

  bool read(const toml::table& t, const std::string& prefix, std::string_view key,
            bool& out) {
    if (auto* v = value<bool>(t, join_key(prefix, key), key, "a boolean")) {
      out = v->get();
      return true;
    }
    return false;
  }

  /// An integer within [min, max].
  template <class Int>
  bool read(const toml::table& t, const std::string& prefix, std::string_view key,
            Int& out, std::int64_t min) {
    auto path = join_key(prefix, key);
    auto* v = value<std::int64_t>(t, path, key, "an integer");
    if (!v)
      return false;
    auto max = static_cast<std::int64_t>(
      std::min<std::uint64_t>(std::numeric_limits<Int>::max(),
                              std::numeric_limits<std::int64_t>::max()));
    if (v->get() < min || v->get() > max) {
      problem(path, "must be between " + std::to_string(min) + " and "
                      + std::to_string(max) + ", got " + std::to_string(v->get()));
      return false;
    }
    out = static_cast<Int>(v->get());
    return true;
  }

  /// A duration: a string with a unit, or an integer count of seconds.
  /// `positive` refuses zero.
  bool read_duration(const toml::table& t, const std::string& prefix,
                     std::string_view key, std::chrono::seconds& out,
                     bool positive) {
    auto path = join_key(prefix, key);
    const auto* node = t.get(key);
    if (!node)
      return false;
    std::optional<std::chrono::seconds> parsed;
    if (auto* text = node->as_string()) {
      parsed = parse_duration(text->get());
      if (!parsed) {
        problem(path, "invalid duration \"" + text->get()
                        + "\" (use a number with s, m, h or d, e.g. \"600s\")");
        return false;
      }
    } else if (auto* number = node->as_integer()) {
      if (number->get() < 0) {
        problem(path, "invalid duration " + std::to_string(number->get())
                        + " (must not be negative)");
        return false;
      }
      parsed = std::chrono::seconds{number->get()};
    } else {
      problem(path, "expected a duration (\"90s\", \"10m\", \"24h\", \"5d\" or "
                    "seconds), got " + type_name(*node));
      return false;
    }
    if (positive && parsed->count() == 0) {
      problem(path, "must be longer than 0");
      return false;
    }
    out = *parsed;
    return true;
  }

  /// An array of strings.
  bool read(const toml::table& t, const std::string& prefix, std::string_view key,
            std::vector<std::string>& out) {
    auto path = join_key(prefix, key);
    const auto* node = t.get(key);
    if (!node)
      return false;
    const auto* array = node->as_array();
    if (!array) {
      problem(path, "expected an array of strings, got " + type_name(*node));
      return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (const auto* text = (*array)[i].as_string()) {
        values.push_back(text->get());
      } else {
        problem(path + "[" + std::to_string(i) + "]",
                "expected a string, got " + type_name((*array)[i]));
        ok = false;
      }
    }
    if (ok)
      out = std::move(values);
    return ok;
  }

  void read_listen(const toml::table& t, const std::string& prefix,
                   std::string_view key, std::string& out) {
    std::string text;
    if (!read(t, prefix, key, text))
      return;
    if (!parse_listen_address(text)) {
      problem(join_key(prefix, key),
              "invalid address \"" + text + "\" (use host:port, e.g. \"127.0.0.1:2525\")");
      return;
    }
    out = text;
  }

  void read_retry(const toml::table& t, const std::string& prefix,
                  retry_policy& retry) {
    reject_unknown_keys(t, prefix,
                        {"max_open_retries", "open_interval", "max_transfer_retries",
                         "transfer_interval", "enforce_retry_limits", "max_lifetime",
                         "delay_warning"});
    read(t, prefix, "max_open_retries", retry.max_open_retries, 0);
    read_duration(t, prefix, "open_interval", retry.open_interval, true);
    read(t, prefix, "max_transfer_retries", retry.max_transfer_retries, 0);
    read_duration(t, prefix, "transfer_interval", retry.transfer_interval, true);
    read(t, prefix, "enforce_retry_limits", retry.enforce_retry_limits);
    read_duration(t, prefix, "max_lifetime", retry.max_lifetime, false);
    read_duration(t, prefix, "delay_warning", retry.delay_warning, false);
  }

private:
  std::vector<std::string>& problems_;
};

void read_server(config_reader& in, const toml::table& t, server_config& server) {
  in.reject_unknown_keys(t, "server", {"hostname", "data_dir", "log_level"});
  if (in.read(t, "server", "hostname", server.hostname) && !is_hostname(server.hostname))
    in.problem("server.hostname", "invalid host name \"" + server.hostname + "\"");
  std::string data_dir;
  if (in.read(t, "server", "data_dir", data_dir)) {
    if (data_dir.empty())
      in.problem("server.data_dir", "must not be empty");
    else
      server.data_dir = data_dir;
  }
  if (in.read(t, "server", "log_level", server.log_level)
      && std::find(std::begin(log_levels), std::end(log_levels), server.log_level)
           == std::end(log_levels))
    in.problem("server.log_level", "unknown level \"" + server.log_level
                                     + "\" (trace, debug, info, warn, error, "
                                       "critical or off)");
}

void read_smtp(config_reader& in, const toml::table& t, smtp_config& smtp,
               std::vector<std::string>& problems) {
  in.reject_unknown_keys(t, "smtp", {"listen", "max_message_size", "max_recipients",
                                     "relay_networks", "idle_timeout"});
  in.read_listen(t, "smtp", "listen", smtp.listen);
  in.read(t, "smtp", "max_message_size", smtp.max_message_size, 1);
  in.read(t, "smtp", "max_recipients", smtp.max_recipients, 1);
  in.read_duration(t, "smtp", "idle_timeout", smtp.idle_timeout, true);
  std::vector<std::string> networks;
  if (in.read(t, "smtp", "relay_networks", networks)) {
    auto parsed = network_list::parse(networks);
    problems.insert(problems.end(), parsed.problems.begin(), parsed.problems.end());
    if (parsed.value)
      smtp.relay_networks = std::move(networks);
  }
}

/// Reads one [[postoffice]]; `overrides` gets its [postoffice.retry] table,
/// applied once the global [retry] is known.
void read_postoffice(config_reader& in, const toml::table& t, const std::string& path,
                     postoffice_config& po, const toml::table*& overrides) {
  in.reject_unknown_keys(t, path, {"name", "domains", "transport", "path",
                                   "create_mailboxes", "address", "default",
                                   "probe_timeout", "retry"});
  if (!in.read(t, path, "name", po.name))
    in.problem(path + ".name", "missing (every postoffice needs a name)");
  else if (!is_postoffice_name(po.name))
    in.problem(path + ".name", "invalid name \"" + po.name
                                 + "\" (use lower-case letters, digits, _ and -)");
  in.read(t, path, "default", po.is_default);
  if (in.read(t, path, "domains", po.domains)) {
    for (std::size_t i = 0; i < po.domains.size(); ++i) {
      po.domains[i] = lower_cased(po.domains[i]);
      if (!is_domain(po.domains[i]))
        in.problem(path + ".domains[" + std::to_string(i) + "]",
                   "invalid domain \"" + po.domains[i] + "\"");
    }
  }
  if (po.domains.empty() && !po.is_default)
    in.problem(path + ".domains", "missing or empty (a postoffice needs domains "
                                  "unless it is the default)");
  std::string transport;
  bool has_transport = in.read(t, path, "transport", transport);
  if (!has_transport && !t.get("transport"))
    in.problem(path + ".transport", "missing (maildir, smtp or lmtp)");
  else if (has_transport && transport == "maildir")
    po.transport = transport_kind::maildir;
  else if (has_transport && transport == "smtp")
    po.transport = transport_kind::smtp;
  else if (has_transport && transport == "lmtp")
    po.transport = transport_kind::lmtp;
  else if (has_transport)
    in.problem(path + ".transport", "unknown transport \"" + transport
                                      + "\" (maildir, smtp or lmtp)");
  std::string root;
  bool has_path = in.read(t, path, "path", root);
  bool has_address = t.get("address") != nullptr;
  if (has_transport && po.transport == transport_kind::maildir) {
    if (!has_path && !t.get("path"))
      in.problem(path + ".path", "missing (a maildir postoffice needs its root)");
    else if (has_path && root.empty())
      in.problem(path + ".path", "must not be empty");
    po.path = root;
    in.read(t, path, "create_mailboxes", po.create_mailboxes);
    if (has_address)
      in.problem(path + ".address", "only for smtp and lmtp postoffices");
  } else if (has_transport) {
    if (t.get("path"))
      in.problem(path + ".path", "only for maildir postoffices");
    if (t.get("create_mailboxes"))
      in.problem(path + ".create_mailboxes", "only for maildir postoffices");
    if (!has_address)
      in.problem(path + ".address", "missing (host:port of the " + transport + " server)");
    else
      in.read_listen(t, path, "address", po.address);
  }
  in.read_duration(t, path, "probe_timeout", po.probe_timeout, true);
  overrides = in.table(t, path, "retry");
}

/// Names used twice, domains claimed twice, more than one default.
void check_postoffices(config_reader& in, const std::vector<postoffice_config>& pos) {
  std::map<std::string, std::size_t> names;
  std::map<std::string, std::size_t> domains;
  std::optional<std::size_t> default_index;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    auto path = "postoffice[" + std::to_string(i) + "]";
    const auto& po = pos[i];
    if (!po.name.empty()) {
      auto [it, fresh] = names.emplace(po.name, i);
      if (!fresh)
        in.problem(path + ".name", "duplicate name \"" + po.name + "\" (also postoffice["
                                     + std::to_string(it->second) + "])");
    }
    for (const auto& domain : po.domains) {
      auto [it, fresh] = domains.emplace(domain, i);
      if (!fresh && it->second != i)
        in.problem(path + ".domains", "domain \"" + domain
                                        + "\" is already routed to postoffice["
                                        + std::to_string(it->second) + "]");
    }
    if (po.is_default) {
      if (default_index)
        in.problem(path + ".default", "only one postoffice can be the default (also postoffice["
                                        + std::to_string(*default_index) + "])");
      else
        default_index = i;
    }
  }
}

void read_document(config_reader& in, const toml::table& doc, config& cfg,
                   std::vector<std::string>& problems) {
  in.reject_unknown_keys(doc, "", {"server", "smtp", "retry", "admin", "postoffice"});
  if (const auto* t = in.table(doc, "", "server"))
    read_server(in, *t, cfg.server);
  if (const auto* t = in.table(doc, "", "smtp"))
    read_smtp(in, *t, cfg.smtp, problems);
  if (const auto* t = in.table(doc, "", "retry"))
    in.read_retry(*t, "retry", cfg.retry);
  if (const auto* t = in.table(doc, "", "admin")) {
    in.reject_unknown_keys(*t, "admin", {"listen"});
    in.read_listen(*t, "admin", "listen", cfg.admin.listen);
  }
  const auto* node = doc.get("postoffice");
  const auto* array = node ? node->as_array() : nullptr;
  if (node && (!array || !array->is_array_of_tables())) {
    in.problem("postoffice", "expected [[postoffice]] tables");
    return;
  }
  if (!array || array->empty()) {
    in.problem("postoffice", "at least one [[postoffice]] is required");
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto path = "postoffice[" + std::to_string(i) + "]";
    postoffice_config po;
    po.retry = cfg.retry;
    const toml::table* overrides = nullptr;
    read_postoffice(in, *(*array)[i].as_table(), path, po, overrides);
    if (overrides)
      in.read_retry(*overrides, path + ".retry", po.retry);
    cfg.postoffices.push_back(std::move(po));
  }
  check_postoffices(in, cfg.postoffices);
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

config_result parse_config(std::string_view toml_text, std::string_view source) {
  config_result result;
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream line;
    line << source << ":" << e.source().begin.line << ":" << e.source().begin.column
         << ": " << e.description();
    result.problems.push_back(line.str());
    return result;
  }
  config cfg;
  config_reader in{result.problems};
  read_document(in, doc, cfg, result.problems);
  if (result.problems.empty())
    result.value = std::move(cfg);
  return result;
}

config_result load_config_file(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    config_result result;
    result.problems.push_back(file.string() + ": cannot read: " + std::strerror(errno));
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string());
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0 || digits > 12 || text.size() > digits + 1)
    return std::nullopt;
  std::int64_t count = std::stoll(std::string{text.substr(0, digits)});
  std::int64_t unit = 1;
  if (text.size() == digits + 1) {
    switch (text.back()) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return std::nullopt;
    }
  }
  return std::chrono::seconds{count * unit};
}

std::optional<listen_address> parse_listen_address(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size()
        || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos
        || text.find(':') != colon) // a bare IPv6 address needs brackets
      return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5
      || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  auto number = std::stoi(std::string{port});
  if (number < 1 || number > 65535)
    return std::nullopt;
  return listen_address{std::string{host}, static_cast<std::uint16_t>(number)};
}

} // namespace postconn
