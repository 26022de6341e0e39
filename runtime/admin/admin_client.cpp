// NAME
//   admin_client -- the admin verbs of the command line (see admin_client.hpp).
#include "runtime/admin/admin_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <stdexcept>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace postconn {

namespace {

using json = nlohmann::json;

constexpr auto connect_timeout = std::chrono::seconds(3);
constexpr auto reply_timeout = std::chrono::seconds(15);

/// Free text (errors, problems, recipients) is cut to this many characters.
constexpr std::size_t free_text_width = 40;

// Text from the server, made safe to print.

/// One UTF-8 sequence: the code point and its length in bytes; length 0
/// when the bytes are not well-formed UTF-8.
struct code_point {
  char32_t value = 0;
  std::size_t length = 0;
};

/// The bytes of a UTF-8 sequence starting with `lead`; 0 when no sequence
/// starts with it.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80)
    return 1;
  if (lead < 0xc0)
    return 0;
  if (lead < 0xe0)
    return 2;
  if (lead < 0xf0)
    return 3;
  return lead < 0xf8 ? 4 : 0;
}

code_point decode_utf8(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  auto lead = byte(0);
  auto length = sequence_length(lead);
  if (length == 0 || text.size() < length)
    return {};
  constexpr char32_t lead_bits[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
  constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  char32_t value = lead & lead_bits[length];
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80)
      return {};
    value = value << 6 | (byte(i) & 0x3f);
  }
  if (value < smallest[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
    return {};
  return {value, length};
}

/// C0 controls, DEL and C1 controls: what a terminal may act on.
bool is_control(char32_t c) {
  return c < 0x20 || (c >= 0x7f && c < 0xa0);
}

/// `text` with control characters and bytes that are not UTF-8 as '?'.
std::string printable(std::string_view text) {
  std::string shown;
  while (!text.empty()) {
    auto c = decode_utf8(text);
    if (c.length == 0 || is_control(c.value)) {
      shown += '?';
      text.remove_prefix(std::max<std::size_t>(c.length, 1));
    } else {
      shown.append(text.substr(0, c.length));
      text.remove_prefix(c.length);
    }
  }
  return shown;
}

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

/// Characters in printable() text: one column each.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
    std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation_byte(c); }));
}

/// Printable `text` cut to `width` characters, the last three "...".
std::string shortened(const std::string& text, std::size_t width) {
  if (display_width(text) <= width)
    return text;
  std::size_t kept = 0;
  std::size_t end = 0;
  for (; end < text.size(); ++end)
    if (!is_continuation_byte(text[end]) && kept++ == width - 3)
      break;
  return text.substr(0, end) + "...";
}

/// Free text from the server for a table cell: printable, cut, "-" if empty.
std::string free_text(std::string_view text) {
  return text.empty() ? "-" : shortened(printable(text), free_text_width);
}

// Tables.

struct column {
  std::string_view header;
  bool right_aligned = false;
};

using table_row = std::vector<std::string>;

std::string padded(const std::string& text, std::size_t width, bool right_aligned) {
  std::string padding(width - std::min(width, display_width(text)), ' ');
  return right_aligned ? padding + text : text + padding;
}

