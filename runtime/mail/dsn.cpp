// NAME
//   dsn -- the NDR builder (see dsn.hpp).
#include "runtime/mail/dsn.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <utility>

namespace postconn {

namespace {

/// Longest value taken from outside into one header, field or text line.
constexpr std::size_t max_value_length = 900;
/// Longest line of part 3, CRLF not included (RFC 5322 2.1.1).
constexpr std::size_t max_line_length = 998;
/// Fields and text are folded at spaces to stay within this when they can.
constexpr std::size_t fold_width = 78;
/// Longest piece of the queue id used in the boundary and Message-ID.
constexpr std::size_t max_token_length = 32;

bool is_printable_ascii(unsigned char c) {
  return c >= 0x20 && c < 0x7f;
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// A value safe for one header or DSN field: printable ASCII, single
/// spaces, no leading or trailing space, at most max_value_length octets.
/// Each non-ASCII character (a UTF-8 sequence or a lone 8-bit byte)
/// becomes one '?'.
std::string header_text(std::string_view value) {
  std::string text;
  bool space_pending = false;
  bool in_sequence = false;
  for (unsigned char c : value) {
    bool continues = in_sequence && (c & 0xc0) == 0x80;
    in_sequence = c >= 0x80;
    if (continues)
      continue;
    if (c == ' ' || (c < 0x80 && !is_printable_ascii(c))) {
      space_pending = true;
      continue;
    }
    if (space_pending && !text.empty())
      text += ' ';
    space_pending = false;
    text += c < 0x80 ? static_cast<char>(c) : '?';
  }
  return text.substr(0, max_value_length);
}

/// Letters and digits of `value`, for the boundary and Message-ID.
std::string token_text(std::string_view value) {
  std::string token;
  for (char c : value)
    if (is_alnum(c) && token.size() < max_token_length)
      token += c;
  return token.empty() ? "0" : token;
}

/// Our host name with nothing but letters, digits, '.' and '-'.
std::string host_text(std::string_view value) {
  std::string host;
  for (char c : value)
    if (is_alnum(c) || c == '.' || c == '-')
      host += c;
  return host.empty() ? "localhost" : host.substr(0, max_value_length);
}

/// `start` followed by the words of `text` (single spaces, as from
/// header_text), broken before a word that would pass fold_width; each new
/// line begins with `indent`. No CRLF at the end.
std::string fold(std::string start, std::string_view text, std::string_view indent) {
  std::string folded = std::move(start);
  auto line_length = folded.size();
  bool word_on_line = false;
  while (!text.empty()) {
    auto end = std::min(text.find(' '), text.size());
    auto word = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (word_on_line && line_length + 1 + word.size() > fold_width) {
      folded.append("\r\n").append(indent);
      line_length = indent.size();
    } else if (word_on_line) {
      folded += ' ';
      ++line_length;
    }
    folded += word;
    line_length += word.size();
    word_on_line = true;
  }
  return folded;
}

/// A header field: "Name: value", folded, CRLF at the end.
std::string header_field(std::string_view name, std::string_view text) {
  return fold(std::string{name} + ": ", text, " ") + "\r\n";
}

/// The lines of `text`, without their LF or CRLF.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto end = std::min(text.find('\n'), text.size());
    auto line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

bool starts_field(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':')
    return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if ((line[i] | 0x20) != name[i])
      return false;
  return true;
}

/// The first Subject of a header block, unfolded, as header_text.
std::string original_subject(std::string_view block) {
  constexpr std::string_view name = "subject";
  std::string subject;
  bool in_subject = false;
  for (auto line : split_lines(block)) {
    bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (continuation && in_subject) {
      subject.append(line);
    } else if (!continuation) {
      if (in_subject)
        break;
      in_subject = starts_field(line, name);
      if (in_subject)
        subject = line.substr(name.size() + 1);
    }
  }
  auto text = header_text(subject);
  return text.empty() ? "(no subject)" : text;
}

/// An RFC 5322 date in UTC: "Mon, 01 Jan 2024 00:00:00 +0000". Times
/// before 1970 or after 9999 are clamped, so it is always a valid date.
std::string rfc5322_date(std::int64_t unix_seconds) {
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  constexpr std::int64_t end_of_9999 = 253402300799;
  auto clamped = std::clamp<std::int64_t>(unix_seconds, 0, end_of_9999);
  auto time = static_cast<std::time_t>(clamped);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %d %02d:%02d:%02d +0000",
                days[utc.tm_wday], utc.tm_mday, months[utc.tm_mon],
                utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return text;
}

/// The span from `from` to `to` for people: "1d 0h", "2h 5m", "3m 0s",
/// "40s"; "0s" unless `to` is later.
std::string duration_text(std::int64_t from, std::int64_t to) {
  // Unsigned: the difference of any two int64 values fits.
  std::uint64_t seconds
    = to > from ? static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from) : 0;
  auto pair = [](std::uint64_t big, const char* big_unit, std::uint64_t small,
                 const char* small_unit) {
    return std::to_string(big) + big_unit + " " + std::to_string(small) + small_unit;
  };
  if (seconds >= 86400)
    return pair(seconds / 86400, "d", seconds % 86400 / 3600, "h");
  if (seconds >= 3600)
    return pair(seconds / 3600, "h", seconds % 3600 / 60, "m");
  if (seconds >= 60)
    return pair(seconds / 60, "m", seconds % 60, "s");
  return std::to_string(seconds) + "s";
}

bool is_status_number(std::string_view digits) {
  if (digits.empty() || digits.size() > 3)
    return false;
  for (char c : digits)
    if (c < '0' || c > '9')
      return false;
  return true;
}

/// `status` with its class replaced by `status_class` ('4' or '5'), or
/// "<class>.0.0" unless `status` is a class 4 or 5 enhanced status code.
std::string status_of_class(std::string_view status, char status_class) {
  auto first_dot = status.find('.');
  auto second_dot = status.find('.', first_dot + 1);
  bool valid = status.size() >= 5 && (status[0] == '4' || status[0] == '5')
               && first_dot == 1 && second_dot != std::string_view::npos
               && is_status_number(status.substr(2, second_dot - 2))
               && is_status_number(status.substr(second_dot + 1));
  if (!valid)
    return std::string{status_class} + ".0.0";
  return status_class + std::string{status.substr(1)};
}

std::string report_status(dsn_action action, std::string_view status) {
  return status_of_class(status, action == dsn_action::failed ? '5' : '4');
}

const char* action_name(dsn_action action) {
  return action == dsn_action::failed ? "failed" : "delayed";
}

/// "144 attempts were made over 1d 0h.", the last one's date, or that
/// none was made; CRLF after each line.
std::string attempts_text(const dsn_report& report) {
  if (report.attempts <= 0)
    return "No delivery attempt was made.\r\n";
  auto text = std::to_string(report.attempts)
              + (report.attempts == 1 ? " attempt was made" : " attempts were made");
  if (report.first_attempt_at == 0 || report.last_attempt_date == 0)
    return text + ".\r\n";
  return text + " over "
         + duration_text(report.first_attempt_at, report.last_attempt_date)
         + ".\r\nThe last attempt was on " + rfc5322_date(report.last_attempt_date)
         + ".\r\n";
}

/// Part 1: the explanation for people.
std::string human_part(const dsn_report& report) {
  bool failed = report.action == dsn_action::failed;
  std::string text = "This is the mail delivery system at "
                     + host_text(report.reporting_mta) + ".\r\n\r\n";
  text += failed ? "Your message could not be delivered to these recipients\r\n"
                 : "Your message has not yet been delivered to these recipients\r\n";
  text += "at postoffice " + header_text(report.postoffice) + ":\r\n";
  for (const auto& recipient : report.recipients) {
    text += "\r\n  " + header_text(recipient.address) + "\r\n";
    auto last_error = report_status(report.action, recipient.status) + " "
                      + header_text(recipient.diagnostic);
    text += fold("    ", last_error, "    ") + "\r\n";
  }
  text += "\r\nThe message was queued on " + rfc5322_date(report.arrival_date)
          + ".\r\n" + attempts_text(report);
  text += failed ? "The mail system has given up; the message will not be delivered.\r\n"
                 : "The mail system will keep trying; you need not send it again.\r\n";
  text += "Its queue id is " + header_text(report.original_message_id)
          + "; its headers are attached.\r\n";
  return text;
}

std::string diagnostic_field(const dsn_recipient& recipient) {
  auto diagnostic = header_text(recipient.diagnostic);
  if (diagnostic.empty())
    return {};
  auto type = recipient.diagnostic_is_smtp ? "smtp; " : "X-Postconn; ";
  return header_field("Diagnostic-Code", type + diagnostic);
}

/// Part 2: the per-message fields, then one block per recipient.
std::string delivery_status_part(const dsn_report& report) {
  std::string text = "Reporting-MTA: dns; " + host_text(report.reporting_mta) + "\r\n"
                     + "Arrival-Date: " + rfc5322_date(report.arrival_date) + "\r\n";
  for (const auto& recipient : report.recipients) {
    text += "\r\n";
    text += header_field("Final-Recipient", "rfc822; " + header_text(recipient.address));
    text += std::string{"Action: "} + action_name(report.action) + "\r\n";
    text += "Status: " + report_status(report.action, recipient.status) + "\r\n";
    text += diagnostic_field(recipient);
    if (report.last_attempt_date != 0)
      text += "Last-Attempt-Date: " + rfc5322_date(report.last_attempt_date) + "\r\n";
  }
  return text;
}

/// Part 3: the original header block, printable ASCII and tabs only, each
/// line cut at max_line_length.
std::string headers_part(std::string_view content) {
  auto block = header_block(content);
  std::string text;
  for (auto line : split_lines(block)) {
    for (unsigned char c : line.substr(0, max_line_length))
      text += is_printable_ascii(c) || c == '\t' ? static_cast<char>(c) : '?';
    text += "\r\n";
  }
  return text;
}

/// A boundary found nowhere in `parts`.
std::string boundary_for(const dsn_report& report, const std::string& parts) {
  auto base = "=_postconn_" + token_text(report.original_message_id) + "_"
              + std::to_string(report.now) + "_";
  for (int n = 0;; ++n) {
    auto boundary = base + std::to_string(n);
    if (parts.find(boundary) == std::string::npos)
      return boundary;
  }
}

std::string message_headers(const dsn_report& report, const std::string& boundary) {
  auto host = host_text(report.reporting_mta);
  auto prefix = report.action == dsn_action::failed ? "Undeliverable: " : "Delayed: ";
  auto subject = prefix + original_subject(header_block(report.original_content));
  return "From: Mail Delivery System <MAILER-DAEMON@" + host + ">\r\n"
         + "To: <" + header_text(report.original_sender) + ">\r\n"
         + header_field("Subject", subject)
         + "Date: " + rfc5322_date(report.now) + "\r\n"
         + "Message-ID: <" + action_name(report.action) + "."
         + std::to_string(report.now) + "." + token_text(report.original_message_id)
         + "@" + host + ">\r\n"
         + "Auto-Submitted: auto-replied\r\n"
         + "MIME-Version: 1.0\r\n"
         + "Content-Type: multipart/report; report-type=delivery-status; boundary=\""
         + boundary + "\"\r\n"
         + header_field("X-Postconn-Queue-Id", header_text(report.original_message_id));
}

} // namespace

std::string build_dsn(const dsn_report& report) {
  std::string parts[] = {
    "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + human_part(report),
    "Content-Type: message/delivery-status\r\n\r\n" + delivery_status_part(report),
    "Content-Type: text/rfc822-headers\r\n\r\n" + headers_part(report.original_content),
  };
  auto boundary = boundary_for(report, parts[0] + parts[1] + parts[2]);
  auto message = message_headers(report, boundary)
                 + "\r\nThis is a MIME-encapsulated delivery status notification.\r\n";
  for (const auto& part : parts)
    message += "\r\n--" + boundary + "\r\n" + part;
  return message + "\r\n--" + boundary + "--\r\n";
}

std::string header_block(std::string_view content) {
  std::size_t end = 0;
  while (end < content.size()) {
    auto newline = content.find('\n', end);
    auto next = newline == std::string_view::npos ? content.size() : newline + 1;
    auto line = content.substr(end, next - end);
    if (line == "\r\n" || line == "\n" || next > max_quoted_header_block)
      break;
    end = next;
  }
  return std::string{content.substr(0, end)};
}

std::string permanent_status(std::string_view status) {
  return status_of_class(status, '5');
}

} // namespace postconn
