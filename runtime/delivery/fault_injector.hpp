// NAME
//   fault_injector -- the fault-injecting transport: which fault a postoffice suffers,
//   and for each operation whether it is hit.
//
// DESCRIPTION
//   A postoffice's `[postoffice.fault]` table, or a change at run time, sets
//   one mode over its real transport:
//
//     unreachable  every open fails
//     hang         the open's share call never answers in time: the probe
//                  timeout fires (the call itself fails after `latency`,
//                  default 1h, as a hard-mounted share finally gives up)
//     tempfail     each message's transfer fails with 451 4.3.0
//     permfail     `recipients` (all when empty) are refused with 550 5.1.1
//     slow         every share call starts `latency` late
//     flap         up for `up`, down for `down`, repeating from when the
//                  fault was set; opens fail while down
//     drop         the transfer is cut off in the middle of the data: a
//                  maildir file left half-written in tmp/, an SMTP/LMTP
//                  connection closed during DATA
//
//   Every mode but flap hits each operation with `probability`, drawn from a
//   generator seeded with `seed`: the same seed and the same operations give
//   the same faults. The generator (2.5 KiB) exists only while a probability
//   between 0 and 1 needs it: every postoffice actor holds an injector, and
//   most inject nothing. fault_injector makes the decisions; the postoffice actor
//   applies them (failing opens, transfers and recipients itself) and hands
//   the rest to its share worker as an io_fault (delay, hang, drop).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "messages/fault.hpp"

namespace postconn {

/// Decides, operation by operation, which faults a postoffice suffers.
class fault_injector {
public:
  using clock = std::chrono::steady_clock;

  fault_injector() = default;

  /// Injects `cfg` from `since` on (flap windows start there).
  fault_injector(fault_config cfg, clock::time_point since);

  const fault_config& config() const {
    return cfg_;
  }

  /// Why an open fails before it is tried (unreachable, flap's down window);
  /// empty when it goes ahead.
  std::string refused_open(clock::time_point now);

  /// The fault of the share call that opens the postoffice (a probe, or an
  /// SMTP/LMTP session, which opens and transfers in one call).
  io_fault open_call();

  /// The fault of a share call that transfers one message.
  io_fault transfer_call();

  /// tempfail: this message's transfer fails.
  bool fails_transfer();

  /// permfail: this recipient is refused.
  bool refuses(const std::string& recipient);

private:
  /// Draws against the probability.
  bool hit();

  std::int64_t latency_ms() const;

  fault_config cfg_;
  clock::time_point since_;
  /// Drawn against the probability; null when it is 0 or 1.
  std::unique_ptr<std::mt19937_64> random_;
};

} // namespace postconn
