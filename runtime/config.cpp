// NAME
//   config -- reading and validating postconn's TOML config (see config.hpp).
//
// DESCRIPTION
//   A table_reader walks one TOML table: it knows the table's key path,
//   rejects keys the table does not list, and checks each value's type and
//   range where it is read. Problems are recorded, never thrown, so one run
//   reports them all. Rules that span postoffices (unique names, domains
//   claimed once, one default) run after every postoffice has been read.
//
//   Durations are capped at 36500 days: anything longer overflows a
//   nanosecond clock once added to the current time.
#include "runtime/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <toml++/toml.h>

#include "runtime/address.hpp"
#include "runtime/network_list.hpp"

namespace postconn {

namespace {

constexpr std::string_view log_levels[]
  = {"trace", "debug", "info", "warn", "error", "critical", "off"};

/// Longer durations overflow a nanosecond clock once added to the time now.
constexpr std::chrono::seconds longest_duration = std::chrono::hours{24 * 36500};
constexpr std::string_view longest_duration_text = "36500d";

constexpr transport_kind transports[]
  = {transport_kind::maildir, transport_kind::smtp, transport_kind::lmtp};

/// Whether a duration may be zero ("disabled") or must be positive.
enum class zero_duration { allowed, refused };

std::string in_quotes(std::string_view text) {
  return "\"" + std::string{text} + "\"";
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

bool is_postoffice_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool is_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

/// Seconds in one `unit` (s, m, h, d); 0 for any other letter.
std::int64_t seconds_per(char unit) {
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 86400;
    default:
      return 0;
  }
}

/// Digits with an optional s, m, h or d: a duration unless it is too long.
bool has_duration_syntax(std::string_view text) {
  return is_digits(text)
         || (text.size() >= 2 && seconds_per(text.back()) != 0
             && is_digits(text.substr(0, text.size() - 1)));
}

bool is_ipv6(std::string_view text) {
  in6_addr ignored;
  return inet_pton(AF_INET6, std::string{text}.c_str(), &ignored) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  if (!is_digits(text) || text.size() > 5)
    return std::nullopt;
  std::from_chars(text.data(), text.data() + text.size(), port);
  if (port < 1 || port > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

/// One TOML table being read; problems are recorded under its key path.
class table_reader {
public:
  table_reader(const toml::table& table, std::string path,
               std::vector<std::string>& problems)
    : table_(table), path_(std::move(path)), problems_(problems) {
  }

  const toml::node* get(std::string_view key) const {
    return table_.get(key);
  }

  bool has(std::string_view key) const {
    return get(key) != nullptr;
  }

  void problem(std::string_view key, const std::string& what) {
    problems_.push_back(key_path(key) + ": " + what);
  }

  /// Records problems whose lines already name their key.
  void add_problems(const std::vector<std::string>& lines) {
    problems_.insert(problems_.end(), lines.begin(), lines.end());
  }

  void reject_unknown_keys(std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : table_)
      if (std::find(known.begin(), known.end(), key.str()) == known.end())
        problem(key.str(), "unknown key");
  }

  /// True when `key` is present; a "missing" problem saying `why` if not.
  bool require(std::string_view key, const std::string& why) {
    if (!has(key))
      problem(key, "missing (" + why + ")");
    return has(key);
  }

  /// The table under `key`, when present and a table.
  std::optional<table_reader> table(std::string_view key) {
    const auto* node = get(key);
    if (!node)
      return std::nullopt;
    if (const auto* found = node->as_table())
      return table_reader{*found, key_path(key), problems_};
    problem(key, "expected a table, got " + type_name(*node));
    return std::nullopt;
  }

  bool read(std::string_view key, std::string& out) {
    const auto* value = typed<std::string>(key, "a string");
    if (value)
      out = value->get();
    return value != nullptr;
  }

  bool read(std::string_view key, bool& out) {
    const auto* value = typed<bool>(key, "a boolean");
    if (value)
      out = value->get();
    return value != nullptr;
  }

  /// A probability: a number from 0 to 1 (an integer 0 or 1 too).
  bool read_probability(std::string_view key, double& out) {
    const auto* node = get(key);
    if (!node)
      return false;
    std::optional<double> value;
    if (const auto* real = node->as_floating_point())
      value = real->get();
    else if (const auto* whole = node->as_integer())
      value = static_cast<double>(whole->get());
    else
      problem(key, "expected a number from 0 to 1, got " + type_name(*node));
    if (value && !(*value >= 0.0 && *value <= 1.0)) {
      std::ostringstream text;
      text << *value;
      problem(key, "must be from 0 to 1, got " + text.str());
      value.reset();
    }
    if (value)
      out = *value;
    return value.has_value();
  }

  /// An integer of at least `min` that fits `Int`.
  template <class Int>
  bool read(std::string_view key, Int& out, std::int64_t min) {
    auto* v = typed<std::int64_t>(key, "an integer");
    if (!v)
      return false;
    auto max = static_cast<std::int64_t>(std::min<std::uint64_t>(
      std::numeric_limits<Int>::max(), std::numeric_limits<std::int64_t>::max()));
    auto value = v->get();
    if (value < min || value > max) {
      problem(key, "must be " + (value < min ? "at least " + std::to_string(min)
                                             : "at most " + std::to_string(max))
                     + ", got " + std::to_string(value));
      return false;
    }
    out = static_cast<Int>(value);
    return true;
  }

  /// An array of strings, every element checked.
  bool read(std::string_view key, std::vector<std::string>& out) {
    auto* array = typed_array(key);
    if (!array)
      return false;
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (const auto* text = (*array)[i].as_string())
        values.push_back(text->get());
      else
        problem(std::string{key} + "[" + std::to_string(i) + "]",
                "expected a string, got " + type_name((*array)[i]));
    }
    if (values.size() != array->size())
      return false;
    out = std::move(values);
    return true;
  }

  /// "90s", "10m", "24h", "5d", "0", or an integer count of seconds.
  bool read_duration(std::string_view key, std::chrono::seconds& out,
                     zero_duration zero) {
    const auto* node = get(key);
    if (!node)
      return false;
    std::optional<std::chrono::seconds> parsed;
    if (const auto* text = node->as_string())
      parsed = duration_from(key, text->get());
    else if (const auto* number = node->as_integer())
      parsed = duration_from(key, number->get());
    else
      problem(key, "expected a duration (\"90s\", \"10m\", \"24h\", \"5d\" or seconds), got "
                     + type_name(*node));
    if (parsed && zero == zero_duration::refused && parsed->count() == 0) {
      problem(key, "must be longer than 0");
      parsed.reset();
    }
    if (parsed)
      out = *parsed;
    return parsed.has_value();
  }

  /// A "host:port" or "[v6]:port" string.
  bool read_listen(std::string_view key, std::string& out) {
    std::string text;
    if (!read(key, text))
      return false;
    if (!parse_listen_address(text)) {
      problem(key, "invalid address " + in_quotes(text)
                     + " (use host:port or [ipv6]:port, port 1 to 65535, "
                       "e.g. \"127.0.0.1:2525\")");
      return false;
    }
    out = text;
    return true;
  }

private:
  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string{key} : path_ + "." + std::string{key};
  }

