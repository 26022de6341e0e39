// NAME
//   config_check -- what `postconn check-config` says of a config file: its
//   problems and its warnings, each with the line of the file it is about.
//
// SYNOPSIS
//   auto checked = check_config_file("/etc/postconn/postconn.toml");
//   for (const auto& p : checked.problems) puts(finding_line(file, p, false).c_str());
//
// DESCRIPTION
//   A problem keeps the config from loading (parse_config()); a warning
//   does not. The warnings are about what the server will find when it
//   runs: a maildir postoffice whose path does not exist, is no folder, or
//   holds no .postoffice marker loads, and the server probes it as down
//   (until the share is mounted, say). Relative paths are looked up from the
//   current directory, as the server does from its own.
//
//   Every problem and warning starts with its key's path
//   ("postoffice[1].name: ..."); its line is where that key stands in the
//   file, or, for a key that is missing, the table that lacks it (the
//   nearest part of the path the file has). A problem about no key the file
//   has (no [[postoffice]] at all) has no line.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config/config.hpp"

namespace postconn {

/// One problem or warning: "key: what", where the file has it.
struct config_finding {
  /// From 1; 0 when no line of the file stands for it.
  std::size_t line = 0;
  /// From 1, for syntax errors only; 0 otherwise.
  std::size_t column = 0;
  std::string text;
};

struct config_check {
  /// The config, when it has no problem.
  std::optional<config> value;
  std::vector<config_finding> problems;
  std::vector<config_finding> warnings;
};

/// Checks config text; `source` names it in TOML's own messages.
config_check check_config(std::string_view text, std::string_view source);

/// Reads and checks a config file; an unreadable file is one problem.
config_check check_config_file(const std::filesystem::path& file);

/// "FILE:LINE: text", "FILE:LINE:COLUMN: text" for a syntax error, "FILE:
/// text" without a line; a warning has "warning: " before its text.
std::string finding_line(std::string_view file, const config_finding& finding,
                         bool warning);

/// The warnings of a config that loaded, one "key: what" each.
std::vector<std::string> config_warnings(const config& cfg);

} // namespace postconn
