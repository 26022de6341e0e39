// Tests runtime/mail/dsn.cpp: DSN headers, parts and fields; no injection from the original.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/mail/dsn.hpp"

using namespace postconn;

namespace {

const std::string original_headers = "Received: from client.example\r\n"
                                     "Subject: Quarterly\r\n"
                                     " numbers\r\n"
                                     "From: alice@example.com\r\n";

dsn_report sample_report() {
  dsn_report report;
  report.action = dsn_action::failed;
  report.reporting_mta = "mx.example.org";
  report.original_sender = "alice@example.com";
  report.original_message_id = "0005f3a2b1c4d5e6";
  report.postoffice = "sales";
  report.original_content = original_headers + "\r\nHello\r\n";
  report.arrival_date = 1700000000;
  report.first_attempt_at = 1700000000;
  report.last_attempt_date = 1700086400;
  report.attempts = 144;
  report.now = 1700086500;
  report.recipients = {
    {"bob@sales.example", "5.4.1", "open failed (root missing)", false},
    {"carol@sales.example", "5.2.2", "552 5.2.2 Mailbox full", true},
  };
  return report;
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find("\r\n", start);
    if (end == std::string_view::npos)
      end = text.size();
    lines.emplace_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

std::size_t count_lines_starting(std::string_view text, std::string_view prefix) {
  std::size_t count = 0;
  for (const auto& line : lines_of(text))
    if (line.compare(0, prefix.size(), prefix) == 0)
      ++count;
  return count;
}

/// The message's header block, CRLFs included, empty line not.
std::string top_headers(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 2);
}

/// Names of the top-level header fields, in order.
std::vector<std::string> field_names(const std::string& message) {
  std::vector<std::string> names;
  for (const auto& line : lines_of(top_headers(message)))
    if (line[0] != ' ' && line[0] != '\t')
      names.push_back(line.substr(0, line.find(':')));
  return names;
}

std::string boundary_of(const std::string& message) {
  auto start = message.find("boundary=\"") + 10;
  return message.substr(start, message.find('"', start) - start);
}

/// The body parts (part headers included) between the boundary lines;
/// empty when the structure is not preamble, parts, closing delimiter.
std::vector<std::string> parts_of(const std::string& message) {
  auto delimiter = "\r\n--" + boundary_of(message);
  std::vector<std::string> parts;
  auto start = message.find(delimiter);
  while (start != std::string::npos) {
    start += delimiter.size();
    if (message.compare(start, 4, "--\r\n") == 0)
      return start + 4 == message.size() ? parts : std::vector<std::string>{};
    if (message.compare(start, 2, "\r\n") != 0)
      return {};
    auto end = message.find(delimiter, start);
    parts.push_back(message.substr(start + 2, end - start - 2));
    start = end;
  }
  return {};
}

/// Every line ends in CRLF, is ASCII and at most 998 octets.
bool lines_are_valid(const std::string& message) {
  if (message.size() < 2 || message.compare(message.size() - 2, 2, "\r\n") != 0)
    return false;
  for (const auto& line : lines_of(message)) {
    if (line.size() > 998 || line.find_first_of("\r\n") != std::string::npos)
      return false;
    for (unsigned char c : line)
      if (c >= 0x80 || (c < 0x20 && c != '\t'))
        return false;
  }
  return true;
}

std::string header_value(const std::string& message, std::string_view name) {
  for (const auto& line : lines_of(top_headers(message)))
    if (line.compare(0, name.size() + 2, std::string{name} + ": ") == 0)
      return line.substr(name.size() + 2);
  return "(missing)";
}

/// Part 2 as RFC 3464 reads it: field groups separated by empty lines, each
/// field "Name: value" with continuation lines unfolded; empty when a line
/// is neither a field nor a continuation.
std::vector<std::vector<std::pair<std::string, std::string>>>
delivery_status_fields(const std::string& part) {
  std::vector<std::vector<std::pair<std::string, std::string>>> groups{{}};
  auto body = part.substr(part.find("\r\n\r\n") + 4);
  for (const auto& line : lines_of(body)) {
    if (line.empty()) {
      groups.emplace_back();
    } else if (line[0] == ' ' || line[0] == '\t') {
      if (groups.back().empty())
        return {};
      groups.back().back().second += line;
    } else {
      auto colon = line.find(": ");
      if (colon == std::string::npos || colon == 0
          || line.find_first_of(" \t") < colon)
        return {};
      groups.back().emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
  }
  return groups;
}

/// The names of the fields in one group, in order.
std::vector<std::string> names_in(
  const std::vector<std::pair<std::string, std::string>>& group) {
  std::vector<std::string> names;
  for (const auto& field : group)
    names.push_back(field.first);
  return names;
}

} // namespace

TEST_CASE("a DSN has every header, exactly") {
  auto message = build_dsn(sample_report());
  CHECK(top_headers(message)
        == "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
           "To: <alice@example.com>\r\n"
           "Subject: Undeliverable: Quarterly numbers\r\n"
           "Date: Wed, 15 Nov 2023 22:15:00 +0000\r\n"
           "Message-ID: <failed.1700086500.0005f3a2b1c4d5e6@mx.example.org>\r\n"
           "Auto-Submitted: auto-replied\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; "
           "boundary=\"=_postconn_0005f3a2b1c4d5e6_1700086500_0\"\r\n"
           "X-Postconn-Queue-Id: 0005f3a2b1c4d5e6\r\n");
  CHECK(lines_are_valid(message));
  CHECK(message == build_dsn(sample_report()));
}

TEST_CASE("a DSN has three parts: explanation, delivery status, original headers") {
  auto parts = parts_of(build_dsn(sample_report()));
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].rfind("Content-Type: text/plain; charset=us-ascii\r\n\r\n", 0) == 0);
  for (auto line : {"  bob@sales.example", "    5.4.1 open failed (root missing)",
                    "  carol@sales.example", "    5.2.2 552 5.2.2 Mailbox full",
                    "at postoffice sales:", "144 attempts were made over 1d 0h.",
                    "The last attempt was on Wed, 15 Nov 2023 22:13:20 +0000.",
                    "The mail system has given up; the message will not be delivered."})
    CHECK_MESSAGE(count_lines_starting(parts[0], line) == 1, line);
  CHECK(parts[2] == "Content-Type: text/rfc822-headers\r\n\r\n" + original_headers);
}