/// One line per row under a header line, each column as wide as its widest
/// cell, two spaces apart, no blanks at the ends of lines.
std::string table_text(const std::vector<column>& columns, const std::vector<table_row>& rows,
                       std::string_view indent = "") {
  std::vector<std::size_t> widths;
  for (const auto& c : columns)
    widths.push_back(c.header.size());
  for (const auto& row : rows)
    for (std::size_t i = 0; i < columns.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  std::string text;
  auto add_line = [&](const table_row& cells) {
    std::string line{indent};
    for (std::size_t i = 0; i < columns.size(); ++i)
      line += (i == 0 ? "" : "  ") + padded(cells[i], widths[i], columns[i].right_aligned);
    line.erase(line.find_last_not_of(' ') + 1);
    text += line + "\n";
  };
  table_row headers;
  for (const auto& c : columns)
    headers.emplace_back(c.header);
  add_line(headers);
  for (const auto& row : rows)
    add_line(row);
  return text;
}

/// "name  value" lines, the values lined up.
std::string fields_text(const std::vector<std::pair<std::string_view, std::string>>& fields,
                        std::string_view indent = "") {
  std::size_t width = 0;
  for (const auto& field : fields)
    width = std::max(width, field.first.size());
  std::string text;
  for (const auto& [name, value] : fields)
    text += std::string{indent} + padded(std::string{name}, width, false) + "  " + value + "\n";
  return text;
}

// Fields of a reply.

std::int64_t number_of(const json& object, const char* key) {
  return object.value(key, std::int64_t{0});
}

std::string text_of(const json& object, const char* key) {
  return object.value(key, std::string{});
}

/// The array under `key`; an empty one when there is none.
const json& list_of(const json& object, const char* key) {
  static const json none = json::array();
  auto found = object.find(key);
  return found == object.end() ? none : *found;
}

/// "1 delivery", "3 deliveries".
std::string counted(std::int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string{n == 1 ? one : many};
}

/// "2025-11-24 15:00:00" in UTC.
std::string utc_time(std::int64_t at) {
  auto t = static_cast<std::time_t>(at);
  std::tm parts{};
  char text[32];
  if (!gmtime_r(&t, &parts) || !std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts))
    return std::to_string(at);
  return text;
}

/// "2025-11-24 15:00:00 UTC, 3h12m ago"; "-" for 0 (never).
std::string moment(std::int64_t at, std::int64_t now) {
  return at == 0 ? "-" : utc_time(at) + " UTC, " + format_age(now - at) + " ago";
}

/// "-3h12m" before now, "+5s" after it.
std::string relative_time(std::int64_t at, std::int64_t now) {
  return at <= now ? "-" + format_age(now - at) : "+" + format_age(at - now);
}

/// "3/144": retries counted against their limit.
std::string retries(const json& delivery, const char* count, const char* limit) {
  return std::to_string(number_of(delivery, count)) + "/"
         + std::to_string(number_of(delivery, limit));
}

/// The wait for a delivery's next attempt: "-" when none is scheduled
/// (held, in flight, finished), "now" when due, else "10m".
std::string next_attempt(const json& delivery, std::int64_t now) {
  auto state = text_of(delivery, "state");
  if (state != "queued" && state != "deferred")
    return "-";
  auto wait = number_of(delivery, "next_attempt_at") - now;
  return wait <= 0 ? "now" : format_age(wait);
}

/// The first recipient and "+N" for the others.
std::string recipients_cell(const json& recipients) {
  if (recipients.empty())
    return "-";
  auto first = free_text(recipients.front().get<std::string>());
  return recipients.size() == 1 ? first : first + " +" + std::to_string(recipients.size() - 1);
}

/// Every recipient, comma-separated.
std::string recipients_line(const json& recipients) {
  std::string line;
  for (const auto& recipient : recipients)
    line += (line.empty() ? "" : ", ") + printable(recipient.get<std::string>());
  return line.empty() ? "-" : line;
}

// The queue.

const std::vector<column> queue_columns = {
  {"ID"},        {"DELIVERY", true}, {"POSTOFFICE"}, {"STATE"},
  {"AGE", true}, {"OPENS", true},    {"TRANSFERS", true},
  {"NEXT", true}, {"RECIPIENTS"},    {"LAST ERROR"}};

table_row queue_row(const json& delivery, std::int64_t now) {
  return {printable(text_of(delivery, "message_id")),
          std::to_string(number_of(delivery, "delivery_id")),
          printable(text_of(delivery, "postoffice")),
          printable(text_of(delivery, "state")),
          format_age(now - number_of(delivery, "queued_at")),
          retries(delivery, "open_retries", "max_open_retries"),
          retries(delivery, "transfer_retries", "max_transfer_retries"),
          next_attempt(delivery, now),
          recipients_cell(list_of(delivery, "recipients")),
          free_text(text_of(delivery, "last_error"))};
}

