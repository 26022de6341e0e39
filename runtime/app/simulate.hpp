// NAME
//   simulate -- `postconn simulate SCENARIO.toml`: every run of a scenario
//   in simulated time, its timeline and summary on stdout, one SVG chart.
//
// DESCRIPTION
//   Refuses a scenario with problems (one line per bad key, exit 2). Each
//   run gets a scratch directory of its own (its queue database and
//   maildirs), removed at the end unless --keep names one. The chart shows
//   the runs one under the other on one time axis.
#pragma once

#include <filesystem>
#include <string>

namespace postconn {

struct simulate_options {
  std::filesystem::path scenario_file;
  /// The chart; empty: the scenario's file name with .svg, in the current
  /// directory.
  std::filesystem::path svg_file;
  /// Keep each run's queue and maildirs here; empty: a temporary directory.
  std::filesystem::path keep_dir;
  /// The actors' log on stderr (wall-clock stamps); "off" by default.
  std::string log_level = "off";
};

/// Runs the scenario; returns the process exit code.
int simulate(const simulate_options& options);

} // namespace postconn
