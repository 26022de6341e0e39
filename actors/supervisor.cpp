// NAME
//   supervisor -- owns the retry ledgers (see supervisor.hpp).
#include "actors/supervisor.hpp"

#include <algorithm>
#include <limits>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/retry/queue_page.hpp"

namespace postconn {

namespace {

using supervisor_ptr = supervisor_actor::stateful_pointer<supervisor_state>;


std::int64_t unix_now(supervisor_ptr self) {
  return self->state.clock.at(self->clock().now());
}

/// How long until unix_now() turns to `unix_time`.
caf::timespan time_until(supervisor_ptr self, std::int64_t unix_time) {
  return self->state.clock.until(unix_time, self->clock().now());
}

void work(supervisor_ptr self);

/// Asks for one pass of work() after the messages already in the mailbox:
/// a burst of outcomes, bounces and new mail then costs one pass over the
/// ledger instead of one pass each.
void schedule_work(supervisor_ptr self) {
  auto& st = self->state;
  if (st.work_scheduled)
    return;
  st.work_scheduled = true;
  self->send(self, work_atom::value);
}

/// Tells the backlog listener when new mail is to be refused or accepted
/// again: refused while the ledger is at its high-water mark (clear again
/// under 90 % of it, so the state does not flap) or the queue's disk is
/// below its reserve.
void note_backlog(supervisor_ptr self, bool always_tell) {
  auto& st = self->state;
  if (!st.backlog_listener)
    return;
  auto size = st.ledger.size();
  auto queue_full = st.queue_full ? size * 10 >= st.high_water * 9 : size >= st.high_water;
  auto backlogged = queue_full || st.disk_low;
  if (queue_full != st.queue_full)
    spdlog::warn("queue: {} unfinished deliveries, {} smtp.queue_high_water {}: new mail {}",
                 size, queue_full ? "at" : "back under 90 % of", st.high_water,
                 backlogged ? "gets 452 4.3.1" : "is accepted again");
  st.queue_full = queue_full;
  if (backlogged == st.backlogged && !always_tell)
    return;
  st.backlogged = backlogged;
  self->send(st.backlog_listener, backlog_atom::value, backlogged);
}

/// The ledger entry leaves the supervisor when nothing is left to do.
void store_in_ledger(supervisor_state& st, const ledger_entry& entry) {
  if (entry.state == delivery_state::delivered || entry.state == delivery_state::bounced) {
    st.ledger.erase(entry.delivery_id);
    st.handoff_wait.erase(entry.delivery_id);
  } else
    st.ledger[entry.delivery_id] = entry;
  st.mark_idle(entry.delivery_id);
}

void log_decision(const supervisor_state& st, const ledger_decision& d) {
  const auto& e = d.entry;
  const auto& policy = st.policy_of(e);
  auto why = d.attempt.code.empty() ? d.attempt.text
                                     : d.attempt.code + " " + d.attempt.text;
  spdlog::info("postoffice {}: {} ({}), msg {} delivery {} open_retries={}/{} "
               "transfer_retries={}/{} state={}",
               e.postoffice, d.attempt.outcome, why,
               e.message_id, e.delivery_id, e.open_retries, policy.max_open_retries,
               e.transfer_retries, policy.max_transfer_retries, to_string(e.state));
}

/// Hands waiting bounces and delay warnings to NDR generators, as many as
/// may work at once.
void start_ndr_generators(supervisor_ptr self) {
  auto& st = self->state;
  while (!st.ndrs_waiting.empty() && st.generators.size() < st.options.max_ndr_generators) {
    auto id = st.ndrs_waiting.front().entry.delivery_id;
    auto generator = self->spawn<caf::monitored>(ndr_generator,
                                                 std::move(st.ndrs_waiting.front()), st.ndr,
                                                 st.store, supervisor_actor{self});
    st.ndrs_waiting.pop_front();
    st.generators.emplace(generator.address(), id);
  }
}

/// Persists a decision, then acts on it: a bounce goes to an NDR generator,
/// anything else is recorded in the ledger.
void apply(supervisor_ptr self, ledger_decision decision) {
  auto& st = self->state;
  auto id = decision.entry.delivery_id;
  auto& entry = decision.entry;
  if (decision.bounced.empty() && decision.delayed.empty()
      && (entry.state == delivery_state::queued || entry.state == delivery_state::deferred)
      && st.hold_requested.erase(id) > 0)
    entry.state = delivery_state::held;
  log_decision(st, decision);
  ++st.outcomes[{entry.postoffice, decision.attempt.outcome}];
  for (const auto& rcpt : decision.bounced)
    ++st.outcomes[{"", rcpt.status}];
  if (!decision.bounced.empty() || !decision.delayed.empty()) {
    st.ndrs_waiting.push_back(std::move(decision));
    start_ndr_generators(self);
    return;
  }
  // Written with the other decisions of this message and those before it
  // in the mailbox: one store request, not one per delivery.
  st.records_waiting.push_back({std::move(decision.entry), std::move(decision.attempt)});
  if (st.records_waiting.size() == 1)
    self->send(self, record_atom::value);
}

/// A ledger change the store did not take: the delivery is tried again
/// after store_retry, its counts as they were.
void not_persisted(supervisor_ptr self, std::int64_t id, const std::string& why) {
  auto& st = self->state;
  spdlog::error("supervisor: delivery {}: ledger not persisted ({}); retry in {}s", id, why,
                st.options.store_retry.count());
  if (auto found = st.ledger.find(id); found != st.ledger.end())
    found->second.next_attempt_at = unix_now(self) + st.options.store_retry.count();
  st.mark_idle(id);
}

/// Persists the waiting ledger changes, then keeps them in the ledger.
void write_records(supervisor_ptr self) {
  auto& st = self->state;
  auto changes = std::make_shared<std::vector<ledger_change>>();
  changes->swap(st.records_waiting);
  self->request(st.store, store_timeout, record_atom::value, *changes)
    .then(
      [=](const std::vector<std::string>& failures) {
        for (std::size_t i = 0; i < changes->size(); ++i) {
          const auto& entry = (*changes)[i].entry;
          auto why = i < failures.size() ? failures[i] : std::string{"no answer for it"};
          if (why.empty())
            store_in_ledger(self->state, entry);
          else
            not_persisted(self, entry.delivery_id, why);
        }
        schedule_work(self);
      },
      [=](const caf::error& err) {
        for (const auto& change : *changes)
          not_persisted(self, change.entry.delivery_id, self->system().render(err));
        schedule_work(self);
      });
}

/// Hands due deliveries to a postoffice and applies the outcomes.
void attempt(supervisor_ptr self, postoffice_slot& slot, std::vector<std::int64_t> due) {
  auto& st = self->state;
  slot.busy = true;
  auto postoffice = slot.name;
  auto served_by = slot.actor;
  std::vector<delivery_job> jobs;
  for (auto id : due) {
    const auto& entry = st.ledger.at(id);
    st.mark_busy(id);
    jobs.push_back({id, entry.message_id, entry.recipients,
                    delivery_key(entry, st.options.node)});
  }
  auto on_outcomes = [=](std::vector<delivery_outcome>& outcomes) {
    auto& st = self->state;
    if (auto* slot = st.slot_named(postoffice); slot && slot->actor == served_by)
      slot->busy = false;
    else // replaced or removed by a reload while it worked: retired now
      self->send_exit(served_by, caf::exit_reason::user_shutdown);
    auto now = unix_now(self);
    for (auto id : due) {
      auto found = std::find_if(outcomes.begin(), outcomes.end(),
                                [id](const auto& o) { return o.delivery_id == id; });
      const auto& entry = st.ledger.at(id);
      const auto& policy = st.policy_of(entry);
      if (found == outcomes.end())
        apply(self, after_open_failure(entry, policy, now, "4.3.0",
                                       "postoffice actor gave no outcome"));
      else if (!found->opened)
        apply(self, after_open_failure(entry, policy, now, found->status, found->text));
      else
        apply(self, after_transfer(entry, policy, now, *found));
    }
    schedule_work(self);
  };
  auto on_error = [=](const caf::error& err) {
    std::vector<delivery_outcome> none;
    auto reason = "no answer from the postoffice: " + self->system().render(err);
    for (auto id : due)
      none.push_back({id, false, "4.4.1", reason, {}});
    on_outcomes(none);
  };
  self->request(served_by, st.options.attempt_timeout, deliver_atom::value, std::move(jobs))
    .then(on_outcomes, on_error);
}

/// Hands a delivery of a postoffice another node owns to that node. It is
/// finished here ("delivered", the attempt log says to whom) once the owner
/// has committed it; until then it stays queued here. A failed handoff is
/// no failed open: nothing is counted, it is only tried again later.
void hand_off(supervisor_ptr self, std::int64_t id) {
  auto& st = self->state;
  st.mark_busy(id);
  st.handoff_wait.erase(id);
  ++st.handoffs_in_flight;
  const auto& entry = st.ledger.at(id);
  self->request(st.handoff, st.options.handoff_timeout, handoff_atom::value, entry)
    .then(
      [=](const std::string& owner) {
        auto& st = self->state;
        --st.handoffs_in_flight;
        st.hold_requested.erase(id);
        ledger_decision decision{st.ledger.at(id), {}, {}, {}};
        decision.entry.state = delivery_state::delivered;
        decision.attempt = {id, unix_now(self), "handed_off", "", "to node " + owner};
        apply(self, std::move(decision));
      },
      [=](const caf::error& err) {
        auto& st = self->state;
        --st.handoffs_in_flight;
        const auto& entry = st.ledger.at(id);
        spdlog::warn("postoffice {}: msg {} delivery {} not handed over ({}); again in {}s",
                     entry.postoffice, entry.message_id, id, self->system().render(err),
                     st.options.handoff_retry.count());
        st.handoff_wait[id] = unix_now(self) + st.options.handoff_retry.count();
        st.mark_idle(id);
        schedule_work(self);
      });
}

/// Bounces deliveries whose lifetime ended, fails deliveries of unknown
/// postoffices, hands over those of postoffices other nodes own, and starts
/// attempts at every idle postoffice with due mail. It looks only at what
/// the due index says is due.
void work(supervisor_ptr self) {
  auto& st = self->state;
  if (st.options.await_lineup)
    return;
  auto now = unix_now(self);
  // Limits first: a delivery past its lifetime bounces rather than waits.
  for (auto id : st.due.limits_due(now)) {
    const auto& entry = st.ledger.at(id);
    const auto& policy = st.policy_of(entry);
    auto decision = after_lifetime_check(entry, policy, now);
    if (!decision)
      decision = after_delay_check(entry, policy, now);
    if (decision) {
      st.mark_busy(id);
      apply(self, std::move(*decision));
    }
  }
  for (const auto& postoffice : st.due.postoffices_due(now)) {
    if (auto* slot = st.slot_named(postoffice)) {
      if (!slot->busy)
        attempt(self, *slot, st.due.attempts_due(postoffice, now, st.options.max_batch));
      continue;
    }
    if (st.elsewhere.count(postoffice)) {
      auto room = st.options.max_batch - std::min(st.options.max_batch, st.handoffs_in_flight);
      for (auto id : st.due.attempts_due(postoffice, now, room))
        hand_off(self, id);
      continue;
    }
    for (auto id : st.due.attempts_due(postoffice, now, st.ledger.size())) {
      st.mark_busy(id);
      apply(self, after_open_failure(st.ledger.at(id), st.options.fallback_retry, now, "4.3.5",
                                     "postoffice " + postoffice + " is not configured"));
    }
  }
  // Wake at the earliest moment a delivery needs the supervisor again; a
  // busy postoffice calls work() when its attempt ends.
  auto wake = st.due.earliest([&](const std::string& postoffice, std::int64_t at) {
    auto* slot = st.slot_named(postoffice);
    return slot && slot->busy && at <= now;
  });
  if (wake == due_index::never)
    return;
  wake = std::max(wake, now + 1);
  if (st.wake_at == 0 || wake < st.wake_at) {
    st.wake_at = wake;
    self->delayed_send(self, time_until(self, wake), tick_atom::value);
  }
}

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
    ledger_decision decision{entry, {}, {}, {}};
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
  if (!st.slot_named(postoffice) && !st.elsewhere.count(postoffice))
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

/// Asks every postoffice actor for its last probe and adds the ledger's
/// counts; a postoffice that does not answer in time is reported down.
caf::typed_response_promise<std::vector<postoffice_report>>
report_postoffices(supervisor_ptr self) {
  auto& st = self->state;
  auto reports = std::make_shared<std::vector<postoffice_report>>(st.postoffices.size());
  for (const auto& [id, entry] : st.ledger) {
    auto slot = st.postoffice_index.find(entry.postoffice);
    if (slot == st.postoffice_index.end())
      continue;
    auto& report = (*reports)[slot->second];
    if (entry.state == delivery_state::held)
      ++report.held;
    else if (st.busy.count(id))
      ++report.in_flight;
    else
      ++report.queued;
    report.open_failures += entry.open_retries;
  }
  auto promise = self->make_response_promise<std::vector<postoffice_report>>();
  auto pending = std::make_shared<std::size_t>(st.postoffices.size());
  if (*pending == 0) {
    promise.deliver(std::vector<postoffice_report>{});
    return promise;
  }
  for (std::size_t i = 0; i < st.postoffices.size(); ++i) {
    (*reports)[i].name = st.postoffices[i].name;
    auto finish = [=](postoffice_report probe) mutable {
      auto& report = (*reports)[i];
      report.transport = std::move(probe.transport);
      report.up = probe.up;
      report.problem = std::move(probe.problem);
      report.since = probe.since;
      report.tls = std::move(probe.tls);
      if (--*pending == 0)
        promise.deliver(std::move(*reports));
    };
    self->request(st.postoffices[i].actor, std::chrono::seconds(5), status_atom::value)
      .then([=](postoffice_report& probe) mutable { finish(std::move(probe)); },
            [=](const caf::error& err) mutable {
              postoffice_report silent;
              silent.up = false;
              silent.problem = "postoffice actor did not answer: " + self->system().render(err);
              finish(std::move(silent));
            });
  }
  return promise;
}

void start_actor(supervisor_ptr self, postoffice_slot& slot) {
  slot.actor = slot.start();
  self->monitor(slot.actor);
  if (slot.injected)
    self->send(slot.actor, fault_atom::value, *slot.injected);
}

/// Takes the postoffices of a reloaded config. An actor that is replaced or
/// removed while it attempts is retired when its outcomes arrive, so the
/// attempt counts as it would have.
void reload(supervisor_ptr self, postoffice_lineup& lineup) {
  auto& st = self->state;
  std::set<std::string> listed;
  for (const auto& def : lineup.postoffices)
    listed.insert(def.name);
  for (const auto& slot : st.postoffices) {
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
    auto* running = st.slot_named(def.name);
    if (!running) {
      if (!def.start) {
        spdlog::error("postoffice {}: not running and given no way to start", def.name);
        continue;
      }
      next.push_back({def.name, def.retry, std::move(def.start), {}, false, {}});
      start_actor(self, next.back());
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
      start_actor(self, slot);
      spdlog::info("postoffice {}: restarted with its new settings", def.name);
    }
    next.push_back(std::move(slot));
  }
  st.postoffices = std::move(next);
  st.postoffice_index.clear();
  for (std::size_t i = 0; i < st.postoffices.size(); ++i)
    st.postoffice_index[st.postoffices[i].name] = i;
  st.options.fallback_retry = lineup.fallback_retry;
  if (lineup.ndr)
    st.ndr = std::move(lineup.ndr);
  st.elsewhere = std::move(lineup.elsewhere);
  // The owners changed: failed handoffs may go through now.
  st.handoff_wait.clear();
  if (lineup.handoff)
    st.handoff = std::move(lineup.handoff);
  st.options.await_lineup = false;
  // Policies and owners changed: every idle delivery's times may have too.
  st.due.clear();
  for (const auto& [id, entry] : st.ledger)
    st.reindex(id);
}

void add_to_ledger(supervisor_state& st, std::vector<ledger_entry>& entries) {
  for (auto& entry : entries) {
    // An attempt under way when the server stopped is simply due again.
    if (entry.state == delivery_state::in_flight)
      entry.state = delivery_state::queued;
    auto id = entry.delivery_id;
    st.ledger[id] = std::move(entry);
    st.reindex(id);
  }
}

} // namespace

const retry_policy& supervisor_state::policy_of(const ledger_entry& entry) const {
  if (auto slot = postoffice_index.find(entry.postoffice); slot != postoffice_index.end())
    return postoffices[slot->second].retry;
  auto remote = elsewhere.find(entry.postoffice);
  return remote == elsewhere.end() ? options.fallback_retry : remote->second;
}

postoffice_slot* supervisor_state::slot_named(const std::string& postoffice) {
  auto slot = postoffice_index.find(postoffice);
  return slot == postoffice_index.end() ? nullptr : &postoffices[slot->second];
}

void supervisor_state::reindex(std::int64_t delivery_id) {
  auto found = ledger.find(delivery_id);
  if (found == ledger.end() || busy.count(delivery_id)
      || found->second.state == delivery_state::held) {
    due.remove(delivery_id);
    return;
  }
  const auto& entry = found->second;
  // A delivery another node owns is handed over at once, however long its
  // next attempt is away (its ledger moves with it), unless a failed
  // handoff waits.
  auto attempt_at = entry.next_attempt_at;
  if (!postoffice_index.count(entry.postoffice) && elsewhere.count(entry.postoffice)) {
    auto wait = handoff_wait.find(delivery_id);
    attempt_at = wait == handoff_wait.end() ? 0 : wait->second;
  }
  due.put(delivery_id, entry.postoffice, attempt_at, limit_wake(entry, policy_of(entry)));
}

void supervisor_state::mark_busy(std::int64_t delivery_id) {
  busy.insert(delivery_id);
  due.remove(delivery_id);
}

void supervisor_state::mark_idle(std::int64_t delivery_id) {
  busy.erase(delivery_id);
  reindex(delivery_id);
}

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::vector<postoffice_slot> postoffices, std::vector<ledger_entry> ledger,
           store_actor store, std::shared_ptr<const ndr_settings> ndr,
           supervisor_options options) {
  auto& st = self->state;
  for (std::size_t i = 0; i < postoffices.size(); ++i)
    st.postoffice_index[postoffices[i].name] = i;
  st.postoffices = std::move(postoffices);
  for (auto& slot : st.postoffices)
    start_actor(self, slot);
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& slot : self->state.postoffices)
      self->send_exit(slot.actor, msg.reason);
    self->quit(msg.reason);
  });
  st.store = std::move(store);
  st.ndr = std::move(ndr);
  st.options = options;
  st.clock = unix_clock{st.options.origin, self->clock().now()};
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto& st = self->state;
    for (auto& slot : st.postoffices) {
      if (slot.actor.address() != msg.source)
        continue;
      // Its attempt in flight, if any, fails by timeout as a failed open.
      spdlog::error("postoffice {}: actor ended ({}), restarting", slot.name,
                    self->system().render(msg.reason));
      start_actor(self, slot);
      return;
    }
    auto found = st.generators.find(msg.source);
    if (found == st.generators.end())
      return;
    auto id = found->second;
    st.generators.erase(found);
    start_ndr_generators(self);
    if (msg.reason && st.busy.count(id)) {
      // The bounce was not committed: decide again after a pause.
      if (auto entry = st.ledger.find(id); entry != st.ledger.end())
        entry->second.next_attempt_at = unix_now(self) + st.options.store_retry.count();
      st.mark_idle(id);
      schedule_work(self);
    }
  });
  add_to_ledger(st, ledger);
  work(self);
  return {
    [=](enqueue_atom, std::vector<ledger_entry>& entries) {
      add_to_ledger(self->state, entries);
      schedule_work(self);
    },
    [=](reported_atom, const ledger_entry& entry, std::vector<ledger_entry>& ndrs) {
      auto& st = self->state;
      store_in_ledger(st, entry);
      add_to_ledger(st, ndrs);
      schedule_work(self);
    },
    [=](status_atom) {
      std::vector<ledger_entry> entries;
      for (const auto& [id, entry] : self->state.ledger)
        entries.push_back(entry);
      return entries;
    },
    [=](status_atom, const queue_query& query) { return select_page(self->state.ledger, query); },
    [=](hold_atom, const std::string& message_id) {
      return hold_or_release(self, message_id, true);
    },
    [=](release_atom, const std::string& message_id) {
      auto released = hold_or_release(self, message_id, false);
      schedule_work(self);
      return released;
    },
    [=](flush_atom, const std::string& postoffice, const std::string& message_id) {
      return flush(self, postoffice, message_id);
    },
    [=](reload_atom, postoffice_lineup& lineup) {
      reload(self, lineup);
      schedule_work(self);
    },
    [=](status_atom, report_atom) {
      std::vector<outcome_count> counts;
      for (const auto& [key, count] : self->state.outcomes)
        counts.push_back({key.first, key.second, count});
      return counts;
    },
    [=](status_atom, const std::string& message_id) {
      std::vector<ledger_entry> entries;
      for (const auto& [id, entry] : self->state.ledger)
        if (entry.message_id == message_id)
          entries.push_back(entry);
      return entries;
    },
    [=](status_atom, depth_atom) {
      std::map<std::pair<std::string, delivery_state>, std::uint64_t> depth;
      for (const auto& [id, entry] : self->state.ledger)
        ++depth[{entry.postoffice, entry.state}];
      std::vector<queue_depth> counts;
      for (const auto& [key, count] : depth)
        counts.push_back({key.first, key.second, count});
      return counts;
    },
    [=](status_atom, postoffice_atom) {
      return report_postoffices(self);
    },
    [=](delete_atom, const std::string& message_id,
        bool with_ndr) -> caf::result<std::int32_t> {
      return delete_message(self, message_id, with_ndr);
    },
    [=](requeue_atom, const std::string& message_id, const std::string& postoffice) {
      return requeue(self, message_id, postoffice);
    },
    [=](fault_atom, const std::string& postoffice, const fault_config& fault) {
      auto* slot = self->state.slot_named(postoffice);
      if (!slot)
        return false;
      slot->injected = fault;
      self->send(slot->actor, fault_atom::value, fault);
      return true;
    },
    [=](tick_atom) {
      self->state.wake_at = 0;
      schedule_work(self);
    },
    [=](record_atom) { write_records(self); },
    [=](work_atom) {
      self->state.work_scheduled = false;
      work(self);
      note_backlog(self, false);
    },
    [=](watch_atom, backlog_listener_actor& listener, std::uint64_t high_water) {
      auto& st = self->state;
      st.backlog_listener = std::move(listener);
      st.high_water = high_water;
      note_backlog(self, true);
    },
    [=](space_atom, bool low) {
      self->state.disk_low = low;
      note_backlog(self, false);
    },
  };
}

} // namespace postconn