/// "2 deliveries", "120 deliveries, showing 51-100".
std::string queue_summary(std::int64_t total, std::int64_t offset, std::size_t shown) {
  auto line = counted(total, "delivery", "deliveries");
  if (shown == 0)
    line += ", none from " + std::to_string(offset + 1) + " on";
  else if (offset > 0 || static_cast<std::int64_t>(shown) < total)
    line += ", showing " + std::to_string(offset + 1) + "-"
            + std::to_string(offset + static_cast<std::int64_t>(shown));
  return line + "\n";
}

// Postoffices.

const std::vector<column> postoffice_columns = {
  {"NAME"},         {"TRANSPORT"},       {"STATUS"},
  {"SINCE", true},  {"QUEUED", true},    {"HELD", true},
  {"IN FLIGHT", true}, {"OPEN FAILURES", true}, {"PROBLEM"}};

/// A postoffice's state as the table shows it: one that is down stands out.
std::string state_text(const std::string& state) {
  if (state == "down")
    return "DOWN";
  return state == "up" ? state : "unknown";
}

table_row postoffice_row(const json& postoffice, std::int64_t now) {
  auto since = number_of(postoffice, "since");
  return {printable(text_of(postoffice, "name")),
          printable(text_of(postoffice, "transport")),
          state_text(text_of(postoffice, "state")),
          since == 0 ? "-" : format_age(now - since),
          std::to_string(number_of(postoffice, "queued")),
          std::to_string(number_of(postoffice, "held")),
          std::to_string(number_of(postoffice, "in_flight")),
          std::to_string(number_of(postoffice, "open_failures")),
          free_text(text_of(postoffice, "problem"))};
}

// The ledger.

const std::vector<column> attempt_columns = {
  {"TIME (UTC)"}, {"RELATIVE", true}, {"OUTCOME"}, {"CODE"}, {"TEXT"}};

table_row attempt_row(const json& attempt, std::int64_t now) {
  auto at = number_of(attempt, "at");
  auto code = printable(text_of(attempt, "code"));
  return {utc_time(at), relative_time(at, now), printable(text_of(attempt, "outcome")),
          code.empty() ? "-" : code, printable(text_of(attempt, "text"))};
}

std::string attempt_log(const json& attempts, std::int64_t now) {
  std::vector<table_row> rows;
  for (const auto& attempt : attempts)
    rows.push_back(attempt_row(attempt, now));
  return table_text(attempt_columns, rows, "    ");
}

/// One delivery: a heading, its ledger fields, its attempt log.
std::string delivery_text(const json& delivery, std::int64_t now) {
  const auto& attempts = list_of(delivery, "attempts");
  auto next = next_attempt(delivery, now);
  auto last_error = printable(text_of(delivery, "last_error"));
  auto text = "delivery " + std::to_string(number_of(delivery, "delivery_id")) + " to "
              + printable(text_of(delivery, "postoffice")) + ": "
              + printable(text_of(delivery, "state")) + "\n";
  text += fields_text(
    {{"recipients", recipients_line(list_of(delivery, "recipients"))},
     {"queued", moment(number_of(delivery, "queued_at"), now)},
     {"opens", retries(delivery, "open_retries", "max_open_retries")},
     {"transfers", retries(delivery, "transfer_retries", "max_transfer_retries")},
     {"next attempt", next == "-" || next == "now" ? next : "in " + next},
     {"last error", last_error.empty() ? "-" : last_error},
     {"attempts", attempts.empty() ? "none" : std::to_string(attempts.size())}},
    "  ");
  return attempts.empty() ? text : text + attempt_log(attempts, now);
}

// Requests.

enum class argument_rule { none, optional, required };

struct verb_rule {
  std::string_view name;
  argument_rule argument;
};

constexpr verb_rule verb_rules[] = {
  {"queue", argument_rule::none},       {"postoffices", argument_rule::none},
  {"ledger", argument_rule::required},  {"flush", argument_rule::optional},
  {"hold", argument_rule::required},    {"release", argument_rule::required},
  {"delete", argument_rule::required},  {"requeue", argument_rule::required}};

constexpr std::string_view queue_filters[] = {"postoffice", "state", "sender", "min_age",
                                              "limit", "offset"};

const verb_rule* rule_of(std::string_view name) {
  for (const auto& rule : verb_rules)
    if (rule.name == name)
      return &rule;
  return nullptr;
}

