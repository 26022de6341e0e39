// NAME
//   purger -- removes finished messages once their retention is over (see
//   purger.hpp).
#include "actors/purger.hpp"

#include <algorithm>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

namespace {

using purger_ptr = purger_actor::stateful_pointer<purger_state>;

std::int64_t unix_now(purger_ptr self) {
  return self->state.clock.at(self->clock().now());
}

void wait_for_next_pass(purger_ptr self, caf::timespan work_in_last_pass) {
  self->delayed_send(self,
                     time_to_next_pass(self->state.options.keep_finished, work_in_last_pass),
                     purge_atom::value);
}

void end_pass(purger_ptr self) {
  auto& st = self->state;
  if (st.removed_in_pass > 0)
    spdlog::info("queue: removed {} finished messages, {} s after their last attempt",
                 st.removed_in_pass, st.options.keep_finished.count());
  st.cursor.clear();
  st.removed_in_pass = 0;
  wait_for_next_pass(self, std::exchange(st.work_in_pass, caf::timespan{0}));
}

} // namespace

caf::timespan time_to_next_pass(std::chrono::seconds keep_finished,
                                caf::timespan work_in_last_pass) {
  // A pass over a large queue whose old mail is still unfinished removes
  // little and looks at all of it: a hundred times its work keeps passes at
  // ~1 % of the time.
  caf::timespan interval = std::clamp(keep_finished / 10, std::chrono::seconds{1},
                                      std::chrono::seconds{60});
  return std::max(interval, work_in_last_pass * 100);
}

caf::timespan pause_after_round(caf::timespan round) {
  // Rounds at most a fifth of the time: mail arriving during a long pass
  // (a first start on months of finished mail) shares the store with it.
  return round * 4;
}

purger_actor::behavior_type purger(purger_ptr self, store_actor store,
                                   purger_options options) {
  auto& st = self->state;
  st.store = std::move(store);
  st.options = options;
  st.clock = unix_clock{st.options.origin, self->clock().now()};
  wait_for_next_pass(self, caf::timespan{0});
  return {
    [=](reload_atom, std::int64_t keep_finished) {
      self->state.options.keep_finished = std::chrono::seconds{keep_finished};
    },
    [=](purge_atom) {
      auto& st = self->state;
      auto sent = self->clock().now();
      auto finished_before = unix_now(self) - st.options.keep_finished.count();
      self->request(st.store, caf::infinite, purge_atom::value, finished_before, st.cursor)
        .then(
          [=](const purge_report& report) {
            auto& st = self->state;
            auto round = self->clock().now() - sent;
            st.work_in_pass += round;
            st.removed_in_pass += report.removed;
            if (!report.more)
              return end_pass(self);
            st.cursor = report.last_examined;
            if (auto pause = pause_after_round(round); pause > caf::timespan{0})
              self->delayed_send(self, pause, purge_atom::value);
            else
              self->send(self, purge_atom::value);
          },
          [=](const caf::error& err) {
            spdlog::warn("queue: removing finished messages failed: {}; trying again later",
                         self->system().render(err));
            end_pass(self);
          });
    },
  };
}

} // namespace postconn
