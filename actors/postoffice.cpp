// NAME
//   postoffice -- one actor per postoffice (see postoffice.hpp).
#include "actors/postoffice.hpp"
#include "messages/unix_clock.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>
#include <random>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

namespace postconn {

namespace {

using postoffice_ptr = postoffice_actor::stateful_pointer<postoffice_state>;
using outcomes = std::vector<delivery_outcome>;


/// Records a probe result, logging changes of the up/down state.
void note_probe(postoffice_ptr self, const std::string& problem) {
  auto& st = self->state;
  bool up = problem.empty();
  if (up != st.up)
    st.since = unix_time_origin::now().seconds;
  if (up != st.up || problem != st.problem) {
    if (up)
      spdlog::info("postoffice {}: reachable again", st.cfg.name);
    else
      spdlog::warn("postoffice {}: unreachable ({})", st.cfg.name, problem);
  }
  st.up = up;
  st.problem = problem;
}

/// Keeps the TLS of a session that opened for status reports; logs when it
/// changes (the first session, a server that stopped offering STARTTLS).
void note_tls(postoffice_ptr self, const mail_server_result& result) {
  auto& st = self->state;
  if (!result.opened || result.tls == st.tls)
    return;
  st.tls = result.tls;
  spdlog::info("postoffice {}: sessions run {}", st.cfg.name,
               st.tls.empty() ? std::string{"in plaintext"} : "over " + st.tls);
}

/// A session with an SMTP/LMTP postoffice; no messages: a probe.
mail_server_job server_job(postoffice_state& st, std::vector<outgoing_mail> messages) {
  return {st.cfg.address,      st.cfg.transport == transport_kind::lmtp,
          st.hostname,         st.cfg.probe_timeout.count(),
          std::move(messages), st.faults.open_call(),
          st.cfg.tls,          st.cfg.tls_ca_file.string()};
}

/// A recipient failed by the injected fault, as a server would have.
recipient_outcome injected_failure(const std::string& recipient, bool permanent) {
  if (permanent)
    return {recipient, recipient_result::permanent_failure, "5.1.1",
            injected_permfail_reply, true};
  return {recipient, recipient_result::temporary_failure, "4.3.0", injected_tempfail_reply,
          true};
}

/// How long a whole session may take: each of its steps may take
/// probe_timeout (connect, greeting, EHLO, MAIL, RCPTs, DATA, the end of
/// the data, QUIT; with TLS also STARTTLS, the handshake's round trips and
/// EHLO again).
caf::timespan session_timeout(const postoffice_state& st, std::size_t steps) {
  auto fixed = st.cfg.tls == tls_policy::none ? 6 : 10;
  return std::chrono::duration_cast<caf::timespan>(st.cfg.probe_timeout * (steps + fixed));
}

/// Probes the postoffice; `done` gets the problem, "" when it can be opened.
void probe(postoffice_ptr self, std::function<void(const std::string&)> done) {
  auto& st = self->state;
  if (auto refused = st.faults.refused_open(self->clock().now()); !refused.empty()) {
    note_probe(self, refused);
    return done(refused);
  }
  if (st.cfg.transport != transport_kind::maildir) {
    self->request(st.pool, session_timeout(st, 0), deliver_atom::value, server_job(st, {}))
      .then(
        [=](const mail_server_result& result) {
          auto problem = result.opened ? std::string{} : result.problem;
          note_probe(self, problem);
          note_tls(self, result);
          done(problem);
        },
        [=](const caf::error& err) {
          auto problem = "probe failed: " + self->system().render(err);
          note_probe(self, problem);
          done(problem);
        });
    return;
  }
  self->request(st.pool, st.cfg.probe_timeout, probe_atom::value,
                probe_job{st.cfg.path.string(), st.faults.open_call()})
    .then(
      [=](const std::string& problem) {
        note_probe(self, problem);
        done(problem);
      },
      [=](const caf::error& err) {
        auto problem = err == caf::sec::request_timeout
                         ? "probe timed out after "
                             + std::to_string(self->state.cfg.probe_timeout.count()) + "s"
                         : "probe failed: " + self->system().render(err);
        note_probe(self, problem);
        done(problem);
      });
}

std::string received_header(const postoffice_state& st, const stored_message& msg,
                            const std::string& recipient) {
  std::time_t now = unix_time_origin::now().seconds;
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  return "Received: by " + st.hostname + " (postconn) with maildir id " + msg.id
         + "\r\n\tfor <" + recipient + ">; " + date + "\r\n";
}

/// An attempt under way: jobs to transfer and outcomes collected.
struct attempt_state {
  std::vector<delivery_job> jobs;
  outcomes results;
  std::size_t next_job = 0;
  std::size_t open_transfers = 0;
  caf::typed_response_promise<outcomes> promise;
};

void transfer_next(postoffice_ptr self, std::shared_ptr<attempt_state> attempt);

/// Delivers one job's message to each of its recipients.
void transfer(postoffice_ptr self, std::shared_ptr<attempt_state> attempt,
              std::size_t index) {
  auto& st = self->state;
  const auto& job = attempt->jobs[index];
  auto fail_all = [=](const std::string& text) {
    auto& outcome = attempt->results[index];
    for (const auto& rcpt : attempt->jobs[index].recipients)
      outcome.recipients.push_back(
        {rcpt, recipient_result::temporary_failure, "4.3.0", text, false});
    --attempt->open_transfers;
    transfer_next(self, attempt);
  };
  self->request(st.store, store_timeout, fetch_atom::value, job.message_id)
    .then(
      [=](const stored_message& msg) {
        auto& st = self->state;
        auto pending = std::make_shared<std::size_t>(attempt->jobs[index].recipients.size());
        if (*pending == 0) {
          --attempt->open_transfers;
          return transfer_next(self, attempt);
        }
        auto finish = [=](recipient_outcome result) {
          attempt->results[index].recipients.push_back(std::move(result));
          if (--*pending == 0) {
            --attempt->open_transfers;
            transfer_next(self, attempt);
          }
        };
        auto failed_transfer = st.faults.fails_transfer();
        for (const auto& rcpt : attempt->jobs[index].recipients) {
          if (failed_transfer || st.faults.refuses(rcpt)) {
            finish(injected_failure(rcpt, !failed_transfer));
            continue;
          }
          maildir_job work{st.cfg.path.string(),
                           st.cfg.create_mailboxes,
                           attempt->jobs[index].key,
                           msg.sender,
                           rcpt,
                           received_header(st, msg, rcpt),
                           msg.content,
                           st.faults.transfer_call()};
          self->request(st.pool, st.cfg.probe_timeout, deliver_atom::value, work)
            .then([=](recipient_outcome& result) { finish(std::move(result)); },
                  [=](const caf::error& err) {
                    finish({rcpt, recipient_result::temporary_failure, "4.3.0",
                            "maildir write failed: " + self->system().render(err),
                            false});
                  });
        }
      },
      [=](const caf::error& err) {
        fail_all("message unreadable: " + self->system().render(err));
      });
}

/// Starts transfers up to the limit; answers once all jobs are done.
void transfer_next(postoffice_ptr self, std::shared_ptr<attempt_state> attempt) {
  auto& st = self->state;
  while (attempt->next_job < attempt->jobs.size()
         && attempt->open_transfers < st.max_transfers) {
    ++attempt->open_transfers;
    transfer(self, attempt, attempt->next_job++);
  }
  if (attempt->next_job == attempt->jobs.size() && attempt->open_transfers == 0)
    attempt->promise.deliver(std::move(attempt->results));
}

/// Sends the jobs' messages over one SMTP/LMTP session; the open is the
/// session's connect and greeting.
caf::typed_response_promise<outcomes>
deliver_to_server(postoffice_ptr self, std::vector<delivery_job> jobs) {
  auto promise = self->make_response_promise<outcomes>();
  auto messages = std::make_shared<std::vector<outgoing_mail>>();
  auto shared_jobs = std::make_shared<std::vector<delivery_job>>(std::move(jobs));
  auto unreadable = std::make_shared<outcomes>();
  // Recipients the injected fault failed; they count once the session opens.
  auto injected = std::make_shared<std::map<std::int64_t, std::vector<recipient_outcome>>>();
  auto send = [=]() mutable {
    auto& st = self->state;
    std::size_t steps = 0;
    for (const auto& msg : *messages)
      steps += 3 + msg.recipients.size();
    self->request(st.pool, session_timeout(st, steps), deliver_atom::value,
                  server_job(st, *messages))
      .then(
        [=](mail_server_result& result) mutable {
          note_probe(self, result.opened ? std::string{} : result.problem);
          note_tls(self, result);
          for (auto& outcome : result.outcomes)
            if (auto failed = injected->find(outcome.delivery_id);
                outcome.opened && failed != injected->end())
              for (auto& rcpt : failed->second)
                outcome.recipients.push_back(std::move(rcpt));
          for (auto& outcome : *unreadable)
            result.outcomes.push_back(std::move(outcome));
          promise.deliver(std::move(result.outcomes));
        },
        [=](const caf::error& err) mutable {
          outcomes failed;
          for (const auto& job : *shared_jobs)
            failed.push_back({job.delivery_id, false, "4.4.1",
                              "no answer from the session: " + self->system().render(err),
                              {}});
          promise.deliver(std::move(failed));
        });
  };
  if (shared_jobs->empty()) {
    promise.deliver(outcomes{});
    return promise;
  }
  auto mark_unreadable = [=](const delivery_job& job, const std::string& why) {
    delivery_outcome outcome{job.delivery_id, true, "", "", {}};
    for (const auto& rcpt : job.recipients)
      outcome.recipients.push_back({rcpt, recipient_result::temporary_failure, "4.3.0",
                                    "message unreadable: " + why, false});
    unreadable->push_back(std::move(outcome));
  };
  std::vector<std::string> ids;
  for (const auto& job : *shared_jobs)
    ids.push_back(job.message_id);
  // One read for the whole session's messages: one round trip to the store
  // instead of one per message.
  self->request(self->state.store, store_timeout, fetch_atom::value, std::move(ids))
    .then(
      [=](std::vector<stored_message>& found) mutable {
        auto& faults = self->state.faults;
        auto next_found = found.begin(); // in the order asked, missing ones left out
        for (const auto& job : *shared_jobs) {
          if (next_found == found.end() || next_found->id != job.message_id) {
            mark_unreadable(job, "not in the queue");
            continue;
          }
          const auto& msg = *next_found++;
          auto failed_transfer = faults.fails_transfer();
          std::vector<std::string> sent;
          for (const auto& rcpt : job.recipients) {
            if (failed_transfer || faults.refuses(rcpt))
              (*injected)[job.delivery_id].push_back(injected_failure(rcpt, !failed_transfer));
            else
              sent.push_back(rcpt);
          }
          messages->push_back({job.delivery_id, msg.sender, std::move(sent), msg.content});
        }
        send();
      },
      [=](const caf::error& err) mutable {
        for (const auto& job : *shared_jobs)
          mark_unreadable(job, self->system().render(err));
        send();
      });
  return promise;
}

/// Puts `fault` in front of the real transport from now on.
void inject(postoffice_ptr self, const fault_config& fault) {
  auto& st = self->state;
  st.faults = fault_injector{fault, self->clock().now()};
  if (fault.mode != fault_mode::none)
    spdlog::warn("postoffice {}: injecting fault {}", st.cfg.name, to_string(fault.mode));
}

/// Idle probes fire on ticks of the clock: with 100,000 postoffices the
/// timer thread then wakes ten times a second for a burst of probes, not
/// once per probe, and the spread over open_interval stays.
constexpr caf::timespan probe_tick = std::chrono::milliseconds(100);

void schedule_idle_probe(postoffice_ptr self, caf::timespan delay) {
  auto at = (self->clock().now() + delay).time_since_epoch();
  auto on_tick = (at + probe_tick - caf::timespan{1}) / probe_tick * probe_tick;
  self->delayed_send(self, delay + (on_tick - at), probe_atom::value);
}

} // namespace

postoffice_actor::behavior_type
postoffice(postoffice_actor::stateful_pointer<postoffice_state> self,
           postoffice_config cfg, share_pool_actor pool, store_actor store,
           std::string hostname) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.pool = std::move(pool);
  st.store = std::move(store);
  st.hostname = std::move(hostname);
  inject(self, st.cfg.fault);
  // The first idle probe falls anywhere in the first interval, so that many
  // postoffices do not probe in step. (A 31-bit draw taken as nanoseconds
  // would bunch them all into the first 2.1 s.)
  std::mt19937_64 spread{std::hash<std::string>{}(st.cfg.name)};
  auto interval = std::chrono::duration_cast<caf::timespan>(st.cfg.retry.open_interval);
  std::uniform_int_distribution<caf::timespan::rep> offset{
    0, std::max<caf::timespan::rep>(interval.count(), 1) - 1};
  schedule_idle_probe(self, caf::timespan{offset(spread)});
  return {
    [=](deliver_atom, std::vector<delivery_job>& jobs) -> caf::result<outcomes> {
      if (self->state.cfg.transport != transport_kind::maildir)
        return deliver_to_server(self, std::move(jobs));
      auto attempt = std::make_shared<attempt_state>();
      attempt->promise = self->make_response_promise<outcomes>();
      attempt->jobs = std::move(jobs);
      for (const auto& job : attempt->jobs)
        attempt->results.push_back({job.delivery_id, true, "", "", {}});
      probe(self, [=](const std::string& problem) {
        if (problem.empty())
          return transfer_next(self, attempt);
        for (auto& outcome : attempt->results) {
          outcome.opened = false;
          outcome.status = "4.4.1";
          outcome.text = problem;
        }
        attempt->promise.deliver(std::move(attempt->results));
      });
      return attempt->promise;
    },
    [=](fault_atom, const fault_config& fault) {
      inject(self, fault);
      if (fault.mode == fault_mode::none)
        spdlog::info("postoffice {}: no fault injected", self->state.cfg.name);
    },
    [=](status_atom) {
      const auto& st = self->state;
      postoffice_report report;
      report.name = st.cfg.name;
      report.transport = std::string{to_string(st.cfg.transport)};
      report.up = st.up;
      report.problem = st.problem;
      report.since = st.since;
      report.tls = st.tls;
      return report;
    },
    [=](probe_atom) {
      probe(self, [](const std::string&) {});
      schedule_idle_probe(self, std::chrono::duration_cast<caf::timespan>(
                                  self->state.cfg.retry.open_interval));
    },
  };
}

} // namespace postconn
