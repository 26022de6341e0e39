// NAME
//   log_event -- one log line about one thing, with named fields: text a
//   Postfix admin greps, the same fields as keys for a log system.
//
// SYNOPSIS
//   log_event(spdlog::level::info, {"queue_id", "1f3a..."},
//             {{"to", "bob@sales.example"}, {"postoffice", "sales"},
//              {"delay", 0.52}, {"dsn", "2.0.0"}, {"status", "sent"},
//              {"reply", "250 2.0.0 Ok"}});
//
// DESCRIPTION
//   The text line is "SUBJECT: key=value, key=value, ...", the subject
//   (what the line is about: a queue id, a client) by its value alone, as
//   Postfix starts a line with its queue id: addresses
//   (from, to) in angle brackets, numbers with at most three decimals, and
//   the field "reply", when given, last in parentheses without its key, as
//   Postfix writes `status=sent (250 2.0.0 Ok)`. Any other value is written
//   as it is; a field with an empty value is left out.
//
//   With --log-format json the line's object carries the subject and every
//   field as keys of their own (numbers as numbers), beside "message" with
//   the text line:
//   the formatter reads them with current_log_fields() while log_event()
//   writes. That holds because the server's logger is synchronous: it
//   formats on the thread that logs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/common.h>

namespace postconn {

/// One named value of a log line: text, or a number.
struct log_field {
  log_field(std::string key, std::string text) : key(std::move(key)), text(std::move(text)) {}
  log_field(std::string key, const char* text) : key(std::move(key)), text(text) {}
  log_field(std::string key, double number);
  log_field(std::string key, std::int64_t number);
  log_field(std::string key, int number) : log_field(std::move(key), std::int64_t{number}) {}

  std::string key;
  /// The value as the text line shows it.
  std::string text;
  /// Set for a number, so JSON carries a number.
  std::optional<double> number;
};

using log_fields = std::vector<log_field>;

/// "SUBJECT: key=value, ..., key=value (reply)".
std::string format_log_line(const log_field& subject, const log_fields& fields);

/// Writes one line through spdlog's default logger.
void log_event(spdlog::level::level_enum level, const log_field& subject,
               const log_fields& fields);

/// The subject and fields of the line log_event() is writing on this
/// thread; null at any other time.
struct log_event_in_progress {
  const log_field* subject = nullptr;
  const log_fields* fields = nullptr;
};
const log_event_in_progress* current_log_event();

} // namespace postconn
