// NAME
//   simulate -- `postconn simulate SCENARIO.toml` (see simulate.hpp).
#include "runtime/app/simulate.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "runtime/app/logging.hpp"
#include "runtime/simulate/scenario.hpp"
#include "runtime/simulate/simulation.hpp"
#include "runtime/simulate/timeline_chart.hpp"

namespace postconn {

namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system's temporary directory.
fs::path make_scratch_dir() {
  auto pattern = (fs::temp_directory_path() / "postconn-simulate-XXXXXX").string();
  if (!::mkdtemp(pattern.data()))
    throw fs::filesystem_error("cannot create a scratch directory", pattern,
                               std::error_code{errno, std::generic_category()});
  return pattern;
}

} // namespace

int simulate(const simulate_options& options) {
  auto loaded = load_scenario_file(options.scenario_file);
  for (const auto& problem : loaded.problems)
    std::fprintf(stderr, "%s: %s\n", options.scenario_file.c_str(), problem.c_str());
  if (!loaded.value)
    return 2;
  const auto& sc = *loaded.value;
  setup_logging(options.log_level);
  auto svg_file = options.svg_file.empty()
                    ? fs::path{options.scenario_file.stem().string() + ".svg"}
                    : options.svg_file;
  try {
    auto scratch = options.keep_dir.empty() ? make_scratch_dir() : options.keep_dir;
    std::cout << "scenario " << options.scenario_file.string();
    if (!sc.title.empty())
      std::cout << ": " << sc.title;
    std::cout << "\nsimulated time: " << format_offset(sc.duration.count()) << "\n\n";
    std::vector<chart_run> charts;
    for (const auto& run : sc.runs) {
      auto report = simulate_run(sc, run, scratch);
      std::cout << format_run_report(report) << "\n";
      charts.push_back(std::move(report.chart));
    }
    if (options.keep_dir.empty())
      fs::remove_all(scratch);
    std::ofstream{svg_file} << timeline_chart_svg(
      sc.title.empty() ? options.scenario_file.filename().string() : sc.title,
      sc.duration.count(), charts);
    std::cout << "chart: " << svg_file.string() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "postconn simulate: %s\n", e.what());
    return 1;
  }
  return 0;
}

} // namespace postconn
