// NAME
//   purger -- removes finished messages once their retention is over.
//
// DESCRIPTION
//   A message whose every delivery is delivered or bounced stays in the
//   queue for `keep_finished` after its last attempt, for the admin API
//   (/messages/ID, its ledger and attempts), and is then removed with its
//   deliveries and attempts, so the queue file stops growing with every
//   message ever relayed (its free pages are reused by new mail). The
//   purger asks the store for bounded rounds (store_state::purge_limit
//   messages looked at each, so no commit waits long behind one); a round
//   that hit the limit is followed by the next after a pause
//   (pause_after_round), else the purger waits (time_to_next_pass) and
//   starts again from the oldest message.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include "messages/actors.hpp"
#include "messages/unix_clock.hpp"

namespace postconn {

struct purger_options {
  /// How long a finished message stays; 0 removes it at the next round.
  std::chrono::seconds keep_finished{24 * 3600};
  /// Unix time at the moment the purger starts (tests fix it).
  unix_time_origin origin;
};

/// Time from the end of a pass to the next: a tenth of the retention, at
/// least a second and at most a minute, so a message is removed at most
/// ~10 % (or a minute) past its retention; but at least a hundred times
/// the time the last pass's rounds took.
caf::timespan time_to_next_pass(std::chrono::seconds keep_finished,
                                caf::timespan work_in_last_pass);

/// Time from the answer to a round to the next round of the same pass:
/// four times the round's, so rounds take at most a fifth of the time.
caf::timespan pause_after_round(caf::timespan round);

struct purger_state {
  store_actor store;
  purger_options options;
  /// Unix time, from options.origin on the actor clock.
  unix_clock clock;
  /// Where the current pass over the queue is: the last message looked at.
  std::string cursor;
  /// Messages removed in the current pass, logged when it ends.
  std::uint64_t removed_in_pass = 0;
  /// Time the current pass's rounds took (request to answer), to pace the
  /// next pass.
  caf::timespan work_in_pass{0};

  static inline const char* name = "purger";
};

purger_actor::behavior_type purger(purger_actor::stateful_pointer<purger_state> self,
                                   store_actor store, purger_options options);

} // namespace postconn