/// What is wrong with how `verb` was asked for; empty when nothing is.
std::string usage_problem(const admin_verb& verb) {
  const auto* rule = rule_of(verb.name);
  if (!rule)
    return "not an admin verb (queue, postoffices, ledger, flush, hold, release, delete, "
           "requeue)";
  if (rule->argument == argument_rule::required && verb.argument.empty())
    return "which message? give its ID";
  if (verb.name == "requeue" && verb.to.empty())
    return "to which postoffice? give --to PO";
  if (rule->argument == argument_rule::none && !verb.argument.empty())
    return "takes no argument, got \"" + verb.argument + "\"";
  for (const auto& [name, value] : verb.filters)
    if (verb.name != "queue"
        || std::find(std::begin(queue_filters), std::end(queue_filters), name)
             == std::end(queue_filters))
      return "no filter " + name + " here";
  if (!parse_admin_url(verb.admin_url))
    return "--admin: not an http://HOST[:PORT] URL: " + verb.admin_url;
  return {};
}

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// Every byte but A-Z a-z 0-9 - . _ ~ as %XX: safe in a path segment or a
/// query value.
std::string percent_encoded(std::string_view text) {
  constexpr char hex[] = "0123456789ABCDEF";
  std::string encoded;
  for (char c : text) {
    if (is_ascii_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      encoded += c;
    } else {
      auto byte = static_cast<unsigned char>(c);
      encoded += '%';
      encoded += hex[byte >> 4];
      encoded += hex[byte & 0xf];
    }
  }
  return encoded;
}

/// "?a=1&b=2" of the filters that have a value; empty when none has.
std::string query_of(const std::map<std::string, std::string>& filters) {
  std::string query;
  for (const auto& [name, value] : filters)
    if (!value.empty())
      query += (query.empty() ? "?" : "&") + name + "=" + percent_encoded(value);
  return query;
}

struct admin_request {
  std::string method;
  std::string path_and_query;
};

/// The request that carries out `verb` (one usage_problem() found fine).
admin_request request_for(const admin_verb& verb) {
  auto message = "/messages/" + percent_encoded(verb.argument);
  if (verb.name == "queue")
    return {"GET", "/queue" + query_of(verb.filters)};
  if (verb.name == "postoffices")
    return {"GET", "/postoffices"};
  if (verb.name == "ledger")
    return {"GET", message};
  if (verb.name == "flush")
    return {"POST", "/flush" + query_of({{"postoffice", verb.argument}})};
  if (verb.name == "delete")
    return {"DELETE", message + (verb.with_ndr ? "?ndr=1" : "")};
  if (verb.name == "requeue")
    return {"POST", message + "/requeue" + query_of({{"postoffice", verb.to}})};
  return {"POST", message + "/" + verb.name};
}

/// The offset the queue verb asked for, for the "showing" line.
std::int64_t offset_of(const admin_verb& verb) {
  auto found = verb.filters.find("offset");
  return found == verb.filters.end() ? 0 : std::strtoll(found->second.c_str(), nullptr, 10);
}

/// A successful reply to `verb` as the text to print.
std::string formatted(const admin_verb& verb, const json& reply) {
  if (verb.name == "queue")
    return format_queue(reply, offset_of(verb));
  if (verb.name == "postoffices")
    return format_postoffices(reply);
  if (verb.name == "ledger")
    return format_ledger(reply);
  return format_action(reply);
}

/// The server's "error" text of a failed request, else its status and body.
std::string error_of(const admin_reply& reply) {
  auto body = json::parse(reply.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_string())
    return body["error"].get<std::string>();
  auto text = "the admin API answered HTTP " + std::to_string(reply.status);
  return reply.body.empty() ? text : text + ": " + shortened(printable(reply.body), 80);
}

std::string connection_failure(httplib::Error error) {
  switch (error) {
  case httplib::Error::Connection:
    return "connection refused, or host unknown or unreachable";
  case httplib::Error::ConnectionTimeout:
    return "no connection within " + std::to_string(connect_timeout.count()) + " s";
  case httplib::Error::Read:
    return "no reply within " + std::to_string(reply_timeout.count())
           + " s, or the connection broke";
  case httplib::Error::Write:
    return "the request could not be sent";
  default:
    return httplib::to_string(error);
  }
}