TEST_CASE("the delivery-status part has one block per recipient") {
  auto parts = parts_of(build_dsn(sample_report()));
  REQUIRE(parts.size() == 3);
  CHECK(parts[1]
        == "Content-Type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; mx.example.org\r\n"
           "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
           "\r\n"
           "Final-Recipient: rfc822; bob@sales.example\r\n"
           "Action: failed\r\n"
           "Status: 5.4.1\r\n"
           "Diagnostic-Code: X-Postconn; open failed (root missing)\r\n"
           "Last-Attempt-Date: Wed, 15 Nov 2023 22:13:20 +0000\r\n"
           "\r\n"
           "Final-Recipient: rfc822; carol@sales.example\r\n"
           "Action: failed\r\n"
           "Status: 5.2.2\r\n"
           "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
           "Last-Attempt-Date: Wed, 15 Nov 2023 22:13:20 +0000\r\n");
}

TEST_CASE("a delay warning says delayed, keeps class 4 and promises more tries") {
  auto report = sample_report();
  report.action = dsn_action::delayed;
  report.recipients[0].status = "4.4.1";
  auto message = build_dsn(report);
  CHECK(header_value(message, "Subject") == "Delayed: Quarterly numbers");
  CHECK(header_value(message, "Message-ID")
        == "<delayed.1700086500.0005f3a2b1c4d5e6@mx.example.org>");
  auto parts = parts_of(message);
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[1], "Action: delayed") == 2);
  CHECK(count_lines_starting(parts[1], "Action: failed") == 0);
  CHECK(count_lines_starting(parts[1], "Status: 4.4.1") == 1);
  CHECK(count_lines_starting(parts[1], "Status: 4.2.2") == 1);
  CHECK(count_lines_starting(parts[0], "Your message has not yet been delivered") == 1);
  CHECK(count_lines_starting(parts[0], "The mail system will keep trying") == 1);
}

TEST_CASE("a status that disagrees with the action, or is malformed, is corrected") {
  auto report = sample_report();
  report.recipients[0].status = "4.4.7";
  report.recipients[1].status = "Mailbox full";
  auto parts = parts_of(build_dsn(report));
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[1], "Status: 5.4.7") == 1);
  CHECK(count_lines_starting(parts[1], "Status: 5.0.0") == 1);
}

