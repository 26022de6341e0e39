// NAME
//   postoffice -- one actor per postoffice (see postoffice.hpp).
#include "actors/postoffice.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <random>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/unix_clock.hpp"

namespace postconn {

namespace {

using outcomes = std::vector<delivery_outcome>;

/// Idle probes fire on ticks of the clock: with 100,000 postoffices the
/// timer thread then wakes ten times a second for a burst of probes, not
/// once per probe, and the spread over open_interval stays.
constexpr caf::timespan probe_tick = std::chrono::milliseconds(100);

/// Sends the next idle probe `delay` from now (on a tick); it replaces the
/// one pending (see next_probe_at).
void schedule_idle_probe(postoffice_ptr self, caf::timespan delay) {
  auto now = self->clock().now();
  auto at = (now + delay).time_since_epoch();
  auto on_tick = (at + probe_tick - caf::timespan{1}) / probe_tick * probe_tick;
  self->state.next_probe_at = caf::actor_clock::time_point{on_tick};
  self->delayed_send(self, self->state.next_probe_at - now, probe_atom::value);
}

/// The wait between idle probes: recovery_probe_interval while down (when
/// set and shorter), else open_interval.
caf::timespan probe_interval(const postoffice_state& st) {
  auto interval = st.cfg->retry.open_interval;
  auto recovery = st.cfg->retry.recovery_probe_interval;
  if (st.state == reachability::down && recovery.count() > 0)
    interval = std::min(interval, recovery);
  return std::chrono::duration_cast<caf::timespan>(interval);
}

/// Records how an open or probe went, logging changes of the up/down state
/// and of the sessions' TLS. Going down brings the next probe forward to
/// the recovery interval; coming back tells the recovery listener and puts
/// the next probe open_interval away.
void note_opening(postoffice_ptr self, const transport_opening& opening) {
  auto& st = self->state;
  auto was_down = st.state == reachability::down;
  auto problem = opening.opened ? std::string{} : opening.problem;
  auto found = opening.opened ? reachability::up : reachability::down;
  if (found == reachability::down && (found != st.state || problem != st.problem))
    spdlog::warn("postoffice {}: unreachable ({})", st.cfg->name, problem);
  else if (found == reachability::up && st.state == reachability::down)
    spdlog::info("postoffice {}: reachable again", st.cfg->name);
  if (found != st.state)
    st.since = unix_time_origin::now().seconds;
  st.state = found;
  st.problem = problem;
  if (found == reachability::up && was_down) {
    if (st.recovery_listener)
      self->send(st.recovery_listener, recovered_atom::value, st.cfg->name);
    schedule_idle_probe(self, probe_interval(st)); // open_interval again
  } else if (found == reachability::down && !was_down
             && self->clock().now() + probe_interval(st) < st.next_probe_at) {
    schedule_idle_probe(self, probe_interval(st));
  }
  if (opening.tls && *opening.tls != st.tls) {
    st.tls = *opening.tls;
    spdlog::info("postoffice {}: sessions run {}", st.cfg->name,
                 st.tls.empty() ? std::string{"in plaintext"} : "over " + st.tls);
  }
}

/// The open the injected fault refuses before it is tried, if it does.
std::optional<transport_opening> refused_open(postoffice_ptr self) {
  auto refused = self->state.faults.refused_open(self->clock().now());
  if (refused.empty())
    return std::nullopt;
  return transport_opening{false, "4.4.1", refused, std::nullopt};
}

void probe(postoffice_ptr self) {
  if (auto refused = refused_open(self))
    return note_opening(self, *refused);
  if (self->state.probing)
    return;
  self->state.probing = true;
  self->state.link->probe(self, [=](transport_opening opening) {
    self->state.probing = false;
    note_opening(self, opening);
  });
}

/// Where deliveries go, for the log: the share's path, or host:port.
std::string relay_of(const postoffice_config& cfg) {
  return cfg.transport == transport_kind::maildir ? cfg.path.string() : cfg.address;
}

/// A recipient failed by the injected fault, as a server would have.
recipient_outcome injected_failure(const std::string& recipient, bool permanent) {
  if (permanent)
    return {recipient, recipient_result::permanent_failure, "5.1.1",
            injected_permfail_reply, true};
  return {recipient, recipient_result::temporary_failure, "4.3.0", injected_tempfail_reply,
          true};
}

/// An attempt under way.
struct attempt_state {
  std::vector<delivery_job> jobs;
  /// Outcomes decided here: messages not read, recipients the fault failed.
  std::map<std::int64_t, delivery_outcome> decided;
  caf::typed_response_promise<outcomes> promise;
  std::string relay;
  /// When the open started, and when it answered.
  caf::actor_clock::time_point started;
  caf::actor_clock::time_point opened;
};

std::int64_t micros_between(caf::actor_clock::time_point from, caf::actor_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

/// Answers with the outcomes, each with where it went and how long it took.
void answer(std::shared_ptr<attempt_state> attempt, outcomes all,
            caf::actor_clock::time_point now) {
  for (auto& outcome : all) {
    outcome.relay = attempt->relay;
    outcome.open_micros = micros_between(attempt->started, attempt->opened);
    outcome.transfer_micros = outcome.opened ? micros_between(attempt->opened, now) : 0;
  }
  attempt->promise.deliver(std::move(all));
}

/// Every job failed to open.
void fail_open(postoffice_ptr self, std::shared_ptr<attempt_state> attempt,
               const transport_opening& opening) {
  outcomes failed;
  for (const auto& job : attempt->jobs)
    failed.push_back({job.delivery_id, false, opening.status, opening.problem, {}});
  answer(attempt, std::move(failed), self->clock().now());
}

/// Adds the outcomes decided here to the transport's, and answers.
void finish(postoffice_ptr self, std::shared_ptr<attempt_state> attempt, outcomes delivered) {
  for (auto& outcome : delivered)
    if (auto own = attempt->decided.find(outcome.delivery_id); own != attempt->decided.end()) {
      for (auto& rcpt : own->second.recipients)
        outcome.recipients.push_back(std::move(rcpt));
      attempt->decided.erase(own);
    }
  for (auto& [id, outcome] : attempt->decided)
    delivered.push_back(std::move(outcome));
  answer(attempt, std::move(delivered), self->clock().now());
}

/// The transfers of the messages read (in the order asked, missing ones
/// left out), less the recipients the injected fault fails.
std::vector<transfer> transfers_of(postoffice_ptr self, std::shared_ptr<attempt_state> attempt,
                                   std::vector<stored_message>& found, const std::string& why) {
  auto& faults = self->state.faults;
  std::vector<transfer> transfers;
  auto next_found = found.begin();
  for (const auto& job : attempt->jobs) {
    if (next_found == found.end() || next_found->id != job.message_id) {
      auto& outcome = attempt->decided[job.delivery_id];
      outcome = {job.delivery_id, true, "", "", {}};
      for (const auto& rcpt : job.recipients)
        outcome.recipients.push_back({rcpt, recipient_result::temporary_failure, "4.3.0",
                                      "message unreadable: " + why, false});
      continue;
    }
    transfer item{job, std::move(*next_found++), {}};
    auto failed_transfer = faults.fails_transfer();
    for (const auto& rcpt : job.recipients) {
      if (failed_transfer || faults.refuses(rcpt)) {
        auto& outcome = attempt->decided[job.delivery_id];
        outcome.delivery_id = job.delivery_id;
        outcome.opened = true;
        outcome.recipients.push_back(injected_failure(rcpt, !failed_transfer));
      } else {
        item.recipients.push_back(rcpt);
      }
    }
    transfers.push_back(std::move(item));
  }
  return transfers;
}

/// Once open: marks the jobs in doubt and reads their messages in one store
/// request (so a copy never reaches the postoffice before the queue knows
/// it may), then delivers them.
void transfer_batch(postoffice_ptr self, std::shared_ptr<attempt_state> attempt) {
  std::vector<std::string> ids;
  std::vector<std::int64_t> in_doubt;
  for (const auto& job : attempt->jobs) {
    ids.push_back(job.message_id);
    in_doubt.push_back(job.delivery_id);
  }
  auto hand_over = [=](std::vector<stored_message> found, const std::string& why) {
    auto transfers = transfers_of(self, attempt, found, why);
    if (transfers.empty()) {
      self->state.link->close(self);
      return finish(self, attempt, {});
    }
    self->state.link->deliver(self, std::move(transfers), [=](outcomes delivered) {
      finish(self, attempt, std::move(delivered));
    });
  };
  self->request(self->state.store, store_timeout, fetch_atom::value, std::move(ids),
                std::move(in_doubt))
    .then([=](std::vector<stored_message>& found) {
            hand_over(std::move(found), "not in the queue");
          },
          [=](const caf::error& err) { hand_over({}, self->system().render(err)); });
}

/// One attempt: open, then transfer; one outcome per job.
caf::typed_response_promise<outcomes> attempt(postoffice_ptr self,
                                              std::vector<delivery_job> jobs) {
  auto attempt = std::make_shared<attempt_state>();
  attempt->jobs = std::move(jobs);
  attempt->promise = self->make_response_promise<outcomes>();
  attempt->relay = relay_of(*self->state.cfg);
  attempt->started = attempt->opened = self->clock().now();
  if (attempt->jobs.empty()) {
    attempt->promise.deliver(outcomes{});
    return attempt->promise;
  }
  if (auto refused = refused_open(self)) {
    note_opening(self, *refused);
    fail_open(self, attempt, *refused);
    return attempt->promise;
  }
  self->state.link->open(self, [=](transport_opening opening) {
    attempt->opened = self->clock().now();
    note_opening(self, opening);
    if (opening.opened)
      transfer_batch(self, attempt);
    else
      fail_open(self, attempt, opening);
  });
  return attempt->promise;
}

/// Puts `fault` in front of the real transport from now on.
void inject(postoffice_ptr self, const fault_config& fault) {
  auto& st = self->state;
  st.faults = fault_injector{fault, self->clock().now()};
  if (fault.mode != fault_mode::none)
    spdlog::warn("postoffice {}: injecting fault {}", st.cfg->name, to_string(fault.mode));
}

} // namespace

postoffice_actor::behavior_type
postoffice(postoffice_actor::stateful_pointer<postoffice_state> self,
           std::shared_ptr<const postoffice_config> cfg, share_pool_actor pool,
           store_actor store, std::shared_ptr<const std::string> hostname) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.pool = std::move(pool);
  st.store = std::move(store);
  st.hostname = std::move(hostname);
  st.link = make_transport(*st.cfg);
  inject(self, st.cfg->fault);
  // Unknown until this first probe answers: a restart must not show a
  // postoffice that is down as up until its first idle probe.
  st.since = unix_time_origin::now().seconds;
  st.problem = "not probed yet";
  // The first idle probe falls anywhere in the first interval, so that many
  // postoffices do not probe in step. (A 31-bit draw taken as nanoseconds
  // would bunch them all into the first 2.1 s.) It is set before the first
  // probe, which brings it forward if that finds the postoffice down.
  std::mt19937_64 spread{std::hash<std::string>{}(st.cfg->name)};
  auto interval = std::chrono::duration_cast<caf::timespan>(st.cfg->retry.open_interval);
  std::uniform_int_distribution<caf::timespan::rep> offset{
    0, std::max<caf::timespan::rep>(interval.count(), 1) - 1};
  schedule_idle_probe(self, caf::timespan{offset(spread)});
  probe(self);
  return {
    [=](deliver_atom, std::vector<delivery_job>& jobs) -> caf::result<outcomes> {
      return attempt(self, std::move(jobs));
    },
    [=](fault_atom, const fault_config& fault) {
      inject(self, fault);
      if (fault.mode == fault_mode::none)
        spdlog::info("postoffice {}: no fault injected", self->state.cfg->name);
    },
    [=](status_atom) {
      const auto& st = self->state;
      postoffice_report report;
      report.name = st.cfg->name;
      report.transport = std::string{to_string(st.cfg->transport)};
      report.state = st.state;
      report.problem = st.problem;
      report.since = st.since;
      report.tls = st.tls;
      return report;
    },
    [=](watch_atom, recovery_listener_actor& listener) {
      self->state.recovery_listener = std::move(listener);
    },
    [=](probe_atom) {
      if (self->clock().now() < self->state.next_probe_at)
        return; // overtaken by a sooner probe
      probe(self);
      schedule_idle_probe(self, probe_interval(self->state));
    },
  };
}

} // namespace postconn
