// NAME
//   unix_clock -- Unix time as the actors read it.
//
// DESCRIPTION
//   The ledger speaks Unix seconds. An actor reads the wall clock once, when
//   it starts (its origin), and from then on counts on its actor clock: in a
//   server that runs with the wall clock, under CAF's test coordinator it is
//   simulated, so a test fixes the origin and moves time at will (144 open
//   retries of 600 s take milliseconds). Nothing else reads the wall clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace postconn {

/// Where Unix time stood at a moment: the second, and how far past it.
struct unix_time_origin {
  std::int64_t seconds = 0;
  std::chrono::nanoseconds fraction{0};

  /// The wall clock, now.
  static unix_time_origin now();
};

/// Unix time counted from an origin on a steady (or simulated) clock.
class unix_clock {
public:
  using time_point = std::chrono::steady_clock::time_point;

  unix_clock() = default;

  /// Unix time was `origin` when the steady clock read `started`.
  unix_clock(unix_time_origin origin, time_point started)
    : origin_(origin), started_(started) {}

  /// The Unix second at steady time `now`. Without the origin's fraction
  /// these seconds would turn up to a second after the wall clock's, and
  /// mail queued at second T would wait for them.
  std::int64_t at(time_point now) const {
    auto elapsed = now - started_ + origin_.fraction;
    return origin_.seconds
           + std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  }

  /// How long from steady time `now` until at() turns to `unix_time`.
  std::chrono::nanoseconds until(std::int64_t unix_time, time_point now) const {
    auto when = started_ + std::chrono::seconds(unix_time - origin_.seconds) - origin_.fraction;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(when - now);
  }

private:
  unix_time_origin origin_;
  time_point started_;
};

} // namespace postconn
