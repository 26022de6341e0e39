// NAME
//   supervisor_postoffices -- the supervisor's postoffice actors: started,
//   restarted, reloaded, reported (see supervisor.hpp).
#include "actors/supervisor_steps.hpp"

#include <memory>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

/// Asks every postoffice actor for its last probe and adds the ledger's
/// counts; a postoffice whose actor does not answer in time is reported
/// unknown, with why.
caf::typed_response_promise<std::vector<postoffice_report>>
report_postoffices(supervisor_ptr self) {
  auto& st = self->state;
  const auto& slots = st.postoffices.slots();
  auto reports = std::make_shared<std::vector<postoffice_report>>(slots.size());
  for (const auto& [id, entry] : st.ledger) {
    auto* slot = st.postoffices.find(entry.postoffice);
    if (!slot)
      continue;
    auto& report = (*reports)[slot - slots.data()];
    if (entry.state == delivery_state::held)
      ++report.held;
    else if (st.busy.count(id))
      ++report.in_flight;
    else
      ++report.queued;
    report.open_failures += entry.open_retries;
    if (report.oldest_queued_at == 0 || entry.queued_at < report.oldest_queued_at)
      report.oldest_queued_at = entry.queued_at;
  }
  auto promise = self->make_response_promise<std::vector<postoffice_report>>();
  auto pending = std::make_shared<std::size_t>(slots.size());
  if (*pending == 0) {
    promise.deliver(std::vector<postoffice_report>{});
    return promise;
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    (*reports)[i].name = slots[i].name;
    auto finish = [=](postoffice_report probe) mutable {
      auto& report = (*reports)[i];
      report.transport = std::move(probe.transport);
      report.state = probe.state;
      report.problem = std::move(probe.problem);
      report.since = probe.since;
      report.tls = std::move(probe.tls);
      if (--*pending == 0)
        promise.deliver(std::move(*reports));
    };
    self->request(slots[i].actor, std::chrono::seconds(5), status_atom::value)
      .then([=](postoffice_report& probe) mutable { finish(std::move(probe)); },
            [=](const caf::error& err) mutable {
              postoffice_report silent;
              silent.problem = "postoffice actor did not answer: " + self->system().render(err);
              finish(std::move(silent));
            });
  }
  return promise;
}

void start_postoffice(supervisor_ptr self, postoffice_slot& slot) {
  slot.actor = slot.start();
  self->monitor(slot.actor);
  self->send(slot.actor, watch_atom::value, recovery_listener_actor{supervisor_actor{self}});
  if (slot.injected)
    self->send(slot.actor, fault_atom::value, *slot.injected);
}

/// Takes the postoffices of a reloaded config. An actor that is replaced or
/// removed while it attempts is retired when its outcomes arrive, so the
/// attempt counts as it would have.
void reload_postoffices(supervisor_ptr self, postoffice_lineup& lineup) {
  auto& st = self->state;
  std::set<std::string> listed;
  for (const auto& def : lineup.postoffices)
    listed.insert(def.name);
  for (const auto& slot : st.postoffices.slots()) {
    if (listed.count(slot.name))
      continue;
    if (!slot.busy)
      self->send_exit(slot.actor, caf::exit_reason::user_shutdown);
    if (lineup.elsewhere.count(slot.name))
      spdlog::info("postoffice {}: owned by another node now; its deliveries are "
                   "handed over", slot.name);
    else
      spdlog::warn("postoffice {}: removed; its deliveries fail to open until it is "
                   "configured again or they are requeued", slot.name);
  }
  std::vector<postoffice_slot> next;
  for (auto& def : lineup.postoffices) {
    auto* running = st.postoffices.find(def.name);
    if (!running) {
      if (!def.start) {
        spdlog::error("postoffice {}: not running and given no way to start", def.name);
        continue;
      }
      next.push_back({def.name, def.retry, std::move(def.start), {}, false, {}});
      start_postoffice(self, next.back());
      spdlog::info("postoffice {}: added", def.name);
      continue;
    }
    auto slot = std::move(*running);
    slot.retry = def.retry;
    if (def.start) {
      if (!slot.busy)
        self->send_exit(slot.actor, caf::exit_reason::user_shutdown);
      slot.start = std::move(def.start);
      slot.busy = false;
      start_postoffice(self, slot);
      spdlog::info("postoffice {}: restarted with its new settings", def.name);
    }
    next.push_back(std::move(slot));
  }
  st.postoffices.assign(std::move(next));
  st.options.fallback_retry = lineup.fallback_retry;
  if (lineup.ndr)
    st.ndr = std::move(lineup.ndr);
  st.handoff.elsewhere = std::move(lineup.elsewhere);
  // The owners changed: failed handoffs may go through now.
  st.handoff.waiting.clear();
  if (lineup.handoff)
    st.handoff.courier = std::move(lineup.handoff);
  st.options.await_lineup = false;
  // Policies and owners changed: every idle delivery's times may have too.
  st.due.clear();
  for (const auto& [id, entry] : st.ledger)
    st.reindex(id);
}

bool restart_postoffice(supervisor_ptr self, const caf::down_msg& msg) {
  for (auto& slot : self->state.postoffices.slots()) {
    if (slot.actor.address() != msg.source)
      continue;
    // Its attempt in flight, if any, fails by timeout as a failed open.
    spdlog::error("postoffice {}: actor ended ({}), restarting", slot.name,
                  self->system().render(msg.reason));
    start_postoffice(self, slot);
    return true;
  }
  return false;
}

bool inject_fault(supervisor_ptr self, const std::string& postoffice, const fault_config& fault) {
  auto* slot = self->state.postoffices.find(postoffice);
  if (!slot)
    return false;
  slot->injected = fault;
  self->send(slot->actor, fault_atom::value, fault);
  return true;
}

postoffice_slot* postoffice_roster::find(const std::string& name) {
  auto slot = index_.find(name);
  return slot == index_.end() ? nullptr : &slots_[slot->second];
}

const postoffice_slot* postoffice_roster::find(const std::string& name) const {
  auto slot = index_.find(name);
  return slot == index_.end() ? nullptr : &slots_[slot->second];
}

void postoffice_roster::assign(std::vector<postoffice_slot> slots) {
  slots_ = std::move(slots);
  index_.clear();
  for (std::size_t i = 0; i < slots_.size(); ++i)
    index_[slots_[i].name] = i;
}

} // namespace postconn