TEST_CASE("a hostile Subject cannot add a header") {
  auto report = sample_report();
  report.original_content = "Subject: hi\r\nBcc: victim@x\r\n\r\n";
  auto injected = build_dsn(report);
  report.original_content = std::string{"Subject: hi\rBcc: victim@x\nCc: other@x"} + '\0'
                            + "X: y\r\n\r\n";
  auto smuggled = build_dsn(report);
  for (const auto& message : {injected, smuggled}) {
    CHECK(field_names(message)
          == std::vector<std::string>{"From", "To", "Subject", "Date", "Message-ID",
                                      "Auto-Submitted", "MIME-Version", "Content-Type",
                                      "X-Postconn-Queue-Id"});
    CHECK(parts_of(message).size() == 3);
    CHECK(lines_are_valid(message));
  }
  CHECK(header_value(injected, "Subject") == "Undeliverable: hi");
  CHECK(header_value(smuggled, "Subject") == "Undeliverable: hi Bcc: victim@x");
}

TEST_CASE("hostile addresses and diagnostics cannot add a field, header or part") {
  auto report = sample_report();
  report.original_sender = "alice@example.com>\r\nBcc: victim@x";
  report.recipients[0].address = "bob@sales.example\r\nAction: delivered";
  report.recipients[1].diagnostic = "552 full\r\n\r\n"
                                    "--=_postconn_0005f3a2b1c4d5e6_1700086500_0\r\n"
                                    "Content-Type: text/html\r\n\r\n<b>hi</b>";
  auto message = build_dsn(report);
  CHECK(field_names(message).size() == 9);
  CHECK(count_lines_starting(message, "Bcc:") == 0);
  CHECK(count_lines_starting(message, "Action: delivered") == 0);
  CHECK(count_lines_starting(message, "Content-Type:") == 4);
  CHECK(count_lines_starting(message, "--" + boundary_of(message)) == 4);
  auto parts = parts_of(message);
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[1], "Final-Recipient: rfc822; bob@sales.example "
                                       "Action: delivered") == 1);
  CHECK(lines_are_valid(message));
}

TEST_CASE("no line break in the Subject or an address adds a header or a field") {
  const std::vector<std::string> breaks = {"\r\n", "\r", "\n", "\n\r", "\r\r\n",
                                           std::string{"\0", 1}, "\r\n\r\n"};
  for (const auto& line_break : breaks) {
    CAPTURE(line_break);
    auto report = sample_report();
    report.original_content = "Subject: hi" + line_break + "Bcc: victim@x" + line_break
                              + "Content-Type: text/html\r\n\r\nbody\r\n";
    report.original_sender = "alice@example.com" + line_break + "Cc: victim@x";
    report.recipients[0].address = "bob@sales.example" + line_break
                                   + "Action: delivered" + line_break
                                   + "Status: 2.0.0";
    report.recipients[1].diagnostic = "550 no" + line_break + "Final-Recipient: "
                                      "rfc822; extra@x";
    auto message = build_dsn(report);
    CHECK(field_names(message)
          == std::vector<std::string>{"From", "To", "Subject", "Date", "Message-ID",
                                      "Auto-Submitted", "MIME-Version", "Content-Type",
                                      "X-Postconn-Queue-Id"});
    CHECK(lines_are_valid(message));
    CHECK(count_lines_starting(top_headers(message), "Bcc:") == 0);
    CHECK(count_lines_starting(top_headers(message), "Cc:") == 0);
    auto parts = parts_of(message);
    REQUIRE(parts.size() == 3);
    auto groups = delivery_status_fields(parts[1]);
    REQUIRE(groups.size() == 3);
    for (std::size_t i = 1; i < groups.size(); ++i)
      CHECK(names_in(groups[i])
            == std::vector<std::string>{"Final-Recipient", "Action", "Status",
                                        "Diagnostic-Code", "Last-Attempt-Date"});
    CHECK(groups[1][1].second == "failed");
    CHECK(groups[1][2].second == "5.4.1");
  }
}

TEST_CASE("an encoded-word that decodes to CRLF stays inside the Subject") {
  for (std::string encoded : {"=?UTF-8?Q?hi=0D=0ABcc:_victim@x?=",
                              "=?UTF-8?B?aGkNCkJjYzogdmljdGltQHg=?=",
                              "=?ISO-8859-1?q?hi=0d=0a=0d=0a<b>body</b>?="}) {
    CAPTURE(encoded);
    auto report = sample_report();
    report.original_content = "Subject: " + encoded + "\r\n\r\n";
    auto message = build_dsn(report);
    CHECK(header_value(message, "Subject") == "Undeliverable: " + encoded);
    CHECK(field_names(message).size() == 9);
    CHECK(parts_of(message).size() == 3);
    CHECK(lines_are_valid(message));
  }
}

