// NAME
//   timeline_chart -- the SVG chart of a simulated scenario.
//
// DESCRIPTION
//   `postconn simulate` records, for each run of a scenario, the queue depth
//   over time, the windows in which each postoffice was down, and the NDRs.
//   timeline_chart_svg() draws the runs one under the other on one time axis,
//   so two runs of the same scenario (say enforce_retry_limits on and off)
//   compare at a glance: per run a queue-depth line, one band per postoffice
//   shaded where it was down, and a mark at each NDR. A pure function: the
//   caller writes the text to a file; any browser shows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace postconn {

/// Unfinished deliveries at a moment (seconds since the start).
struct queue_depth_sample {
  std::int64_t at = 0;
  std::size_t deliveries = 0;
};

/// A postoffice could not be opened from `from` until `until` (seconds).
struct down_window {
  std::string postoffice;
  std::int64_t from = 0;
  std::int64_t until = 0;
};

/// An NDR generated at `at` (seconds), with a short label ("m1 bob@...").
struct ndr_mark {
  std::int64_t at = 0;
  std::string label;
};

struct chart_run {
  /// The run's name and what sets it apart ("enforce", "enforce_retry_limits = true").
  std::string name;
  std::string description;
  /// Every postoffice of the scenario, in config order (one band each).
  std::vector<std::string> postoffices;
  /// In time order; the depth holds until the next sample.
  std::vector<queue_depth_sample> queue_depth;
  std::vector<down_window> down;
  std::vector<ndr_mark> ndrs;
};

/// A standalone SVG document: `title` on top, then one panel per run, all
/// sharing a time axis from 0 to `duration` seconds. Times outside that
/// range are drawn at its nearer end; a duration under 1 s is drawn as 1 s.
std::string timeline_chart_svg(const std::string& title, std::int64_t duration,
                               const std::vector<chart_run>& runs);

} // namespace postconn
