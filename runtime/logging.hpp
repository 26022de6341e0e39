// NAME
//   logging -- spdlog setup for the server: one line per event on stderr.
//
// DESCRIPTION
//   Log lines name the actor and the ids they are about, e.g.
//   "store: commit of 12 writes failed: disk I/O error".
#pragma once

#include <string_view>

namespace postconn {

/// True for a level name spdlog knows (trace ... critical, off).
bool is_log_level(std::string_view name);

/// Logs to stderr at `level` (a name is_log_level() accepts).
void setup_logging(std::string_view level);

} // namespace postconn
