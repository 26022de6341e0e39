// Tests runtime/log/log_event.cpp and the JSON formatter of
// runtime/app/logging.cpp: the text line a Postfix admin greps, and the same
// fields as keys of the JSON line.
#include <doctest/doctest.h>

#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "runtime/app/logging.hpp"
#include "runtime/log/log_event.hpp"

using namespace postconn;

namespace {

/// Makes the default logger write to `out` with `formatter` while it lives.
class captured_log {
public:
  explicit captured_log(std::unique_ptr<spdlog::formatter> formatter)
    : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    if (formatter)
      logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~captured_log() { spdlog::set_default_logger(previous_); }

  std::ostringstream out;

private:
  std::shared_ptr<spdlog::logger> previous_;
};

const log_fields sent{{"to", "bob@sales.example.test"}, {"postoffice", "sales"},
                      {"relay", "10.0.0.5:25"}, {"delay", 0.5204}, {"dsn", "2.0.0"},
                      {"status", "sent"}, {"reply", "250 2.0.0 Ok: queued as 12"}};

} // namespace

TEST_CASE("a log line reads as Postfix writes one: key=value, the reply last in parentheses") {
  CHECK(format_log_line({"queue_id", "1f3a"}, sent)
        == "1f3a: to=<bob@sales.example.test>, postoffice=sales, "
           "relay=10.0.0.5:25, delay=0.52, dsn=2.0.0, status=sent "
           "(250 2.0.0 Ok: queued as 12)");
}

TEST_CASE("a log line leaves out empty values but shows the null sender as <>") {
  CHECK(format_log_line({"client", "10.0.0.9"}, {{"from", ""}, {"helo", ""}, {"size", 12}})
        == "10.0.0.9: from=<>, size=12");
  CHECK(format_log_line({"client", "10.0.0.9"}, {{"delay", 2.0}, {"reply", ""}})
        == "10.0.0.9: delay=2");
}

TEST_CASE("a JSON log line carries every field as a key, numbers as numbers") {
  captured_log log{make_json_formatter()};
  log_event(spdlog::level::info, {"queue_id", "1f3a"}, sent);
  auto line = nlohmann::json::parse(log.out.str());
  CHECK(line["level"] == "info");
  CHECK(line["queue_id"] == "1f3a");
  CHECK(line["to"] == "bob@sales.example.test");
  CHECK(line["status"] == "sent");
  CHECK(line["reply"] == "250 2.0.0 Ok: queued as 12");
  CHECK(line["delay"].is_number());
  CHECK(line["delay"].get<double>() == doctest::Approx(0.5204));
  CHECK(line["message"] == format_log_line({"queue_id", "1f3a"}, sent));
}

TEST_CASE("a plain log line after a log_event carries no fields of it") {
  captured_log log{make_json_formatter()};
  log_event(spdlog::level::info, {"queue_id", "1f3a"}, sent);
  spdlog::info("queue: 0 unfinished deliveries");
  std::istringstream lines{log.out.str()};
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  auto plain = nlohmann::json::parse(second);
  CHECK(plain["message"] == "queue: 0 unfinished deliveries");
  CHECK_FALSE(plain.contains("to"));
  CHECK_FALSE(plain.contains("queue_id"));
}

TEST_CASE("a log_event below the logger's level writes nothing") {
  captured_log log{nullptr};
  log_event(spdlog::level::debug, {"queue_id", "1f3a"}, sent);
  CHECK(log.out.str().empty());
}
