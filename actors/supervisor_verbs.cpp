// NAME
//   supervisor_verbs -- the operator's verbs on the ledger: hold, release,
//   flush, delete, requeue (see supervisor.hpp).
//
// DESCRIPTION
//   Every verb acts on the deliveries a delivery_filter selects; the
//   per-message verbs are that filter with one message id. A filter that
//   selects nothing changes nothing. Deliveries with an attempt under way
//   are held once it ends; delete, requeue and flush leave them alone and
//   count them, so a bulk verb does what it can instead of failing whole.
//   Every change goes through apply() (persisted with its line in the
//   attempt log, many in one store request), except delete without an NDR:
//   one store request removes all its messages.
#include "actors/supervisor_steps.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/retry/delivery_filter.hpp"

namespace postconn {

namespace {

/// The ids of the deliveries `filter` selects, in id order.
std::vector<std::int64_t> selected(const supervisor_state& st, const delivery_filter& filter) {
  delivery_selector selects{filter};
  std::vector<std::int64_t> ids;
  for (const auto& [id, entry] : st.ledger)
    if (selects(entry, st.busy.count(id) > 0))
      ids.push_back(id);
  return ids;
}

/// The filter for the log: "postoffice=sales state=deferred", "ALL".
std::string described(const delivery_filter& filter) {
  if (selects_everything(filter))
    return "ALL";
  std::string text;
  auto add = [&](const std::string& part) { text += (text.empty() ? "" : " ") + part; };
  if (!filter.postoffice.empty())
    add("postoffice=" + filter.postoffice);
  if (!filter.state.empty())
    add("state=" + filter.state);
  if (!filter.recipient.empty())
    add("recipient=" + filter.recipient);
  if (filter.queued_before != 0)
    add("queued_before=" + std::to_string(filter.queued_before));
  if (filter.only_messages)
    add(filter.message_ids.size() == 1 ? "msg " + filter.message_ids.front()
                                       : std::to_string(filter.message_ids.size()) + " messages");
  return text;
}

void log_tally(const char* verb, const delivery_filter& filter, const verb_tally& tally) {
  spdlog::info("supervisor: {} ({}): {} deliveries{}, {} in flight", verb, described(filter),
               tally.deliveries,
               tally.messages > 0 ? " of " + std::to_string(tally.messages) + " messages" : "",
               tally.in_flight);
}

} // namespace

verb_tally hold_or_release(supervisor_ptr self, const delivery_filter& filter, bool hold) {
  auto& st = self->state;
  auto now = unix_now(self);
  verb_tally tally;
  for (auto id : selected(st, filter)) {
    const auto& entry = st.ledger.at(id);
    auto held = entry.state == delivery_state::held;
    if (st.busy.count(id)) {
      // Decided when the attempt ends (apply() looks at hold_requested).
      if (hold && !held && st.hold_requested.insert(id).second) {
        ++tally.deliveries;
        ++tally.in_flight;
      } else if (!hold && st.hold_requested.erase(id) > 0) {
        ++tally.deliveries;
      }
      continue;
    }
    if (held == hold)
      continue;
    ledger_decision decision{entry, {}, {}, {}, {}};
    decision.entry.state = hold ? delivery_state::held : delivery_state::queued;
    // A released delivery keeps its schedule and goes now, ahead of it.
    if (!hold && entry.next_attempt_at > now)
      st.ahead_of_schedule[id] = now;
    decision.attempt = {id, now, hold ? "held" : "released", "",
                        hold ? "held by the administrator" : "released by the administrator"};
    st.mark_busy(id);
    apply(self, std::move(decision));
    ++tally.deliveries;
  }
  log_tally(hold ? "hold" : "release", filter, tally);
  return tally;
}

verb_tally flush(supervisor_ptr self, const delivery_filter& filter) {
  auto& st = self->state;
  auto now = unix_now(self);
  verb_tally tally;
  for (auto id : selected(st, filter)) {
    auto& entry = st.ledger.at(id);
    if (st.busy.count(id)) {
      ++tally.in_flight;
      continue;
    }
    if (entry.state == delivery_state::held || entry.next_attempt_at <= now)
      continue;
    st.ahead_of_schedule[id] = now;
    st.reindex(id);
    ++tally.deliveries;
  }
  schedule_work(self);
  return tally;
}

void recovered(supervisor_ptr self, const std::string& postoffice) {
  auto& st = self->state;
  const auto* slot = st.postoffices.find(postoffice);
  if (!slot || slot->retry.recovery_probe_interval.count() == 0)
    return;
  auto now = unix_now(self);
  auto rate = std::max(slot->retry.recovery_rate, 1);
  std::size_t made_due = 0;
  // Every idle, unheld delivery of the postoffice, in the order it was due.
  for (auto id : st.due.attempts_due(postoffice, due_index::never, st.ledger.size())) {
    auto due_at = now + static_cast<std::int64_t>(made_due / static_cast<std::size_t>(rate));
    if (st.ledger.at(id).next_attempt_at <= due_at)
      continue;
    if (auto known = st.ahead_of_schedule.find(id);
        known != st.ahead_of_schedule.end() && known->second <= due_at)
      continue;
    st.ahead_of_schedule[id] = due_at;
    st.reindex(id);
    ++made_due;
  }
  if (made_due > 0)
    spdlog::info("postoffice {}: up again; {} deferred deliveries due now, {} a second",
                 postoffice, made_due, rate);
  schedule_work(self);
}

caf::result<verb_tally> delete_messages(supervisor_ptr self, const delivery_filter& filter,
                                        bool with_ndr) {
  auto& st = self->state;
  std::set<std::string> chosen;
  for (auto id : selected(st, filter))
    chosen.insert(st.ledger.at(id).message_id);
  // Every unfinished delivery of those messages, selected or not: a
  // message goes whole (postsuper -d).
  std::map<std::string, std::vector<std::int64_t>> deliveries;
  for (const auto& [id, entry] : st.ledger)
    if (chosen.count(entry.message_id))
      deliveries[entry.message_id].push_back(id);
  verb_tally tally;
  std::vector<std::string> doomed;
  std::vector<std::int64_t> ended;
  for (const auto& [message_id, ids] : deliveries) {
    auto in_flight = std::count_if(ids.begin(), ids.end(),
                                   [&](std::int64_t id) { return st.busy.count(id) > 0; });
    if (in_flight > 0) {
      tally.in_flight += static_cast<std::uint32_t>(in_flight);
      continue;
    }
    doomed.push_back(message_id);
    ended.insert(ended.end(), ids.begin(), ids.end());
  }
  tally.messages = static_cast<std::uint32_t>(doomed.size());
  tally.deliveries = static_cast<std::uint32_t>(ended.size());
  for (auto id : ended)
    st.mark_busy(id);
  if (with_ndr || doomed.empty()) {
    auto now = unix_now(self);
    for (auto id : ended)
      apply(self, after_deletion(st.ledger.at(id), now));
    log_tally(with_ndr ? "delete with NDRs" : "delete", filter, tally);
    return tally;
  }
  auto promise = self->make_response_promise<verb_tally>();
  self->request(st.store, store_timeout, delete_atom::value, std::move(doomed))
    .then(
      [=](std::uint32_t) mutable {
        auto& st = self->state;
        for (auto id : ended) {
          if (auto& entry = st.ledger.at(id); !entry.replica_node.empty()) {
            auto removed = entry;
            removed.state = delivery_state::bounced;
            st.replica_changes.push_back(std::move(removed));
          }
          st.ledger.erase(id);
          st.mark_idle(id);
          st.hold_requested.erase(id);
        }
        tell_replica_holders(self);
        log_tally("delete", filter, tally);
        note_backlog(self, false);
        promise.deliver(tally);
      },
      [=](const caf::error& err) mutable {
        for (auto id : ended)
          self->state.mark_idle(id);
        promise.deliver(err);
      });
  return promise;
}

verb_tally requeue(supervisor_ptr self, const delivery_filter& filter,
                   const std::string& postoffice) {
  auto& st = self->state;
  verb_tally tally;
  if (!st.postoffices.find(postoffice) && !st.handoff.elsewhere.count(postoffice)) {
    tally.refused = "postoffice " + postoffice + " is not running yet";
    return tally;
  }
  auto now = unix_now(self);
  for (auto id : selected(st, filter)) {
    if (st.busy.count(id)) {
      ++tally.in_flight;
      continue;
    }
    st.mark_busy(id);
    apply(self, after_requeue(st.ledger.at(id), postoffice, now));
    ++tally.deliveries;
  }
  log_tally(("requeue to " + postoffice).c_str(), filter, tally);
  return tally;
}

} // namespace postconn
