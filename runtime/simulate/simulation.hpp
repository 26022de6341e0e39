// NAME
//   simulation -- runs a scenario on the real actors in simulated time.
//
// DESCRIPTION
//   simulate_run() starts postconn's own actors -- store (SQLite in a
//   scratch directory), share pool, one postoffice actor per postoffice
//   writing real maildirs, supervisor, NDR generators -- on CAF's
//   deterministic test coordinator, whose clock only moves when told to.
//   It moves the clock from timer to timer, submits the scenario's mail and
//   injects and lifts its faults at their times, and asks the supervisor
//   (its ledger) and the postoffices (their last probe) what changed. So 30
//   days of retries take a moment, and the outcome is what the server would
//   do: nothing in the retry logic is modelled twice.
//
//   The report holds a timeline of changes (mail queued, delivered, bounced;
//   postoffices down and up; faults injected and lifted), one summary row
//   per delivery, and the data of the run's chart.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/simulate/scenario.hpp"
#include "runtime/simulate/timeline_chart.hpp"

namespace postconn {

/// One message's recipients at one postoffice, from queueing to the end.
struct simulated_delivery {
  /// "m1", "m2", ... in the order of the scenario's [[mail]] entries.
  std::string message;
  std::string postoffice;
  std::vector<std::string> recipients;
  /// Seconds since the start.
  std::int64_t queued_at = 0;
  std::optional<std::int64_t> delivered_at;
  /// When the NDR was generated.
  std::optional<std::int64_t> bounced_at;
  /// Attempts made: opens tried, failed or not.
  int attempts = 0;
};

struct timeline_event {
  /// Seconds since the start.
  std::int64_t at = 0;
  std::string text;
  /// About one message (queued, delivered, bounced), not a postoffice.
  bool about_one_message = false;
  /// A bounce: always shown.
  bool bounce = false;
};

struct run_report {
  std::string name;
  std::string description;
  std::vector<timeline_event> timeline;
  /// The scenario's mail (NDRs not included), in arrival order.
  std::vector<simulated_delivery> deliveries;
  /// NDR messages generated.
  std::size_t ndrs = 0;
  chart_run chart;
};

/// Runs one run of `sc` in a scratch directory under `scratch`.
run_report simulate_run(const scenario& sc, const scenario_run& run,
                        const std::filesystem::path& scratch);

/// "0d 00:00:00": a time since the start, for the timeline and summary.
std::string format_offset(std::int64_t seconds);

/// The run as text: heading, timeline, one summary row per delivery, and
/// per postoffice the outcomes and waits.
std::string format_run_report(const run_report& report);

} // namespace postconn
