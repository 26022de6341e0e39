// NAME
//   supervisor_handoff -- the supervisor's handoff of deliveries to the nodes
//   that own their postoffices (see supervisor.hpp).
#include "actors/supervisor_steps.hpp"

#include <set>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

/// Hands a delivery of a postoffice another node owns to that node. It is
/// finished here ("delivered", the attempt log says to whom) once the owner
/// has committed it; until then it stays queued here. A failed handoff is
/// no failed open: nothing is counted, it is only tried again later.
void hand_off(supervisor_ptr self, std::int64_t id) {
  auto& st = self->state;
  st.mark_busy(id);
  st.handoff.waiting.erase(id);
  ++st.handoff.in_flight;
  const auto& entry = st.ledger.at(id);
  self->request(st.handoff.courier, st.options.handoff_timeout, handoff_atom::value, entry)
    .then(
      [=](const std::string& owner) {
        auto& st = self->state;
        --st.handoff.in_flight;
        st.hold_requested.erase(id);
        ledger_decision decision{st.ledger.at(id), {}, {}, {}, {}};
        decision.entry.state = delivery_state::delivered;
        decision.attempt = {id, unix_now(self), "handed_off", "", "to node " + owner};
        apply(self, std::move(decision));
      },
      [=](const caf::error& err) {
        auto& st = self->state;
        --st.handoff.in_flight;
        const auto& entry = st.ledger.at(id);
        spdlog::warn("postoffice {}: msg {} delivery {} not handed over ({}); again in {}s",
                     entry.postoffice, entry.message_id, id, self->system().render(err),
                     st.options.handoff_retry.count());
        st.handoff.waiting[id] = unix_now(self) + st.options.handoff_retry.count();
        st.mark_idle(id);
        schedule_work(self);
      });
}

std::uint32_t finish_adopted_elsewhere(supervisor_ptr self, const std::vector<std::string>& keys,
                                       const std::string& by) {
  auto& st = self->state;
  std::set<std::string> adopted(keys.begin(), keys.end());
  std::vector<std::int64_t> ids;
  for (const auto& [id, entry] : st.ledger)
    if (!st.busy.count(id) && adopted.count(delivery_key(entry, st.options.node)))
      ids.push_back(id);
  for (auto id : ids) {
    st.mark_busy(id);
    ledger_decision decision{st.ledger.at(id), {}, {}, {}, {}};
    decision.entry.state = delivery_state::delivered;
    decision.attempt = {id, unix_now(self), "adopted_elsewhere", "",
                        "adopted by node " + by + " from its replica while this node was gone"};
    apply(self, std::move(decision));
  }
  return static_cast<std::uint32_t>(ids.size());
}

} // namespace postconn
