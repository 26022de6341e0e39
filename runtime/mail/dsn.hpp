// NAME
//   dsn -- the NDR builder: a delivery status notification (RFC 3464) for
//   recipients that failed or are delayed, as one message ready to queue.
//   No I/O.
//
// DESCRIPTION
//   build_dsn() returns a multipart/report (RFC 6522) with three parts: a
//   text/plain explanation for people, message/delivery-status with one
//   block per recipient, and text/rfc822-headers with the original header
//   block. Lines end in CRLF; the envelope is the caller's (MAIL FROM:<>,
//   RCPT TO: the original sender).
//
//   Nothing taken from the original message or a remote server (Subject,
//   addresses, diagnostic text, header block) can add a header line or a
//   MIME part:
//     - every value put into a header or a DSN field has CR, LF, NUL and
//       other controls turned into spaces, runs of white space collapsed,
//       each non-ASCII character replaced by '?' (RFC 2047 encoded-words,
//       being ASCII, pass unchanged), and is cut at 900 octets; long fields
//       are folded at spaces, so no line exceeds 998 octets;
//     - part 3 keeps printable ASCII and tabs (anything else becomes '?'),
//       and cuts lines longer than 998 octets;
//     - the boundary never occurs anywhere in the parts: it is derived from
//       the queue id and `now`, and a counter in it goes up until it does
//       not.
//   The same report gives the same message (Date, Message-ID and boundary
//   come from `now` and the queue id), so a retried NDR commit is identical.
//
//   Status fields always agree with the action: class 5 for failed, class 4
//   for delayed; a malformed status becomes 5.0.0 or 4.0.0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postconn {

/// Longest original header block quoted in part 3.
constexpr std::size_t max_quoted_header_block = 64 * 1024;

enum class dsn_action { failed, delayed };

/// One recipient the report is about.
struct dsn_recipient {
  /// The original envelope recipient (Final-Recipient: rfc822; address).
  std::string address;
  /// Enhanced status (RFC 3463): "5.4.1", "4.4.1", ...
  std::string status;
  /// The server's reply or the reason.
  std::string diagnostic;
  /// True: "Diagnostic-Code: smtp; <reply>"; false: "X-Postconn; <text>".
  bool diagnostic_is_smtp = false;
};

/// Everything a DSN says, gathered by the caller.
struct dsn_report {
  dsn_action action = dsn_action::failed;
  /// Our host name (server.hostname): Reporting-MTA, From, Message-ID.
  std::string reporting_mta;
  /// The original envelope sender; the DSN goes To: this address.
  std::string original_sender;
  /// The original's queue id, for the text part and X-Postconn-Queue-Id.
  std::string original_message_id;
  /// The postoffice the recipients belong to.
  std::string postoffice;
  /// The original message as stored (header block, empty line, body).
  std::string original_content;
  /// Unix seconds: when the original was queued.
  std::int64_t arrival_date = 0;
  /// Unix seconds: the last attempt; 0 when there was none.
  std::int64_t last_attempt_date = 0;
  /// How many attempts were made.
  int attempts = 0;
  /// Unix seconds: the first attempt; 0 when there was none.
  std::int64_t first_attempt_at = 0;
  std::vector<dsn_recipient> recipients;
  /// Unix seconds: the Date header, and the basis of Message-ID and boundary.
  std::int64_t now = 0;
};

/// The whole DSN, CRLF line endings, ready to queue with MAIL FROM:<>.
std::string build_dsn(const dsn_report& report);

/// The header block of a message: every line before the first empty one,
/// CRLFs included; the whole text when there is no empty line. Cut after
/// the last whole line within max_quoted_header_block octets.
std::string header_block(std::string_view content);

/// A status of class 5 with the same subject and detail ("4.4.1" ->
/// "5.4.1", "5.1.1" stays); "5.0.0" for anything that is not a class 4 or 5
/// enhanced status code.
std::string permanent_status(std::string_view status);

} // namespace postconn
