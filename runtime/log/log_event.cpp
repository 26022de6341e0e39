// NAME
//   log_event -- one log line with named fields (see log_event.hpp).
#include "runtime/log/log_event.hpp"

#include <cmath>
#include <cstdio>

#include <spdlog/spdlog.h>

namespace postconn {

namespace {

thread_local const log_event_in_progress* in_progress = nullptr;

/// At most three decimals, without trailing zeros: 0.5, 12, 0.125.
std::string number_text(double number) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", number);
  std::string shown = text;
  if (auto dot = shown.find('.'); dot != std::string::npos) {
    shown.erase(shown.find_last_not_of('0') + 1);
    if (shown.back() == '.')
      shown.pop_back();
  }
  return shown;
}

bool is_address(const std::string& key) {
  return key == "from" || key == "to" || key == "orig_to";
}

} // namespace

log_field::log_field(std::string key, double number)
  : key(std::move(key)), text(number_text(number)), number(number) {}

log_field::log_field(std::string key, std::int64_t number)
  : key(std::move(key)), text(std::to_string(number)), number(static_cast<double>(number)) {}

std::string format_log_line(const log_field& subject, const log_fields& fields) {
  std::string line = subject.text;
  line += ":";
  const std::string* reply = nullptr;
  bool first = true;
  for (const auto& field : fields) {
    if (field.key == "reply") {
      reply = &field.text;
      continue;
    }
    if (field.text.empty() && !is_address(field.key))
      continue;
    line += first ? " " : ", ";
    first = false;
    line += field.key + "=";
    line += is_address(field.key) ? "<" + field.text + ">" : field.text;
  }
  if (reply && !reply->empty())
    line += " (" + *reply + ")";
  return line;
}

void log_event(spdlog::level::level_enum level, const log_field& subject,
               const log_fields& fields) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level))
    return;
  log_event_in_progress event{&subject, &fields};
  struct shown_while_logging {
    explicit shown_while_logging(const log_event_in_progress* event) { in_progress = event; }
    ~shown_while_logging() { in_progress = nullptr; }
  } shown{&event};
  logger->log(level, format_log_line(subject, fields));
}

const log_event_in_progress* current_log_event() {
  return in_progress;
}

} // namespace postconn