bool is_host_char(char c) {
  return is_ascii_alnum(c) || c == '.' || c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':'
         || c == '.';
}

/// A port of 1 to 65535 in decimal digits.
std::optional<int> port_of(std::string_view text) {
  if (text.empty() || text.size() > 5
      || !std::all_of(text.begin(), text.end(),
                      [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  auto port = std::stoi(std::string{text});
  return port >= 1 && port <= 65535 ? std::optional<int>{port} : std::nullopt;
}

} // namespace

// Public functions.

std::optional<admin_address> parse_admin_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) == scheme)
    url.remove_prefix(scheme.size());
  if (!url.empty() && url.back() == '/')
    url.remove_suffix(1);
  admin_address address;
  std::string_view rest;
  if (!url.empty() && url.front() == '[') {
    auto close = url.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    address.host = std::string{url.substr(1, close - 1)};
    rest = url.substr(close + 1);
    if (!std::all_of(address.host.begin(), address.host.end(), is_ipv6_char))
      return std::nullopt;
  } else {
    auto colon = url.find(':');
    address.host = std::string{url.substr(0, colon)};
    rest = colon == std::string_view::npos ? "" : url.substr(colon);
    if (!std::all_of(address.host.begin(), address.host.end(), is_host_char))
      return std::nullopt;
  }
  if (address.host.empty())
    return std::nullopt;
  if (rest.empty())
    return address;
  auto port = rest.front() == ':' ? port_of(rest.substr(1)) : std::nullopt;
  if (!port)
    return std::nullopt;
  address.port = *port;
  return address;
}

admin_reply admin_call(const std::string& base_url, const std::string& method,
                       const std::string& path_and_query, const std::string& body,
                       const std::string& token) {
  auto address = parse_admin_url(base_url);
  if (!address)
    return {0, {}, "not an http://HOST[:PORT] URL: " + base_url};
  httplib::Client client{address->host, address->port};
  client.set_connection_timeout(connect_timeout);
  client.set_read_timeout(reply_timeout);
  client.set_write_timeout(reply_timeout);
  client.set_url_encode(false);
  httplib::Request request;
  request.method = method;
  request.path = path_and_query;
  request.body = body;
  if (!body.empty())
    request.set_header("Content-Type", "application/json");
  if (!token.empty())
    request.set_header("Authorization", "Bearer " + token);
  auto result = client.send(request);
  if (!result)
    return {0, {},
            "cannot reach the admin API at " + base_url + ": "
              + connection_failure(result.error())};
  return {result->status, result->body, {}};
}

