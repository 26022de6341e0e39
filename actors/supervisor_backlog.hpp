// NAME
//   supervisor_backlog -- when new mail is refused: the queue's high-water
//   mark and the disk reserve, told to the SMTP listener.
//
// DESCRIPTION
//   Part of the supervisor's state (admission control). New mail is refused
//   while the ledger holds smtp.queue_high_water unfinished deliveries, until
//   it is back under 90 % of the mark (so the state does not flap), or while
//   the store says the queue's disk is below its reserve. The listener hears
//   only the crossings; the log says when the high-water mark is crossed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "messages/actors.hpp"

namespace postconn {

class backlog_watch {
public:
  /// Tells `listener` from now on, against `high_water` unfinished deliveries.
  void watch(backlog_listener_actor listener, std::uint64_t high_water);

  /// The store says the queue's disk is below its reserve (or back above).
  void disk_low(bool low) {
    disk_low_ = low;
  }

  /// Brings the state up to the ledger's size; what to tell the listener
  /// (true: refuse new mail), empty when it need not hear anything: no
  /// listener, or no change and not `always_tell`.
  std::optional<bool> update(std::size_t ledger_size, bool always_tell);

  const backlog_listener_actor& listener() const {
    return listener_;
  }

private:
  backlog_listener_actor listener_;
  std::uint64_t high_water_ = 0;
  /// The ledger is at the high-water mark (until back under 90 % of it).
  bool queue_full_ = false;
  bool disk_low_ = false;
  /// What the listener was last told: queue_full_ or disk_low_. Not derived
  /// from them: disk_low_ changes before the next update() compares.
  bool refusing_ = false;
};

} // namespace postconn
