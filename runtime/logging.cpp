// NAME
//   logging -- spdlog setup for the server (see logging.hpp).
#include "runtime/logging.hpp"

#include <array>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace postconn {

namespace {

constexpr std::array<std::string_view, 7> level_names{
  "trace", "debug", "info", "warn", "error", "critical", "off"};

} // namespace

bool is_log_level(std::string_view name) {
  for (auto known : level_names)
    if (name == known)
      return true;
  return false;
}

void setup_logging(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("postconn");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string{level}));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

} // namespace postconn