std::string format_age(std::int64_t seconds) {
  constexpr std::pair<std::int64_t, char> units[] = {
    {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  if (seconds <= 0)
    return "0s";
  std::size_t largest = 0;
  while (seconds < units[largest].first)
    ++largest;
  auto [size, letter] = units[largest];
  auto text = std::to_string(seconds / size) + letter;
  if (largest + 1 < std::size(units)) {
    auto [next_size, next_letter] = units[largest + 1];
    auto rest = seconds % size / next_size;
    if (rest > 0)
      text += std::to_string(rest) + next_letter;
  }
  return text;
}

std::string format_queue(const json& reply, std::int64_t offset) {
  auto total = number_of(reply, "total");
  const auto& deliveries = list_of(reply, "deliveries");
  if (total == 0 && deliveries.empty())
    return "queue is empty\n";
  auto now = number_of(reply, "now");
  std::vector<table_row> rows;
  for (const auto& delivery : deliveries)
    rows.push_back(queue_row(delivery, now));
  auto table = rows.empty() ? std::string{} : table_text(queue_columns, rows);
  return table + queue_summary(total, offset, rows.size());
}

/// In a cluster: this node and the live members, one line.
std::string cluster_line(const json& cluster) {
  auto text = "cluster: node " + printable(text_of(cluster, "node")) + "; members";
  for (const auto& member : list_of(cluster, "members"))
    text += " " + printable(text_of(member, "node")) + " ("
            + printable(text_of(member, "address")) + ")";
  return text + "\n";
}

std::string format_postoffices(const json& reply) {
  const auto& postoffices = list_of(reply, "postoffices");
  if (postoffices.empty())
    return "no postoffices\n";
  auto now = number_of(reply, "now");
  auto in_cluster = reply.contains("cluster");
  auto here = in_cluster ? text_of(reply["cluster"], "node") : std::string{};
  auto columns = postoffice_columns;
  if (in_cluster)
    columns.insert(columns.begin() + 1, column{"OWNER"});
  std::vector<table_row> rows;
  std::int64_t down = 0;
  std::int64_t unknown = 0;
  std::int64_t elsewhere = 0;
  for (const auto& postoffice : postoffices) {
    auto owner = text_of(postoffice, "owner");
    if (in_cluster && owner != here) {
      // Probed and counted by its owner: `postconn postoffices` there.
      table_row row(columns.size(), "-");
      row[0] = printable(text_of(postoffice, "name"));
      row[1] = printable(owner);
      rows.push_back(std::move(row));
      ++elsewhere;
      continue;
    }
    rows.push_back(postoffice_row(postoffice, now));
    if (in_cluster)
      rows.back().insert(rows.back().begin() + 1, printable(owner));
    auto state = text_of(postoffice, "state");
    down += state == "down" ? 1 : 0;
    unknown += state == "up" || state == "down" ? 0 : 1;
  }
  auto summary = counted(static_cast<std::int64_t>(rows.size()), "postoffice", "postoffices")
                 + ", " + std::to_string(down) + " down";
  if (unknown > 0)
    summary += ", " + std::to_string(unknown) + " not probed yet";
  if (in_cluster)
    summary += ", " + std::to_string(elsewhere) + " owned by other nodes";
  return (in_cluster ? cluster_line(reply["cluster"]) : std::string{})
         + table_text(columns, rows) + summary + "\n";
}

std::string format_ledger(const json& reply) {
  auto now = number_of(reply, "now");
  auto sender = printable(text_of(reply, "sender"));
  auto text = fields_text({{"message", printable(text_of(reply, "message_id"))},
                           {"sender", sender.empty() ? "<>" : sender},
                           {"received", moment(number_of(reply, "received_at"), now)},
                           {"size", counted(number_of(reply, "size"), "byte", "bytes")}});
  const auto& deliveries = list_of(reply, "deliveries");
  if (deliveries.empty())
    return text + "\nno deliveries\n";
  for (const auto& delivery : deliveries)
    text += "\n" + delivery_text(delivery, now);
  return text;
}

std::string format_action(const json& reply) {
  for (const char* done : {"held", "released", "flushed", "deleted", "bounced", "requeued"})
    if (reply.is_object() && reply.contains(done))
      return std::string{done} + " "
             + counted(reply[done].get<std::int64_t>(), "delivery", "deliveries") + "\n";
  throw std::invalid_argument("not a hold, release, flush, delete or requeue reply");
}

int run_admin_verb(const admin_verb& verb) {
  return run_admin_verb(verb, std::cout, std::cerr);
}

int run_admin_verb(const admin_verb& verb, std::ostream& out, std::ostream& err) {
  auto fail = [&](int code, const std::string& why) {
    err << "postconn " << printable(verb.name) << ": " << printable(why) << "\n";
    return code;
  };
  if (auto problem = usage_problem(verb); !problem.empty())
    return fail(2, problem);
  auto request = request_for(verb);
  auto reply = admin_call(verb.admin_url, request.method, request.path_and_query, "", verb.token);
  if (reply.status == 0)
    return fail(3, reply.error);
  if (reply.status < 200 || reply.status > 299)
    return fail(1, error_of(reply));
  if (verb.json) {
    out << reply.body << (reply.body.empty() || reply.body.back() != '\n' ? "\n" : "");
    return 0;
  }
  try {
    out << formatted(verb, json::parse(reply.body));
  } catch (const std::exception& e) {
    return fail(1, std::string{"unexpected reply from the admin API: "} + e.what());
  }
  return 0;
}

} // namespace postconn
