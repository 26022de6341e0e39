// Fuzzes runtime/mail/dsn.cpp with hostile originals, addresses, diagnostics
// and dates: the NDR always has exactly its own nine header fields, three
// parts the boundary does not occur in, a delivery-status part of
// well-formed fields agreeing with the action, and only ASCII lines of at
// most 998 octets ending in CRLF.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include "runtime/mail/dsn.hpp"

using namespace postconn;

namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto end = text.find("\r\n");
    FUZZ_CHECK(end != std::string_view::npos);
    lines.push_back(text.substr(0, end));
    text.remove_prefix(end + 2);
  }
  return lines;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

/// Every line ASCII without controls but tab, at most 998 octets.
void check_lines(std::string_view message) {
  for (auto line : lines_of(message)) {
    FUZZ_CHECK(line.size() <= 998);
    for (unsigned char c : line)
      FUZZ_CHECK(c == '\t' || (c >= 0x20 && c < 0x7f));
  }
}

/// The top-level field names, continuation lines skipped.
std::vector<std::string_view> field_names(std::string_view header) {
  std::vector<std::string_view> names;
  for (auto line : lines_of(header)) {
    FUZZ_CHECK(!line.empty());
    if (line[0] == ' ' || line[0] == '\t')
      continue;
    auto colon = line.find(':');
    FUZZ_CHECK(colon != std::string_view::npos);
    names.push_back(line.substr(0, colon));
  }
  return names;
}

/// Part 2's field groups: per-message fields, then one group per recipient.
void check_delivery_status(std::string_view part, const dsn_report& report) {
  auto body = part.substr(part.find("\r\n\r\n") + 4);
  std::vector<std::vector<std::string_view>> groups{{}};
  for (auto line : lines_of(body)) {
    if (line.empty()) {
      groups.emplace_back();
      continue;
    }
    if (line[0] == ' ')
      continue;
    groups.back().push_back(line);
  }
  FUZZ_CHECK(groups.size() == report.recipients.size() + 1);
  FUZZ_CHECK(groups[0].size() == 2 && starts_with(groups[0][0], "Reporting-MTA: dns; ")
        && starts_with(groups[0][1], "Arrival-Date: "));
  bool failed = report.action == dsn_action::failed;
  auto status_class = failed ? '5' : '4';
  auto action = failed ? "Action: failed" : "Action: delayed";
  for (std::size_t i = 1; i < groups.size(); ++i) {
    const auto& fields = groups[i];
    FUZZ_CHECK(fields.size() >= 3 && fields.size() <= 5);
    FUZZ_CHECK(starts_with(fields[0], "Final-Recipient: rfc822;"));
    FUZZ_CHECK(fields[1] == action);
    FUZZ_CHECK(starts_with(fields[2], "Status: ") && fields[2].size() >= 13
          && fields[2][8] == status_class);
    for (std::size_t j = 3; j < fields.size(); ++j)
      FUZZ_CHECK(starts_with(fields[j], "Diagnostic-Code: ")
            || starts_with(fields[j], "Last-Attempt-Date: "));
  }
}

void check_dsn(const std::string& message, const dsn_report& report) {
  FUZZ_CHECK(message.size() >= 2 && message.compare(message.size() - 2, 2, "\r\n") == 0);
  check_lines(message);
  auto header_end = message.find("\r\n\r\n");
  FUZZ_CHECK(header_end != std::string::npos);
  auto names = field_names(std::string_view{message}.substr(0, header_end + 2));
  FUZZ_CHECK(names
        == std::vector<std::string_view>{"From", "To", "Subject", "Date", "Message-ID",
                                         "Auto-Submitted", "MIME-Version",
                                         "Content-Type", "X-Postconn-Queue-Id"});
  const std::string content_type
    = "\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"";
  auto start = message.find(content_type);
  FUZZ_CHECK(start < header_end);
  start += content_type.size();
  auto boundary = message.substr(start, message.find('"', start) - start);
  FUZZ_CHECK(!boundary.empty() && boundary.size() <= 70);
  auto delimiter = "\r\n--" + boundary;
  std::vector<std::string_view> parts;
  auto at = message.find(delimiter, header_end);
  while (true) {
    FUZZ_CHECK(at != std::string::npos);
    at += delimiter.size();
    if (message.compare(at, 4, "--\r\n") == 0) {
      FUZZ_CHECK(at + 4 == message.size());
      break;
    }
    FUZZ_CHECK(message.compare(at, 2, "\r\n") == 0);
    auto end = message.find(delimiter, at);
    FUZZ_CHECK(end != std::string::npos);
    parts.push_back(std::string_view{message}.substr(at + 2, end - at - 2));
    at = end;
  }
  FUZZ_CHECK(parts.size() == 3);
  FUZZ_CHECK(starts_with(parts[0], "Content-Type: text/plain"));
  FUZZ_CHECK(starts_with(parts[1], "Content-Type: message/delivery-status\r\n\r\n"));
  FUZZ_CHECK(starts_with(parts[2], "Content-Type: text/rfc822-headers\r\n\r\n"));
  check_delivery_status(parts[1], report);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in{data, size};
  dsn_report report;
  report.action = in.ConsumeBool() ? dsn_action::failed : dsn_action::delayed;
  report.attempts = in.ConsumeIntegral<int>();
  report.arrival_date = in.ConsumeIntegral<std::int64_t>();
  report.first_attempt_at = in.ConsumeIntegral<std::int64_t>();
  report.last_attempt_date = in.ConsumeIntegral<std::int64_t>();
  report.now = in.ConsumeIntegral<std::int64_t>();
  report.reporting_mta = in.ConsumeRandomLengthString(100);
  report.original_sender = in.ConsumeRandomLengthString(1000);
  report.original_message_id = in.ConsumeRandomLengthString(100);
  report.postoffice = in.ConsumeRandomLengthString(100);
  auto recipients = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < recipients; ++i) {
    dsn_recipient recipient;
    recipient.address = in.ConsumeRandomLengthString(1000);
    recipient.status = in.ConsumeRandomLengthString(16);
    recipient.diagnostic = in.ConsumeRandomLengthString(2000);
    recipient.diagnostic_is_smtp = in.ConsumeBool();
    report.recipients.push_back(recipient);
  }
  report.original_content = in.ConsumeRemainingBytesAsString();
  check_dsn(build_dsn(report), report);
  return 0;
}