  /// The value under `key` if it has type T; a problem if it has another.
  template <class T>
  const toml::value<T>* typed(std::string_view key, const char* expected) {
    const auto* node = get(key);
    if (!node)
      return nullptr;
    if (const auto* value = node->as<T>())
      return value;
    problem(key, std::string{"expected "} + expected + ", got " + type_name(*node));
    return nullptr;
  }

  const toml::array* typed_array(std::string_view key) {
    const auto* node = get(key);
    if (!node)
      return nullptr;
    if (const auto* array = node->as_array())
      return array;
    problem(key, "expected an array of strings, got " + type_name(*node));
    return nullptr;
  }

  std::optional<std::chrono::seconds> duration_from(std::string_view key,
                                                    const std::string& text) {
    if (auto parsed = parse_duration(text))
      return parsed;
    if (has_duration_syntax(text))
      problem(key, "duration " + in_quotes(text) + " is too long (at most "
                     + std::string{longest_duration_text} + ")");
    else
      problem(key, "invalid duration " + in_quotes(text)
                     + " (use a number with s, m, h or d, e.g. \"600s\")");
    return std::nullopt;
  }

  std::optional<std::chrono::seconds> duration_from(std::string_view key,
                                                    std::int64_t seconds) {
    if (seconds >= 0 && seconds <= longest_duration.count())
      return std::chrono::seconds{seconds};
    problem(key, "invalid duration " + std::to_string(seconds)
                   + (seconds < 0 ? " (must not be negative)"
                                  : " (at most " + std::to_string(longest_duration.count())
                                      + " seconds)"));
    return std::nullopt;
  }

