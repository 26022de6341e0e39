// NAME
//   supervisor_ndr_queue -- NDR generators, bounded (see
//   supervisor_ndr_queue.hpp).
#include "actors/supervisor_ndr_queue.hpp"

namespace postconn {

std::optional<ledger_decision> ndr_queue::next() {
  if (waiting_.empty() || at_work_.size() >= max_generators_)
    return std::nullopt;
  auto decision = std::move(waiting_.front());
  waiting_.pop_front();
  return decision;
}

std::optional<std::int64_t> ndr_queue::ended(const caf::actor_addr& actor) {
  auto found = at_work_.find(actor);
  if (found == at_work_.end())
    return std::nullopt;
  auto id = found->second;
  at_work_.erase(found);
  return id;
}

} // namespace postconn
