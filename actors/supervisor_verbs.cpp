// NAME
//   supervisor_verbs -- the operator's verbs on the ledger: hold, release,
//   flush, delete, requeue (see supervisor.hpp).
#include "actors/supervisor_steps.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

/// Holds or releases the deliveries of `message_id`: each change persisted
/// with its line in the attempt log, like any other.
std::int32_t hold_or_release(supervisor_ptr self, const std::string& message_id, bool hold) {
  auto& st = self->state;
  auto now = unix_now(self);
  std::int32_t changed = 0;
  std::vector<ledger_decision> decisions;
  for (const auto& [id, entry] : st.ledger) {
    if (entry.message_id != message_id)
      continue;
    auto held = entry.state == delivery_state::held;
    if (st.busy.count(id)) {
      if (hold && !held)
        changed += st.hold_requested.insert(id).second ? 1 : 0;
      else if (!hold)
        changed += static_cast<std::int32_t>(st.hold_requested.erase(id));
      continue;
    }
    if (held == hold)
      continue;
    ledger_decision decision{entry, {}, {}, {}, {}};
    decision.entry.state = hold ? delivery_state::held : delivery_state::queued;
    if (!hold)
      decision.entry.next_attempt_at = now;
    decision.attempt = {id, now, hold ? "held" : "released", "",
                        hold ? "held by the administrator" : "released by the administrator"};
    decisions.push_back(std::move(decision));
  }
  for (auto& decision : decisions) {
    st.mark_busy(decision.entry.delivery_id);
    apply(self, std::move(decision));
    ++changed;
  }
  return changed;
}

/// Makes deferred deliveries due now (of `postoffice` and/or `message_id`,
/// empty: any). Nothing is counted or persisted: only the wait is cut.
std::int32_t flush(supervisor_ptr self, const std::string& postoffice,
                   const std::string& message_id) {
  auto& st = self->state;
  auto now = unix_now(self);
  std::int32_t flushed = 0;
  for (auto& [id, entry] : st.ledger) {
    if (st.busy.count(id) || entry.state == delivery_state::held
        || (!postoffice.empty() && entry.postoffice != postoffice)
        || (!message_id.empty() && entry.message_id != message_id)
        || entry.next_attempt_at <= now)
      continue;
    entry.next_attempt_at = now;
    st.reindex(id);
    ++flushed;
  }
  schedule_work(self);
  return flushed;
}

/// Deletes a message: its unfinished deliveries bounce with an NDR, or the
/// store removes it with no trace (and it leaves the ledger once that is
/// committed).
caf::result<std::int32_t> delete_message(supervisor_ptr self, const std::string& message_id,
                                         bool with_ndr) {
  auto& st = self->state;
  std::vector<std::int64_t> ids;
  for (const auto& [id, entry] : st.ledger) {
    if (entry.message_id != message_id)
      continue;
    if (st.busy.count(id))
      return std::int32_t{-1};
    ids.push_back(id);
  }
  auto count = static_cast<std::int32_t>(ids.size());
  if (with_ndr) {
    auto now = unix_now(self);
    for (auto id : ids) {
      st.mark_busy(id);
      apply(self, after_deletion(st.ledger.at(id), now));
    }
    return count;
  }
  for (auto id : ids)
    st.mark_busy(id);
  auto promise = self->make_response_promise<std::int32_t>();
  self->request(st.store, store_timeout, delete_atom::value, message_id)
    .then(
      [=](bool) mutable {
        auto& st = self->state;
        for (auto id : ids) {
          st.ledger.erase(id);
          st.mark_idle(id);
          st.hold_requested.erase(id);
        }
        spdlog::info("supervisor: msg {} deleted with its {} unfinished deliveries",
                     message_id, count);
        note_backlog(self, false);
        promise.deliver(count);
      },
      [=](const caf::error& err) mutable {
        for (auto id : ids)
          self->state.mark_idle(id);
        promise.deliver(err);
      });
  return promise;
}

/// Moves a message's unfinished deliveries to `postoffice` (running here or
/// owned by another node, which they are then handed to), each change
/// persisted with its line in the attempt log.
std::int32_t requeue(supervisor_ptr self, const std::string& message_id,
                     const std::string& postoffice) {
  auto& st = self->state;
  if (!st.postoffices.find(postoffice) && !st.handoff.elsewhere.count(postoffice))
    return -2;
  std::vector<std::int64_t> ids;
  for (const auto& [id, entry] : st.ledger) {
    if (entry.message_id != message_id)
      continue;
    if (st.busy.count(id))
      return -1;
    ids.push_back(id);
  }
  auto now = unix_now(self);
  for (auto id : ids) {
    st.mark_busy(id);
    apply(self, after_requeue(st.ledger.at(id), postoffice, now));
  }
  return static_cast<std::int32_t>(ids.size());
}

} // namespace postconn
