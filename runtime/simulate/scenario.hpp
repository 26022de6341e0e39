// NAME
//   scenario -- a mail-flow scenario for `postconn simulate`: postoffices,
//   retry settings, fault windows over time and message arrivals.
//
// DESCRIPTION
//   A scenario file is a postconn config ([server], [retry], [[postoffice]]
//   with maildir transports; paths are taken inside the simulator's scratch
//   directory) plus four sections of its own:
//
//     [scenario]   title, duration (required), sample_interval
//     [[run]]      name, description, and a `retry` table applied over every
//                  postoffice's policy: runs of one scenario side by side
//                  (e.g. enforce_retry_limits on and off). None: one run.
//     [[fault]]    postoffice, from, until, and `inject`: the fault table of
//                  [postoffice.fault] injected from `from` until `until`
//     [[mail]]     from, to (recipients), at, count (default 1), every:
//                  `count` messages, the first at `at`, then one per `every`
//
//   parse_scenario() checks it all with one problem line per bad key, as the
//   config does (`fault[1].postoffice: no postoffice "salse"`).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config/config.hpp"
#include "runtime/delivery/fault_injector.hpp"

namespace postconn {

/// A fault injected into one postoffice for a while.
struct fault_window {
  std::string postoffice;
  std::chrono::seconds from{0};
  std::chrono::seconds until{0};
  fault_config fault;
};

/// Messages arriving: `count` of them, the first at `at`, one per `every`.
struct mail_arrival {
  std::string sender;
  std::vector<std::string> recipients;
  std::chrono::seconds at{0};
  int count = 1;
  std::chrono::seconds every{0};
};

/// One run of the scenario: the config with the run's retry settings.
struct scenario_run {
  std::string name;
  std::string description;
  config cfg;
};

struct scenario {
  std::string title;
  /// Simulated time, from 0.
  std::chrono::seconds duration{0};
  /// How often the queue depth is sampled for the chart (changes are
  /// always caught; this bounds the gaps between samples).
  std::chrono::seconds sample_interval{0};
  std::vector<scenario_run> runs;
  std::vector<fault_window> faults;
  std::vector<mail_arrival> mail;
};

struct scenario_result {
  std::optional<scenario> value;
  /// One line per problem, each starting with its key.
  std::vector<std::string> problems;
};

/// Parses a scenario; `source` names it in syntax-error lines.
scenario_result parse_scenario(std::string_view text, std::string_view source);

/// Reads and parses a scenario file.
scenario_result load_scenario_file(const std::filesystem::path& file);

} // namespace postconn
