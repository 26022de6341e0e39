// NAME
//   supervisor_backlog -- admission control (see supervisor_backlog.hpp).
#include "actors/supervisor_backlog.hpp"

#include <spdlog/spdlog.h>

namespace postconn {

void backlog_watch::watch(backlog_listener_actor listener, std::uint64_t high_water) {
  listener_ = std::move(listener);
  high_water_ = high_water;
}

std::optional<bool> backlog_watch::update(std::size_t ledger_size, bool always_tell) {
  if (!listener_)
    return std::nullopt;
  auto queue_full = queue_full_ ? ledger_size * 10 >= high_water_ * 9 : ledger_size >= high_water_;
  auto refusing = queue_full || disk_low_;
  if (queue_full != queue_full_)
    spdlog::warn("queue: {} unfinished deliveries, {} smtp.queue_high_water {}: new mail {}",
                 ledger_size, queue_full ? "at" : "back under 90 % of", high_water_,
                 refusing ? "gets 452 4.3.1" : "is accepted again");
  queue_full_ = queue_full;
  if (refusing == refusing_ && !always_tell)
    return std::nullopt;
  refusing_ = refusing;
  return refusing;
}

} // namespace postconn