TEST_CASE("the NDR parses as a DSN: multipart/report with RFC 3464 fields") {
  auto report = sample_report();
  report.original_content = "Subject: =?UTF-8?Q?a=0D=0Ab?=\rX: y\n\r\n\r\n";
  report.recipients[0].address = "\"odd\r\nname\"@sales.example";
  for (auto action : {dsn_action::failed, dsn_action::delayed}) {
    report.action = action;
    auto message = build_dsn(report);
    CHECK(header_value(message, "Content-Type")
          == "multipart/report; report-type=delivery-status; boundary=\""
               + boundary_of(message) + "\"");
    auto parts = parts_of(message);
    REQUIRE(parts.size() == 3);
    CHECK(parts[1].rfind("Content-Type: message/delivery-status\r\n\r\n", 0) == 0);
    CHECK(parts[2].rfind("Content-Type: text/rfc822-headers\r\n\r\n", 0) == 0);
    auto groups = delivery_status_fields(parts[1]);
    REQUIRE(groups.size() == 1 + report.recipients.size());
    CHECK(names_in(groups[0]) == std::vector<std::string>{"Reporting-MTA", "Arrival-Date"});
    CHECK(groups[0][0].second == "dns; mx.example.org");
    for (std::size_t i = 1; i < groups.size(); ++i) {
      REQUIRE(groups[i].size() == 5);
      CHECK(groups[i][0].second.rfind("rfc822; ", 0) == 0);
      CHECK(groups[i][1].second
            == (action == dsn_action::failed ? "failed" : "delayed"));
      CHECK(groups[i][2].second[0] == (action == dsn_action::failed ? '5' : '4'));
    }
    CHECK(groups[1][0].second == "rfc822; \"odd name\"@sales.example");
  }
}

TEST_CASE("dates and spans far outside any real queue still make a valid DSN") {
  auto report = sample_report();
  report.arrival_date = std::numeric_limits<std::int64_t>::min();
  report.first_attempt_at = std::numeric_limits<std::int64_t>::min();
  report.last_attempt_date = std::numeric_limits<std::int64_t>::max();
  report.now = std::numeric_limits<std::int64_t>::max();
  auto message = build_dsn(report);
  CHECK(lines_are_valid(message));
  CHECK(header_value(message, "Date") == "Fri, 31 Dec 9999 23:59:59 +0000");
  auto parts = parts_of(message);
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[1], "Arrival-Date: Thu, 01 Jan 1970 00:00:00 +0000")
        == 1);
  CHECK(count_lines_starting(parts[0],
                             "144 attempts were made over 213503982334601d 7h.")
        == 1);
}

TEST_CASE("the boundary changes when the original contains it") {
  auto first_choice = boundary_of(build_dsn(sample_report()));
  auto report = sample_report();
  report.original_content = "Subject: x\r\n--" + first_choice
                            + "\r\nContent-Type: text/html\r\n--" + first_choice
                            + "--\r\n\r\n";
  auto message = build_dsn(report);
  auto boundary = boundary_of(message);
  CHECK(boundary != first_choice);
  CHECK(boundary.size() <= 70);
  auto parts = parts_of(message);
  REQUIRE(parts.size() == 3);
  for (const auto& part : parts)
    CHECK(part.find(boundary) == std::string::npos);
  CHECK(count_lines_starting(parts[2], "--" + first_choice) == 2);
}

TEST_CASE("the Subject is found case-insensitively, unfolded, first one only") {
  auto report = sample_report();
  report.original_content
    = "Subjects: no\r\nsubject: first\r\n\tline\r\nSubject: second\r\n";
  CHECK(header_value(build_dsn(report), "Subject") == "Undeliverable: first line");
}

TEST_CASE("a missing or empty Subject becomes (no subject)") {
  auto report = sample_report();
  report.original_content = "From: a@b\r\n\r\nSubject: in the body\r\n";
  CHECK(header_value(build_dsn(report), "Subject") == "Undeliverable: (no subject)");
  report.original_content = "Subject:   \r\n\r\n";
  CHECK(header_value(build_dsn(report), "Subject") == "Undeliverable: (no subject)");
}

