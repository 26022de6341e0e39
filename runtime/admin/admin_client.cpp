// NAME
//   admin_client -- the admin verbs of the command line (see admin_client.hpp).
#include "runtime/admin/admin_client.hpp"

#include <algorithm>
#include <cctype>
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

/// `text` with control characters and bytes that are not UTF-8 as '?';
/// with `keep_tabs`, a tab stays (as in folded header lines).
std::string printable(std::string_view text, bool keep_tabs = false) {
  std::string shown;
  while (!text.empty()) {
    auto c = decode_utf8(text);
    if (c.length == 0 || (is_control(c.value) && !(keep_tabs && c.value == '\t'))) {
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

/// "2,314": digits in groups of three.
std::string grouped(std::int64_t n) {
  auto digits = std::to_string(n < 0 ? -n : n);
  for (auto at = static_cast<std::ptrdiff_t>(digits.size()) - 3; at > 0; at -= 3)
    digits.insert(static_cast<std::size_t>(at), ",");
  return n < 0 ? "-" + digits : digits;
}

/// "1 delivery", "2,314 deliveries".
std::string counted(std::int64_t n, std::string_view one, std::string_view many) {
  return grouped(n) + " " + std::string{n == 1 ? one : many};
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

const std::vector<column> recipient_columns = {
  {"RECIPIENT"}, {"STATUS"}, {"CODE"}, {"TIME (UTC)"}, {"TEXT"}};

/// Each recipient of a delivery: its outcome as the ledger keeps it, or
/// "waiting" for one no attempt has decided yet. The reply is shown whole.
std::vector<table_row> recipient_rows(const json& delivery) {
  std::vector<table_row> rows;
  for (const auto& outcome : list_of(delivery, "recipient_outcomes")) {
    auto code = printable(text_of(outcome, "code"));
    rows.push_back({printable(text_of(outcome, "recipient")),
                    printable(text_of(outcome, "status")), code.empty() ? "-" : code,
                    utc_time(number_of(outcome, "at")), printable(text_of(outcome, "text"))});
  }
  for (const auto& recipient : list_of(delivery, "recipients")) {
    auto address = printable(recipient.get<std::string>());
    if (std::none_of(rows.begin(), rows.end(), [&](const auto& r) { return r[0] == address; }))
      rows.push_back({address, "waiting", "-", "-", "-"});
  }
  return rows;
}

/// "1 delivered, 1 bounced": the recipients by status, in the order seen.
std::string recipient_tally(const std::vector<table_row>& rows) {
  std::vector<std::pair<std::string, int>> tally;
  for (const auto& row : rows) {
    auto known = std::find_if(tally.begin(), tally.end(),
                              [&](const auto& t) { return t.first == row[1]; });
    if (known == tally.end())
      tally.emplace_back(row[1], 1);
    else
      ++known->second;
  }
  std::string text;
  for (const auto& [status, count] : tally)
    text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + status;
  return text.empty() ? "none" : text;
}

/// A field of a delivery, its value lined up with those of the others
/// (the longest name is "next attempt").
std::string delivery_field(std::string_view name, const std::string& value) {
  return "  " + padded(std::string{name}, 12, false) + "  " + value + "\n";
}

/// One delivery: a heading, its ledger fields, what became of each
/// recipient, its attempt log.
std::string delivery_text(const json& delivery, std::int64_t now) {
  const auto& log = list_of(delivery, "attempts");
  auto recipients = recipient_rows(delivery);
  auto next = next_attempt(delivery, now);
  auto last_error = printable(text_of(delivery, "last_error"));
  auto attempts = number_of(delivery, "attempts_made");
  auto text = "delivery " + std::to_string(number_of(delivery, "delivery_id")) + " to "
              + printable(text_of(delivery, "postoffice")) + ": "
              + printable(text_of(delivery, "state")) + "\n";
  text += delivery_field("queued", moment(number_of(delivery, "queued_at"), now));
  text += delivery_field("opens", retries(delivery, "open_retries", "max_open_retries"));
  text += delivery_field("transfers",
                         retries(delivery, "transfer_retries", "max_transfer_retries"));
  auto unscheduled = number_of(delivery, "unscheduled_failures");
  auto attempts_text = attempts == 0 ? std::string{"none"} : std::to_string(attempts);
  if (unscheduled > 0)
    attempts_text += " (" + std::to_string(unscheduled)
                     + " ahead of schedule failed, no retry used)";
  text += delivery_field("attempts", attempts_text);
  if (delivery.value("in_doubt", false))
    text += delivery_field("in doubt", "an attempt may have delivered it before a restart; "
                                       "failed opens do not bounce it");
  text += delivery_field("next attempt", next == "-" || next == "now" ? next : "in " + next);
  text += delivery_field("last error", last_error.empty() ? "-" : last_error);
  text += delivery_field("recipients", recipient_tally(recipients));
  if (!recipients.empty())
    text += table_text(recipient_columns, recipients, "    ");
  text += delivery_field("log", log.empty() ? "none"
                                            : counted(static_cast<std::int64_t>(log.size()),
                                                      "line", "lines"));
  return log.empty() ? text : text + attempt_log(log, now);
}

// Messages as stored.

/// The header lines of `content` (all of it with `with_body`), each made
/// safe to print, tabs kept.
std::string message_text(std::string_view content, bool with_body) {
  std::string text;
  while (!content.empty()) {
    auto end = content.find('\n');
    auto line = content.substr(0, end);
    content.remove_prefix(end == std::string_view::npos ? content.size() : end + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty() && !with_body)
      break;
    text += printable(line, true) + "\n";
  }
  return text;
}

// Requests.

enum class argument_rule {
  none,
  optional,
  required,
  /// An ID, ALL, or none with filters.
  id_or_filters,
  /// A cluster node's name.
  node,
};

struct verb_rule {
  std::string_view name;
  argument_rule argument;
};

constexpr verb_rule verb_rules[] = {
  {"queue", argument_rule::none},
  {"postoffices", argument_rule::none},
  {"ledger", argument_rule::required},
  {"show", argument_rule::required},
  {"flush", argument_rule::optional},
  {"hold", argument_rule::id_or_filters},
  {"release", argument_rule::id_or_filters},
  {"delete", argument_rule::id_or_filters},
  {"requeue", argument_rule::id_or_filters},
  {"cluster forget", argument_rule::node}};

/// What selects deliveries, for queue and every verb that acts on them.
constexpr std::string_view delivery_filters[] = {"postoffice", "state", "sender", "recipient",
                                                 "min_age"};

/// The queue listing's page.
constexpr std::string_view page_filters[] = {"limit", "offset"};

/// The server's largest page, which `queue --all` asks for.
constexpr std::string_view largest_page = "1000";

const verb_rule* rule_of(std::string_view name) {
  for (const auto& rule : verb_rules)
    if (rule.name == name)
      return &rule;
  return nullptr;
}

template <std::size_t n>
bool is_one_of(std::string_view name, const std::string_view (&names)[n]) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

/// The filters given a value.
std::map<std::string, std::string> given(const std::map<std::string, std::string>& filters) {
  std::map<std::string, std::string> set;
  for (const auto& [name, value] : filters)
    if (!value.empty())
      set.emplace(name, value);
  return set;
}

/// ALL, in any case: every delivery (filters may narrow it).
bool is_all(std::string_view argument) {
  constexpr std::string_view all = "all";
  return argument.size() == all.size()
         && std::equal(all.begin(), all.end(), argument.begin(), [](char a, char b) {
              return a == std::tolower(static_cast<unsigned char>(b));
            });
}

/// What is wrong with a filter's value; empty when nothing is.
std::string filter_problem(const std::string& name, const std::string& value) {
  auto digits = !value.empty() && value.size() <= 12
                && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (name == "limit" && (!digits || std::stoll(value) == 0))
    return "--limit: a whole number of at least 1, got \"" + value + "\"";
  if (name == "offset" && !digits)
    return "--offset: a whole number, got \"" + value + "\"";
  return {};
}

/// Whether `verb` takes the filter `name`.
bool takes_filter(const admin_verb& verb, const std::string& name) {
  if (verb.name == "queue")
    return is_one_of(name, delivery_filters) || is_one_of(name, page_filters);
  auto acts_on_deliveries =
    verb.name == "flush" || rule_of(verb.name)->argument == argument_rule::id_or_filters;
  return acts_on_deliveries && is_one_of(name, delivery_filters);
}

/// What is wrong with the filters and options of `verb`; empty when
/// nothing is.
std::string option_problem(const admin_verb& verb, const std::map<std::string, std::string>& set) {
  for (const auto& [name, value] : set) {
    if (!takes_filter(verb, name))
      return "no filter " + name + " here";
    if (auto problem = filter_problem(name, value); !problem.empty())
      return problem;
  }
  auto paged = set.count("limit") || set.count("offset");
  if (verb.shape && (paged || verb.all_pages))
    return "--shape counts every delivery selected: leave out --all, --limit and --offset";
  if (verb.all_pages && paged)
    return "--all reads every page: leave out --limit and --offset";
  if (verb.name == "show" && verb.json)
    return "--json does not apply: show prints the message as the queue holds it";
  return {};
}

/// What is wrong with how `verb` was asked for; empty when nothing is.
std::string usage_problem(const admin_verb& verb) {
  const auto* rule = rule_of(verb.name);
  if (!rule)
    return "not an admin verb (queue, postoffices, ledger, show, flush, hold, release, delete, "
           "requeue, cluster forget)";
  auto set = given(verb.filters);
  if (rule->argument == argument_rule::required && verb.argument.empty())
    return "which message? give its ID";
  if (rule->argument == argument_rule::node && verb.argument.empty())
    return "which node? give its name";
  if (rule->argument == argument_rule::id_or_filters && verb.argument.empty() && set.empty())
    return "which deliveries? give an ID, ALL, or filters (--postoffice, --state, --sender, "
           "--recipient, --min-age)";
  if (rule->argument == argument_rule::id_or_filters && !verb.argument.empty()
      && !is_all(verb.argument) && !set.empty())
    return "an ID or filters, not both (ALL with filters: every delivery they select)";
  if (verb.name == "requeue" && verb.to.empty())
    return "to which postoffice? give --to PO";
  if (rule->argument == argument_rule::none && !verb.argument.empty())
    return "takes no argument, got \"" + verb.argument + "\"";
  if (verb.name == "flush" && !verb.argument.empty() && set.count("postoffice"))
    return "give the postoffice once: as PO or as --postoffice";
  if (auto problem = option_problem(verb, set); !problem.empty())
    return problem;
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

/// The request of a verb on the deliveries its filters select (or every
/// one: ALL).
admin_request request_by_filter(const admin_verb& verb) {
  auto params = given(verb.filters);
  if (verb.name == "flush" && !verb.argument.empty())
    params["postoffice"] = verb.argument; // a postoffice's name, whatever it is
  else if (is_all(verb.argument))
    params["all"] = "1";
  if (verb.with_ndr)
    params["ndr"] = "1";
  if (verb.name == "requeue")
    params["to"] = verb.to;
  return {"POST", "/queue/" + verb.name + query_of(params)};
}

/// The request that carries out `verb` (one usage_problem() found fine).
admin_request request_for(const admin_verb& verb) {
  auto message = "/messages/" + percent_encoded(verb.argument);
  if (verb.name == "queue")
    return {"GET", verb.shape ? "/queue/shape" + query_of(verb.filters)
                              : "/queue" + query_of(verb.filters)};
  if (verb.name == "postoffices")
    return {"GET", "/postoffices"};
  if (verb.name == "ledger")
    return {"GET", message};
  if (verb.name == "show")
    return {"GET", message + "/content"};
  if (verb.name == "cluster forget")
    return {"POST", "/cluster/forget/" + percent_encoded(verb.argument)};
  auto filtered = !given(verb.filters).empty();
  if (verb.name == "flush")
    return filtered ? request_by_filter(verb)
                    : admin_request{"POST", "/flush" + query_of({{"postoffice", verb.argument}})};
  if (filtered || is_all(verb.argument))
    return request_by_filter(verb);
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
    return verb.shape ? format_shape(reply) : format_queue(reply, offset_of(verb));
  if (verb.name == "postoffices")
    return format_postoffices(reply);
  if (verb.name == "ledger")
    return format_ledger(reply);
  if (verb.name == "cluster forget")
    return format_forget(reply);
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

std::string format_shape(const json& reply) {
  if (number_of(reply, "total") == 0)
    return "queue is empty\n";
  std::vector<column> columns = {{"POSTOFFICE"}, {"T", true}};
  std::vector<std::string> headers; // kept: columns hold views of them
  for (const auto& bound : list_of(reply, "bounds"))
    headers.push_back(std::to_string(bound.get<std::int64_t>() / 60));
  if (!headers.empty())
    headers.push_back(headers.back() + "+");
  for (const auto& header : headers)
    columns.push_back({header, true});
  auto row_of = [&](std::string name, const json& shape) {
    table_row row{std::move(name), std::to_string(number_of(shape, "total"))};
    for (const auto& count : list_of(shape, "ages"))
      row.push_back(std::to_string(count.get<std::int64_t>()));
    row.resize(columns.size(), "0");
    return row;
  };
  std::vector<const json*> postoffices;
  for (const auto& postoffice : list_of(reply, "postoffices"))
    postoffices.push_back(&postoffice);
  // The largest first, as qshape lists its domains.
  std::stable_sort(postoffices.begin(), postoffices.end(), [](const json* a, const json* b) {
    return number_of(*a, "total") > number_of(*b, "total");
  });
  std::vector<table_row> rows{row_of("TOTAL", reply)};
  for (const auto* postoffice : postoffices)
    rows.push_back(row_of(printable(text_of(*postoffice, "name")), *postoffice));
  return table_text(columns, rows);
}

std::string format_message(std::string_view content, bool with_body) {
  return message_text(content, with_body);
}

std::string format_action(const json& reply) {
  constexpr std::pair<const char*, const char*> verbs[] = {
    {"held", "held after their attempt"},
    {"released", ""},
    {"flushed", "being attempted already"},
    {"deleted", "their messages stay; try again"},
    {"bounced", "their messages stay; try again"},
    {"requeued", "not moved; try again"}};
  for (const auto& [done, in_flight_note] : verbs) {
    if (!reply.is_object() || !reply.contains(done))
      continue;
    auto text = std::string{done} + " ";
    if (reply.contains("messages"))
      text += counted(number_of(reply, "messages"), "message", "messages") + ", ";
    text += counted(reply[done].get<std::int64_t>(), "delivery", "deliveries");
    if (auto in_flight = number_of(reply, "in_flight"); in_flight > 0)
      text += " (" + grouped(in_flight) + " in flight: " + in_flight_note + ")";
    return text + "\n";
  }
  throw std::invalid_argument("not a hold, release, flush, delete or requeue reply");
}

std::string format_forget(const json& reply) {
  return "node " + printable(text_of(reply, "node")) + " forgotten: "
         + counted(reply.at("adopted").get<std::int64_t>(), "delivery", "deliveries")
         + " adopted\n";
}

int run_admin_verb(const admin_verb& verb) {
  return run_admin_verb(verb, std::cout, std::cerr);
}

namespace {

/// A request's reply, or why there is none to use: exit code 3 (no
/// answer) or 1 (an error from the server), with the reason.
struct verb_call {
  admin_reply reply;
  int exit_code = 0;
  std::string problem;
};

verb_call call(const admin_verb& verb, const admin_request& request) {
  auto reply = admin_call(verb.admin_url, request.method, request.path_and_query, "", verb.token);
  if (reply.status == 0)
    return {reply, 3, reply.error};
  if (reply.status < 200 || reply.status > 299)
    return {reply, 1, error_of(reply)};
  return {reply, 0, {}};
}

/// queue --all: every page, each after the last delivery of the one
/// before, as one reply (its total: the deliveries listed).
verb_call every_page(const admin_verb& verb, json& merged) {
  auto filters = verb.filters;
  filters["limit"] = std::string{largest_page};
  auto deliveries = json::array();
  for (;;) {
    auto page = call(verb, {"GET", "/queue" + query_of(filters)});
    if (page.exit_code != 0)
      return page;
    merged = json::parse(page.reply.body);
    for (auto& delivery : merged.at("deliveries"))
      deliveries.push_back(std::move(delivery));
    auto next = merged.value("next", std::string{});
    if (next.empty() || next == filters["after"]) // the last page, or one that would repeat
      break;
    filters["after"] = next;
  }
  merged["deliveries"] = std::move(deliveries);
  merged["total"] = merged["deliveries"].size();
  return {};
}

} // namespace

int run_admin_verb(const admin_verb& verb, std::ostream& out, std::ostream& err) {
  auto fail = [&](int code, const std::string& why) {
    err << "postconn " << printable(verb.name) << ": " << printable(why) << "\n";
    return code;
  };
  if (auto problem = usage_problem(verb); !problem.empty())
    return fail(2, problem);
  try {
    json reply;
    if (verb.name == "queue" && verb.all_pages) {
      if (auto failed = every_page(verb, reply); failed.exit_code != 0)
        return fail(failed.exit_code, failed.problem);
      out << (verb.json ? reply.dump(2) + "\n" : format_queue(reply));
      return 0;
    }
    auto done = call(verb, request_for(verb));
    if (done.exit_code != 0)
      return fail(done.exit_code, done.problem);
    const auto& body = done.reply.body;
    if (verb.name == "show")
      out << format_message(body, verb.with_body);
    else if (verb.json)
      out << body << (body.empty() || body.back() != '\n' ? "\n" : "");
    else
      out << formatted(verb, json::parse(body));
  } catch (const std::exception& e) {
    return fail(1, std::string{"unexpected reply from the admin API: "} + e.what());
  }
  return 0;
}

} // namespace postconn
