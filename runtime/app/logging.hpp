// NAME
//   logging -- spdlog setup for the server: one line per event on stderr.
//
// DESCRIPTION
//   Log lines name the actor and the ids they are about, e.g.
//   "store: commit of 12 writes failed: disk I/O error". Formats: "text",
//   one line with the time and level (under systemd, whose journal stamps
//   lines itself, "<priority>message" instead), or "json", one object per
//   line with time, level and message, and for a line written with
//   log_event() (runtime/log) its subject and each of its fields as keys.
#pragma once

#include <memory>
#include <string_view>

namespace spdlog {
class formatter;
} // namespace spdlog

namespace postconn {

/// True for a level name spdlog knows (trace ... critical, off).
bool is_log_level(std::string_view name);

/// True for "text" and "json".
bool is_log_format(std::string_view name);

/// The formatter of --log-format json.
std::unique_ptr<spdlog::formatter> make_json_formatter();

/// Logs to stderr at `level` (a name is_log_level() accepts) in `format`.
void setup_logging(std::string_view level, std::string_view format = "text");

} // namespace postconn