TEST_CASE("an 8-bit Subject is replaced character by character, encoded-words pass") {
  auto report = sample_report();
  report.original_content = "Subject: Gr\xc3\xbc\xc3\x9f"
                            "e \xfc\xe9 \xe2\x82\xac\r\n\r\n";
  auto message = build_dsn(report);
  CHECK(header_value(message, "Subject") == "Undeliverable: Gr??e ?? ?");
  CHECK(lines_are_valid(message));
  report.original_content = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n";
  CHECK(header_value(build_dsn(report), "Subject")
        == "Undeliverable: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=");
}

TEST_CASE("long values are folded and cut so no line passes 998 octets") {
  auto report = sample_report();
  std::string words;
  for (int i = 0; i < 400; ++i)
    words += "word" + std::to_string(i) + " ";
  report.original_content = "Subject: " + words + "\r\nX-Long: " + std::string(3000, 'a')
                            + "\r\n\r\n";
  report.recipients[0].diagnostic = std::string(5000, 'd');
  auto message = build_dsn(report);
  CHECK(lines_are_valid(message));
  CHECK(count_lines_starting(message, "Subject: Undeliverable: word0 word1 ") == 1);
  CHECK(count_lines_starting(message, " word10") == 1);
  CHECK(count_lines_starting(message, "X-Long: " + std::string(990, 'a')) == 1);
  CHECK(count_lines_starting(message, "Diagnostic-Code: X-Postconn;") == 1);
  CHECK(count_lines_starting(message, " " + std::string(900, 'd')) == 1);
  CHECK(count_lines_starting(message, " " + std::string(901, 'd')) == 0);
}

TEST_CASE("an original without an empty line is quoted whole") {
  auto report = sample_report();
  report.original_content = "Subject: x\r\nFrom: a@b";
  auto parts = parts_of(build_dsn(report));
  REQUIRE(parts.size() == 3);
  CHECK(parts[2]
        == "Content-Type: text/rfc822-headers\r\n\r\nSubject: x\r\nFrom: a@b\r\n");
}

TEST_CASE("header_block stops at the first empty line and at 64 KiB") {
  CHECK(header_block("A: 1\r\nB: 2\r\n\r\nbody\r\n") == "A: 1\r\nB: 2\r\n");
  CHECK(header_block("A: 1\n\nbody\n") == "A: 1\n");
  CHECK(header_block("\r\nbody\r\n") == "");
  CHECK(header_block("") == "");
  CHECK(header_block("A: 1\r\nB: 2") == "A: 1\r\nB: 2");
  std::string line = "X: " + std::string(995, 'x') + "\r\n";
  std::string many;
  for (int i = 0; i < 100; ++i)
    many += line;
  auto block = header_block(many);
  CHECK(block.size() == 65 * line.size());
  CHECK(block.size() <= max_quoted_header_block);
}

TEST_CASE("the explanation says when no attempt was made") {
  auto report = sample_report();
  report.attempts = 0;
  report.first_attempt_at = 0;
  report.last_attempt_date = 0;
  auto parts = parts_of(build_dsn(report));
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[0], "No delivery attempt was made.") == 1);
  CHECK(count_lines_starting(parts[1], "Last-Attempt-Date:") == 0);
  report.attempts = 1;
  report.first_attempt_at = 951782400;
  report.last_attempt_date = 951782400 + 3725;
  parts = parts_of(build_dsn(report));
  REQUIRE(parts.size() == 3);
  CHECK(count_lines_starting(parts[0], "1 attempt was made over 1h 2m.") == 1);
  CHECK(count_lines_starting(parts[1],
                             "Last-Attempt-Date: Tue, 29 Feb 2000 01:02:05 +0000")
        == 2);
}

TEST_CASE("permanent_status moves class 4 to class 5 and refuses the malformed") {
  CHECK(permanent_status("4.4.1") == "5.4.1");
  CHECK(permanent_status("4.2.2") == "5.2.2");
  CHECK(permanent_status("5.1.1") == "5.1.1");
  CHECK(permanent_status("4.123.999") == "5.123.999");
  CHECK(permanent_status("451") == "5.0.0");
  CHECK(permanent_status("2.1.5") == "5.0.0");
  CHECK(permanent_status("x.4.1") == "5.0.0");
  CHECK(permanent_status("4.4") == "5.0.0");
  CHECK(permanent_status("4.4.1 ") == "5.0.0");
  CHECK(permanent_status("4.1234.1") == "5.0.0");
  CHECK(permanent_status("4..1") == "5.0.0");
  CHECK(permanent_status("") == "5.0.0");
}
