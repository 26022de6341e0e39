// NAME
//   admin_client -- the admin verbs of the command line: `postconn queue`
//   (a page, --all pages, or --shape), `postconn postoffices`, `postconn
//   ledger ID`, `postconn show ID [--body]`, `postconn flush [PO]`,
//   `postconn hold|release|delete|requeue` of one message (ID), of every
//   delivery filters select, or of every one (ALL), and `postconn cluster
//   forget NODE`.
//
// DESCRIPTION
//   Each verb makes one request to a running server's admin API (see
//   admin_api.hpp) and prints the JSON reply as a table, or as it is with
//   --json; `queue --all` asks for page after page (each after the last
//   delivery of the one before, so deliveries that leave the queue
//   meanwhile make none be missed) and prints them as one. The format_*
//   functions turn a parsed reply into that text, so they can be tested
//   without a server.
//
//   A verb that acts on deliveries takes a message ID, ALL (any case), or
//   filters (--postoffice, --state, --sender, --recipient, --min-age);
//   ALL with filters is every delivery they select. A verb with neither is
//   a usage problem: nothing acts on the whole queue unless ALL says so.
//
//   Tables: each column as wide as its widest cell, two spaces apart,
//   counts right-aligned. Free text from the server in a table (errors,
//   postoffice problems, recipients) is cut to 40 characters, the last three
//   "...". Every string from the server is shown with its control
//   characters (below 0x20, 0x7f, U+0080-U+009F) and bytes that are not
//   UTF-8 replaced by '?', so a hostile error string cannot move the cursor
//   or reprogram the terminal; `show` keeps tabs (folded header lines) and
//   otherwise prints the message's lines as they are.
//
//   Ages and waits (format_age): at most two units, the largest first,
//   truncated rather than rounded, a second unit of zero left out:
//   0s, 45s, 3m, 3m20s, 3h, 3h12m, 2d, 2d4h. A negative span (clocks that
//   disagree) shows as 0s. Counts in sentences are grouped: 2,314.
//
//   The client waits 3 s for a connection and 15 s for a reply: longer
//   than the server's own 10 s wait for its actors, so a busy server's 503
//   arrives instead of a timeout.
//
//   Exit codes of run_admin_verb: 0 done; 1 the server answered with an
//   error (its "error" text on stderr) or with a reply that is not the
//   expected JSON; 2 a usage problem (an unknown verb, a missing or extra
//   argument, a filter a verb does not take, an ID with filters, a --limit
//   that is not a number, a --admin that is not http://HOST[:PORT]); 3 the
//   server could not be reached. Errors go to stderr as one line "postconn
//   VERB: why"; stdout gets only the result.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace postconn {

/// Where the admin verbs find the server unless --admin says otherwise.
inline constexpr std::string_view default_admin_url = "http://127.0.0.1:8025";

/// One admin verb as the command line gave it.
struct admin_verb {
  /// queue, postoffices, ledger, show, flush, hold, release, delete,
  /// requeue or "cluster forget".
  std::string name;
  /// The message ID (ledger, show; required), the message ID or ALL (hold,
  /// release, delete, requeue; or filters instead), the postoffice
  /// (flush; optional, empty: every postoffice), or the node (cluster
  /// forget; required).
  std::string argument;
  /// The admin API: http://HOST[:PORT], or HOST:PORT as in `[admin] listen`.
  std::string admin_url = std::string{default_admin_url};
  /// Print the server's JSON as it is instead of a table.
  bool json = false;
  /// Sent as "Authorization: Bearer <token>" when not empty.
  std::string token;
  /// delete: bounce the message's deliveries with an NDR instead of
  /// removing it without a trace.
  bool with_ndr = false;
  /// requeue: the postoffice the message's deliveries move to.
  std::string to;
  /// Sent as query parameters when they have a value: postoffice, state,
  /// sender (part of the address), recipient (part of an address), min_age
  /// (a duration); queue also limit and offset.
  std::map<std::string, std::string> filters;
  /// queue: every page, not one.
  bool all_pages = false;
  /// queue: the deliveries' ages per postoffice (qshape), not a list.
  bool shape = false;
  /// show: the body too, not only the header.
  bool with_body = false;
};

/// The host and port of the admin API.
struct admin_address {
  std::string host;
  int port = 80;
};

/// The server's answer to one request.
struct admin_reply {
  /// HTTP status; 0 when no answer came.
  int status = 0;
  /// The body as received.
  std::string body;
  /// Why no answer came (status 0), e.g. "cannot reach the admin API at
  /// http://127.0.0.1:8025: connection refused or host unreachable".
  std::string error;
};

/// "http://HOST[:PORT][/]" or "HOST:PORT" (an IPv6 HOST in brackets);
/// nullopt for anything else, https included.
std::optional<admin_address> parse_admin_url(std::string_view url);

/// Sends one request to the admin API at `base_url`.
admin_reply admin_call(const std::string& base_url, const std::string& method,
                       const std::string& path_and_query, const std::string& body = "",
                       const std::string& token = "");

/// A span of time in at most two units: "0s", "45s", "3m20s", "3h12m", "2d4h".
std::string format_age(std::int64_t seconds);

/// A GET /queue reply as a table and a count line; `offset` is the one the
/// request asked for ("12 deliveries, showing 51-62").
std::string format_queue(const nlohmann::json& reply, std::int64_t offset = 0);

/// A GET /postoffices reply as a table and a count line.
std::string format_postoffices(const nlohmann::json& reply);

/// A GET /messages/ID reply: the message, then each delivery's ledger and
/// attempt log.
std::string format_ledger(const nlohmann::json& reply);

/// A GET /queue/shape reply as qshape shows it: a TOTAL row, then a row per
/// postoffice (the largest first), its total (T) and its deliveries by age
/// in minutes (5: up to 5 minutes, 10: over 5 and up to 10, ... 1280+).
std::string format_shape(const nlohmann::json& reply);

/// A stored message's header lines (with `with_body` all of it), safe to
/// print.
std::string format_message(std::string_view content, bool with_body);

/// A verb's reply: "held 1 delivery", "flushed 3 deliveries", "deleted 12
/// messages, 30 deliveries", with the deliveries in flight when there are
/// any: "held 2,314 deliveries (12 in flight: held after their attempt)".
/// Throws std::invalid_argument for a reply that is none of these.
std::string format_action(const nlohmann::json& reply);

/// A POST /cluster/forget/NODE reply: "node c forgotten: 3 deliveries
/// adopted". Throws for a reply without its count.
std::string format_forget(const nlohmann::json& reply);

/// Runs `verb` against the server: its result to stdout, errors to stderr.
/// Returns the exit code (see DESCRIPTION).
int run_admin_verb(const admin_verb& verb);

/// The same, printing to `out` and `err`.
int run_admin_verb(const admin_verb& verb, std::ostream& out, std::ostream& err);

} // namespace postconn
