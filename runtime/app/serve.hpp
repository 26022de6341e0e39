// NAME
//   serve -- `postconn serve`: checks, start-up, and clean shutdown.
//
// DESCRIPTION
//   Refuses to start, with one clear line, when the config is invalid, the
//   data directory is not writable, another server uses it, the queue
//   database cannot be opened, or a listen port is taken. Then starts the
//   actor system and the store, reports the queue it found, and runs until
//   SIGTERM or SIGINT, which shut it down cleanly (exit 0).
#pragma once

#include <filesystem>
#include <string>

namespace postconn {

struct serve_options {
  std::filesystem::path config_file;
  /// Overrides server.log_level when not empty.
  std::string log_level;
  /// "text" or "json".
  std::string log_format = "text";
};

/// Runs the server; returns the process exit code.
int serve(const serve_options& options);

} // namespace postconn
