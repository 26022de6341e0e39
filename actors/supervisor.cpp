// NAME
//   supervisor -- owns the retry ledgers (see supervisor.hpp).
#include "actors/supervisor_steps.hpp"

#include <algorithm>
#include <limits>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/log/log_event.hpp"

namespace postconn {

namespace {

/// How long until unix_now() turns to `unix_time`.
caf::timespan time_until(supervisor_ptr self, std::int64_t unix_time) {
  return self->state.clock.until(unix_time, self->clock().now());
}

void work(supervisor_ptr self);

} // namespace

std::int64_t unix_now(supervisor_ptr self) {
  return self->state.clock.at(self->clock().now());
}

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

void note_backlog(supervisor_ptr self, bool always_tell) {
  auto& st = self->state;
  if (auto refuse = st.backlog.update(st.ledger.size(), always_tell))
    self->send(st.backlog.listener(), backlog_atom::value, *refuse);
}

namespace {

/// The ledger entry leaves the supervisor when nothing is left to do, and
/// with it a hold asked for while its last attempt was under way.
void store_in_ledger(supervisor_state& st, const ledger_entry& entry) {
  if (!entry.replica_node.empty())
    st.replica_changes.push_back(entry);
  if (entry.state == delivery_state::delivered || entry.state == delivery_state::bounced) {
    st.ledger.erase(entry.delivery_id);
    st.handoff.waiting.erase(entry.delivery_id);
    st.hold_requested.erase(entry.delivery_id);
  } else
    st.ledger[entry.delivery_id] = entry;
  st.mark_idle(entry.delivery_id);
}

const char* status_word(recipient_state state) {
  switch (state) {
    case recipient_state::delivered:
      return "sent";
    case recipient_state::deferred:
      return "deferred";
    case recipient_state::bounced:
      break;
  }
  return "bounced";
}

/// "queue/open/transfer": seconds in the queue before the attempt, then in
/// opening the postoffice and in the transfer (Postfix's delays=a/b/c/d).
std::string delays_of(const ledger_entry& e, const attempt_trace& trace) {
  if (trace.started_at == 0)
    return {};
  auto seconds = [](std::int64_t micros) { return fmt::format("{:.2f}", micros / 1e6); };
  return fmt::format("{}/{}/{}", std::max<std::int64_t>(trace.started_at - e.queued_at, 0),
                     seconds(trace.open_micros), seconds(trace.transfer_micros));
}

/// One line per recipient the decision settled, as Postfix writes them:
/// "<queue id>: to=<bob@...>, postoffice=sales, relay=/srv/sales,
/// delivery=7, delay=12, delays=12/0.01/0.05, attempts=1, dsn=2.0.0,
/// status=sent (250 2.0.0 Ok)".
void log_recipients(const ledger_decision& d, const attempt_trace& trace) {
  const auto& e = d.entry;
  auto relay = trace.relay.empty() ? std::string{"none"} : trace.relay;
  auto delays = delays_of(e, trace);
  for (const auto& r : d.recipients)
    log_event(spdlog::level::info, {"queue_id", e.message_id},
              {{"to", r.address},
               {"postoffice", e.postoffice},
               {"relay", relay},
               {"delivery", e.delivery_id},
               {"delay", r.at - e.queued_at},
               {"delays", delays},
               {"attempts", e.attempts},
               {"dsn", r.code},
               {"status", status_word(r.state)},
               {"reply", r.text}});
}

void log_decision(const supervisor_state& st, const ledger_decision& d) {
  const auto& e = d.entry;
  const auto& policy = st.policy_of(e);
  auto why = d.attempt.code.empty() ? d.attempt.text
                                     : d.attempt.code + " " + d.attempt.text;
  spdlog::info("postoffice {}: {} ({}), msg {} delivery {} attempts={} open_retries={}/{} "
               "transfer_retries={}/{} state={}",
               e.postoffice, d.attempt.outcome, why, e.message_id, e.delivery_id, e.attempts,
               e.open_retries, policy.max_open_retries, e.transfer_retries,
               policy.max_transfer_retries, to_string(e.state));
}

/// Hands waiting bounces and delay warnings to NDR generators, as many as
/// may work at once.
void start_ndr_generators(supervisor_ptr self) {
  auto& st = self->state;
  while (auto decision = st.ndrs.next()) {
    auto id = decision->entry.delivery_id;
    auto generator = self->spawn<caf::monitored>(ndr_generator, std::move(*decision), st.ndr,
                                                 st.store, supervisor_actor{self});
    st.ndrs.started(generator.address(), id);
  }
}

/// An NDR generator ended: the next may start. One that failed did not
/// commit its bounce, which is decided again after a pause.
void ndr_generator_ended(supervisor_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto id = st.ndrs.ended(msg.source);
  if (!id)
    return;
  start_ndr_generators(self);
  if (msg.reason && st.busy.count(*id)) {
    if (auto entry = st.ledger.find(*id); entry != st.ledger.end())
      entry->second.next_attempt_at = unix_now(self) + st.options.store_retry.count();
    st.mark_idle(*id);
    schedule_work(self);
  }
}

} // namespace

/// Persists a decision, then acts on it: a bounce goes to an NDR generator,
/// anything else is recorded in the ledger.
void apply(supervisor_ptr self, ledger_decision decision, const attempt_trace& trace) {
  auto& st = self->state;
  auto id = decision.entry.delivery_id;
  auto& entry = decision.entry;
  if (decision.bounced.empty() && decision.delayed.empty()
      && (entry.state == delivery_state::queued || entry.state == delivery_state::deferred)
      && st.hold_requested.erase(id) > 0)
    entry.state = delivery_state::held;
  log_decision(st, decision);
  log_recipients(decision, trace);
  ++st.outcomes[{entry.postoffice, decision.attempt.outcome}];
  for (const auto& rcpt : decision.bounced)
    ++st.outcomes[{"", rcpt.status}];
  remember_bounces(st, decision);
  if (!decision.bounced.empty() || !decision.delayed.empty()) {
    st.ndrs.push(std::move(decision));
    start_ndr_generators(self);
    return;
  }
  // Written with the other decisions of this message and those before it
  // in the mailbox: one store request, not one per delivery.
  st.records_waiting.push_back({std::move(decision.entry), std::move(decision.attempt),
                                std::move(decision.recipients)});
  if (st.records_waiting.size() == 1)
    self->send(self, record_atom::value);
}

void tell_replica_holders(supervisor_ptr self) {
  auto& st = self->state;
  if (st.replica_changes.empty())
    return;
  if (st.handoff.courier)
    self->send(st.handoff.courier, replicate_atom::value, std::move(st.replica_changes));
  st.replica_changes.clear();
}

namespace {

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
        tell_replica_holders(self);
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
  auto started_at = unix_now(self);
  std::vector<delivery_job> jobs;
  // Per delivery: made due ahead of its schedule, or at it.
  std::vector<attempt_timing> timings;
  for (auto id : due) {
    const auto& entry = st.ledger.at(id);
    auto early = st.ahead_of_schedule.erase(id) > 0 && entry.next_attempt_at > started_at;
    timings.push_back(early ? attempt_timing::ahead_of_schedule : attempt_timing::scheduled);
    st.mark_busy(id);
    jobs.push_back({id, entry.message_id, entry.recipients,
                    delivery_key(entry, st.options.node)});
  }
  auto on_outcomes = [=](std::vector<delivery_outcome>& outcomes) {
    auto& st = self->state;
    if (auto* slot = st.postoffices.find(postoffice); slot && slot->actor == served_by)
      slot->busy = false;
    else // replaced or removed by a reload while it worked: retired now
      self->send_exit(served_by, caf::exit_reason::user_shutdown);
    auto now = unix_now(self);
    for (std::size_t i = 0; i < due.size(); ++i) {
      auto id = due[i];
      auto found = std::find_if(outcomes.begin(), outcomes.end(),
                                [id](const auto& o) { return o.delivery_id == id; });
      const auto& entry = st.ledger.at(id);
      const auto& policy = st.policy_of(entry);
      if (found == outcomes.end()) {
        apply(self, after_open_failure(entry, policy, now, "4.3.0",
                                       "postoffice actor gave no outcome", timings[i]),
              {"", started_at, 0, 0});
        continue;
      }
      attempt_trace trace{found->relay, started_at, found->open_micros,
                          found->transfer_micros};
      if (!found->opened)
        apply(self,
              after_open_failure(entry, policy, now, found->status, found->text, timings[i]),
              trace);
      else
        apply(self, after_transfer(entry, policy, now, *found, timings[i]), trace);
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

/// Bounces deliveries whose lifetime ended, fails deliveries of unknown
/// postoffices, hands over those of postoffices other nodes own, and starts
/// attempts at every idle postoffice with due mail. It looks only at what
/// the due index says is due.
void work(supervisor_ptr self) {
  auto& st = self->state;
  if (st.draining) {
    if (st.busy.empty() && st.draining->pending())
      st.draining->deliver(true);
    return;
  }
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
  auto fenced = st.fence && self->clock().now() >= *st.fence;
  for (const auto& postoffice : fenced ? std::vector<std::string>{}
                                       : st.due.postoffices_due(now)) {
    if (auto* slot = st.postoffices.find(postoffice)) {
      if (!slot->busy)
        attempt(self, *slot, st.due.attempts_due(postoffice, now, st.options.max_batch));
      continue;
    }
    if (st.handoff.elsewhere.count(postoffice)) {
      auto room = st.options.max_batch - std::min(st.options.max_batch, st.handoff.in_flight);
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
  // busy postoffice calls work() when its attempt ends, a renewed fence
  // when it comes.
  auto wake = st.due.earliest([&](const std::string& postoffice, std::int64_t at) {
    auto* slot = st.postoffices.find(postoffice);
    return fenced || (slot && slot->busy && at <= now);
  });
  if (wake == due_index::never)
    return;
  wake = std::max(wake, now + 1);
  if (st.wake_at == 0 || wake < st.wake_at) {
    st.wake_at = wake;
    self->delayed_send(self, time_until(self, wake), tick_atom::value);
  }
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
  if (const auto* slot = postoffices.find(entry.postoffice))
    return slot->retry;
  auto remote = handoff.elsewhere.find(entry.postoffice);
  return remote == handoff.elsewhere.end() ? options.fallback_retry : remote->second;
}

void supervisor_state::reindex(std::int64_t delivery_id) {
  auto found = ledger.find(delivery_id);
  if (found == ledger.end() || found->second.state == delivery_state::held)
    ahead_of_schedule.erase(delivery_id);
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
  if (auto early = ahead_of_schedule.find(delivery_id); early != ahead_of_schedule.end())
    attempt_at = std::min(attempt_at, early->second);
  if (!postoffices.find(entry.postoffice) && handoff.elsewhere.count(entry.postoffice)) {
    auto wait = handoff.waiting.find(delivery_id);
    attempt_at = wait == handoff.waiting.end() ? 0 : wait->second;
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

namespace {

/// Takes the ledger read at start, starts the postoffice actors, and makes
/// the first pass.
void start(supervisor_ptr self, std::vector<postoffice_slot> postoffices,
           std::vector<ledger_entry> ledger, store_actor store,
           std::shared_ptr<const ndr_settings> ndr, const supervisor_options& options) {
  auto& st = self->state;
  st.store = std::move(store);
  st.ndr = std::move(ndr);
  st.options = options;
  st.ndrs = ndr_queue{options.max_ndr_generators};
  st.clock = unix_clock{st.options.origin, self->clock().now()};
  st.postoffices.assign(std::move(postoffices));
  for (auto& slot : st.postoffices.slots())
    start_postoffice(self, slot);
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& slot : self->state.postoffices.slots())
      self->send_exit(slot.actor, msg.reason);
    self->quit(msg.reason);
  });
  self->set_down_handler([=](const caf::down_msg& msg) {
    if (!restart_postoffice(self, msg))
      ndr_generator_ended(self, msg);
  });
  add_to_ledger(st, ledger);
  work(self);
}

} // namespace

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::vector<postoffice_slot> postoffices, std::vector<ledger_entry> ledger,
           store_actor store, std::shared_ptr<const ndr_settings> ndr,
           supervisor_options options) {
  start(self, std::move(postoffices), std::move(ledger), std::move(store), std::move(ndr),
        options);
  return {
    [=](enqueue_atom, std::vector<ledger_entry>& entries) {
      add_to_ledger(self->state, entries);
      schedule_work(self);
    },
    [=](forget_atom, const std::vector<std::string>& keys, const std::string& by) {
      return finish_adopted_elsewhere(self, keys, by);
    },
    [=](reported_atom, const ledger_entry& entry) {
      store_in_ledger(self->state, entry);
      tell_replica_holders(self);
      schedule_work(self);
    },
    [=](ledger_atom) { return whole_ledger(self->state); },
    [=](page_atom, const queue_query& query) { return queue_page_of(self->state, query); },
    [=](hold_atom, const delivery_filter& filter) { return hold_or_release(self, filter, true); },
    [=](release_atom, const delivery_filter& filter) {
      auto released = hold_or_release(self, filter, false);
      schedule_work(self);
      return released;
    },
    [=](flush_atom, const delivery_filter& filter) { return flush(self, filter); },
    [=](reload_atom, postoffice_lineup& lineup) {
      reload_postoffices(self, lineup);
      schedule_work(self);
    },
    [=](outcomes_atom) { return outcome_counts(self->state); },
    [=](bounced_atom) { return recent_bounces(self->state); },
    [=](ledger_atom, const std::string& message_id) {
      return ledger_of(self->state, message_id);
    },
    [=](depth_atom) { return queue_depths(self->state); },
    [=](postoffice_atom) {
      return report_postoffices(self);
    },
    [=](delete_atom, const delivery_filter& filter,
        bool with_ndr) -> caf::result<verb_tally> {
      return delete_messages(self, filter, with_ndr);
    },
    [=](requeue_atom, const delivery_filter& filter, const std::string& postoffice) {
      return requeue(self, filter, postoffice);
    },
    [=](shape_atom, const delivery_filter& filter, std::int64_t now) {
      return queue_shapes(self->state, filter, now);
    },
    [=](fault_atom, const std::string& postoffice, const fault_config& fault) {
      return inject_fault(self, postoffice, fault);
    },
    [=](recovered_atom, const std::string& postoffice) { recovered(self, postoffice); },
    [=](expire_atom, caf::timespan valid_until) {
      self->state.fence = caf::actor_clock::time_point{valid_until};
      schedule_work(self);
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
      self->state.backlog.watch(std::move(listener), high_water);
      note_backlog(self, true);
    },
    [=](space_atom, bool low) {
      self->state.backlog.disk_low(low);
      note_backlog(self, false);
    },
    [=](drain_atom) {
      auto& st = self->state;
      st.draining = self->make_response_promise<bool>();
      auto promise = *st.draining;
      work(self);
      return promise;
    },
  };
}

} // namespace postconn