  const toml::table& table_;
  std::string path_;
  std::vector<std::string>& problems_;
};

void read_server(table_reader in, server_config& server) {
  in.reject_unknown_keys({"hostname", "data_dir", "log_level"});
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
}

void read_smtp(table_reader in, smtp_config& smtp) {
  in.reject_unknown_keys(
    {"listen", "max_message_size", "max_recipients", "idle_timeout", "relay_networks"});
  in.read_listen("listen", smtp.listen);
  in.read("max_message_size", smtp.max_message_size, 1);
  in.read("max_recipients", smtp.max_recipients, 1);
  in.read_duration("idle_timeout", smtp.idle_timeout, zero_duration::refused);
  std::vector<std::string> networks;
  if (in.read("relay_networks", networks)) {
    auto parsed = network_list::parse(networks);
    in.add_problems(parsed.problems);
    if (parsed.value)
      smtp.relay_networks = std::move(networks);
  }
}

/// [retry], or the keys of a [postoffice.retry] applied over `retry`.
void read_retry(table_reader in, retry_policy& retry) {
  in.reject_unknown_keys({"max_open_retries", "open_interval", "max_transfer_retries",
                          "transfer_interval", "enforce_retry_limits", "max_lifetime",
                          "delay_warning"});
  in.read("max_open_retries", retry.max_open_retries, 0);
  in.read_duration("open_interval", retry.open_interval, zero_duration::refused);
  in.read("max_transfer_retries", retry.max_transfer_retries, 0);
  in.read_duration("transfer_interval", retry.transfer_interval, zero_duration::refused);
  in.read("enforce_retry_limits", retry.enforce_retry_limits);
  in.read_duration("max_lifetime", retry.max_lifetime, zero_duration::allowed);
  in.read_duration("delay_warning", retry.delay_warning, zero_duration::allowed);
}

void read_admin(table_reader in, admin_config& admin) {
  in.reject_unknown_keys({"listen"});
  in.read_listen("listen", admin.listen);
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
  if (in.has("address"))
    in.problem("address", "only for smtp and lmtp postoffices");
}

void read_mail_server_keys(table_reader& in, postoffice_config& po) {
  for (auto key : {"path", "create_mailboxes"})
    if (in.has(key))
      in.problem(key, "only for maildir postoffices");
  auto server = std::string{to_string(po.transport)} + " server";
  if (in.require("address", "host:port of the " + server))
    in.read_listen("address", po.address);
}

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

postoffice_config read_postoffice(table_reader in, const retry_policy& global) {
  in.reject_unknown_keys({"name", "domains", "transport", "path", "create_mailboxes",
                          "address", "default", "probe_timeout", "retry", "fault"});
  postoffice_config po;
  po.retry = global;
  if (in.require("name", "every postoffice needs one") && in.read("name", po.name)
      && !is_postoffice_name(po.name))
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
  if (auto overrides = in.table("retry"))
    read_retry(*overrides, po.retry);
  if (auto fault = in.table("fault"))
    read_fault(*fault, po.fault);
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

void read_postoffices(const toml::node* node, config& cfg,
                      std::vector<std::string>& problems) {
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
    cfg.postoffices.push_back(read_postoffice(entry, cfg.retry));
  }
  check_postoffices(cfg.postoffices, problems);
}

void read_document(const toml::table& doc, config& cfg, std::vector<std::string>& problems) {
  table_reader in{doc, "", problems};
  in.reject_unknown_keys({"server", "smtp", "retry", "admin", "postoffice"});
  if (auto server = in.table("server"))
    read_server(*server, cfg.server);
  if (auto smtp = in.table("smtp"))
    read_smtp(*smtp, cfg.smtp);
  if (auto retry = in.table("retry"))
    read_retry(*retry, cfg.retry);
  if (auto admin = in.table("admin"))
    read_admin(*admin, cfg.admin);
  // After [retry], wherever it stands in the file: postoffices start from it.
  read_postoffices(in.get("postoffice"), cfg, problems);
}

/// Appends the whole of `file` to `text`; the errno of a failure, else 0.
int read_whole_file(const std::filesystem::path& file, std::string& text) {
  auto close = [](std::FILE* f) { std::fclose(f); };
  std::unique_ptr<std::FILE, decltype(close)> in{std::fopen(file.c_str(), "rb"), close};
  if (!in)
    return errno;
  char buffer[65536];
  while (auto n = std::fread(buffer, 1, sizeof buffer, in.get()))
    text.append(buffer, n);
  return std::ferror(in.get()) ? errno : 0;
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
  read_document(doc, cfg, result.problems);
  if (result.problems.empty())
    result.value = std::move(cfg);
  return result;
}

config_result load_config_file(const std::filesystem::path& file) {
  std::string text;
  if (int error = read_whole_file(file, text))
    return {std::nullopt, {file.string() + ": cannot read: " + std::strerror(error)}};
  return parse_config(text, file.string());
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (!has_duration_syntax(text))
    return std::nullopt;
  bool has_unit = seconds_per(text.back()) != 0;
  auto unit = has_unit ? seconds_per(text.back()) : 1;
  auto digits = has_unit ? text.substr(0, text.size() - 1) : text;
  std::int64_t count = 0;
  for (char digit : digits) {
    count = count * 10 + (digit - '0');
    if (count > longest_duration.count() / unit)
      return std::nullopt;
  }
  return std::chrono::seconds{count * unit};
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
