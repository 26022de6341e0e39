// NAME
//   logging -- spdlog setup for the server (see logging.hpp).
#include "runtime/app/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/log/log_event.hpp"

namespace postconn {

namespace {

constexpr std::array<std::string_view, 7> level_names{
  "trace", "debug", "info", "warn", "error", "critical", "off"};

std::string_view message_of(const spdlog::details::log_msg& msg) {
  return {msg.payload.data(), msg.payload.size()};
}

/// One JSON object per line: {"time": "...Z", "level": "info", "message": "..."},
/// and for a log_event() line its subject and fields as keys of their own.
class json_formatter : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto since_epoch = msg.time.time_since_epoch();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
    std::time_t t = seconds.count();
    std::tm utc{};
    gmtime_r(&t, &utc);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                  utc.tm_sec, static_cast<int>(millis.count()));
    nlohmann::json line{{"time", stamp},
                        {"level", std::string{level_names[msg.level]}},
                        {"message", std::string{message_of(msg)}}};
    if (auto event = current_log_event()) {
      auto add = [&](const log_field& field) {
        if (field.number)
          line[field.key] = *field.number;
        else
          line[field.key] = field.text;
      };
      add(*event->subject);
      for (const auto& field : *event->fields)
        add(field);
    }
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

/// For the systemd journal: "<priority>message", no time (the journal
/// stamps each line itself), so `journalctl -p warning` works.
class journal_formatter : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    static constexpr int priorities[] = {7, 7, 6, 4, 3, 2, 6};
    auto text = "<" + std::to_string(priorities[msg.level]) + ">" + std::string{message_of(msg)}
                + "\n";
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<journal_formatter>();
  }
};

/// True when stderr is the journal's stream ($JOURNAL_STREAM names its
/// device and inode, as systemd sets it for a service).
bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st;
  if (!stream || fstat(STDERR_FILENO, &st) != 0)
    return false;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) == stream;
}

} // namespace

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<json_formatter>();
}

bool is_log_level(std::string_view name) {
  for (auto known : level_names)
    if (name == known)
      return true;
  return false;
}

bool is_log_format(std::string_view name) {
  return name == "text" || name == "json";
}

void setup_logging(std::string_view level, std::string_view format) {
  auto logger = spdlog::stderr_logger_mt("postconn");
  if (format == "json")
    logger->set_formatter(make_json_formatter());
  else if (stderr_is_journal())
    logger->set_formatter(std::make_unique<journal_formatter>());
  else
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string{level}));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

} // namespace postconn
