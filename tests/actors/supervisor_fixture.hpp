// NAME
//   supervisor_fixture -- a server's actors over one queue database, on the
//   deterministic scheduler: the real store, supervisor and NDR generators,
//   and two fake postoffices "dead" and "live" whose behaviour a test sets.
#pragma once

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/store.hpp"
#include "actors/supervisor.hpp"
#include "tests/actor_fixture.hpp"

namespace postconn::test {

using namespace std::chrono_literals;

constexpr std::int64_t t0 = 1'700'000'000;

/// How a fake postoffice answers attempts.
enum class po_mode { down, up, tempfail, hang };

struct fake_postoffice_state {
  po_mode mode = po_mode::down;
  /// Recipients answered with a permanent 5.1.1 while up.
  std::set<std::string> unknown_mailboxes;
  /// Attempts so far, and the recipients it delivered.
  int attempts = 0;
  std::vector<std::string> delivered;
  /// The same, as "<queue id> <recipient>".
  std::vector<std::string> delivered_copies;
  /// Attempts left unanswered in hang mode.
  std::vector<caf::typed_response_promise<std::vector<delivery_outcome>>> hung;
  /// Faults it was told to inject (it has its own faults: `mode`).
  std::vector<fault_mode> injected;

  static inline const char* name = "fake_postoffice";
};

inline postoffice_actor::behavior_type
fake_postoffice(postoffice_actor::stateful_pointer<fake_postoffice_state> self) {
  return {
    [=](deliver_atom, const std::vector<delivery_job>& jobs)
      -> caf::result<std::vector<delivery_outcome>> {
      auto& st = self->state;
      ++st.attempts;
      if (st.mode == po_mode::hang) {
        st.hung.push_back(self->make_response_promise<std::vector<delivery_outcome>>());
        return st.hung.back();
      }
      std::vector<delivery_outcome> outcomes;
      for (const auto& job : jobs) {
        delivery_outcome outcome{job.delivery_id, st.mode != po_mode::down, "4.4.1",
                                 "share not mounted", {}};
        if (st.mode == po_mode::down) {
          outcomes.push_back(outcome);
          continue;
        }
        for (const auto& rcpt : job.recipients) {
          if (st.unknown_mailboxes.count(rcpt))
            outcome.recipients.push_back({rcpt, recipient_result::permanent_failure,
                                          "5.1.1", "mailbox does not exist", false});
          else if (st.mode == po_mode::tempfail)
            outcome.recipients.push_back({rcpt, recipient_result::temporary_failure,
                                          "4.2.1", "452 4.2.1 mailbox busy", true});
          else {
            outcome.recipients.push_back({rcpt, recipient_result::delivered, "2.0.0",
                                          "delivered", false});
            st.delivered.push_back(rcpt);
            st.delivered_copies.push_back(job.message_id + " " + rcpt);
          }
        }
        outcomes.push_back(outcome);
      }
      return outcomes;
    },
    // The fake only records injected faults; `mode` is what it does.
    [=](fault_atom, const fault_config& fault) { self->state.injected.push_back(fault.mode); },
    [=](status_atom) {
      postoffice_report report;
      auto down = self->state.mode == po_mode::down;
      report.state = down ? reachability::down : reachability::up;
      report.problem = down ? "share not mounted" : "";
      return report;
    },
    [=](watch_atom, const recovery_listener_actor&) {},
    [=](probe_atom) {},
  };
}

inline config two_postoffices(retry_policy retry) {
  config cfg;
  cfg.server.hostname = "connector.example.test";
  cfg.retry = retry;
  postoffice_config dead;
  dead.name = "dead";
  dead.domains = {"dead.example.test"};
  dead.retry = retry;
  postoffice_config live = dead;
  live.name = "live";
  live.domains = {"live.example.test"};
  cfg.postoffices = {dead, live};
  return cfg;
}

/// A server's queue over one database: the store, the supervisor a derived
/// fixture starts, and helpers to submit mail, move simulated time and read
/// the NDRs.
struct queue_fixture : actor_fixture {
  explicit queue_fixture(const std::filesystem::path& file)
    : db_file(file), db(queue_db::open(file)) {
    store = spawn_store(sys, db, store_options{}, false);
  }

  ~queue_fixture() {
    for (const auto& actor :
         {caf::actor_cast<caf::actor>(sup), caf::actor_cast<caf::actor>(store)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Commits a message as an SMTP session would and tells the supervisor.
  std::string submit(std::vector<routed_recipients> deliveries,
                     std::int64_t received_at = t0,
                     std::string sender = "ann@live.example.test") {
    auto id = std::make_shared<std::string>();
    start_submit(std::move(deliveries), id, received_at, std::move(sender));
    sched.run();
    return *id;
  }

  /// submit() without running the scheduler: the test steps through it.
  void start_submit(std::vector<routed_recipients> deliveries,
                    std::shared_ptr<std::string> id, std::int64_t received_at = t0,
                    std::string sender = "ann@live.example.test") {
    incoming_message msg;
    msg.sender = std::move(sender);
    msg.content = "Subject: quarterly report\r\n\r\nnumbers\r\n";
    msg.received_at = received_at;
    msg.deliveries = std::move(deliveries);
    sys.spawn([this, id, msg](caf::event_based_actor* client) {
      client->request(store, caf::infinite, accept_atom::value, msg)
        .then([this, id, client](accept_receipt& receipt) {
          *id = receipt.id; // the store tells the supervisor of the deliveries
        });
    });
  }

  /// Moves simulated time forward by `total`, stopping at every timer so
  /// that each fires at its exact time, and at least every `step`.
  void advance(caf::timespan total, caf::timespan step = 1s) {
    auto& clock = sched.clock();
    auto end = clock.current_time + total;
    while (clock.current_time < end) {
      auto next = std::min(clock.current_time + step, end);
      if (!clock.schedule().empty())
        next = std::max(clock.current_time,
                        std::min(next, clock.schedule().begin()->first));
      sched.advance_time(next - clock.current_time);
      sched.run();
    }
  }

  /// The NDRs in the queue (messages with the null sender), oldest first.
  std::vector<std::string> ndrs() {
    std::vector<std::string> contents;
    sqlite3* raw = nullptr;
    sqlite3_open_v2(db_file.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(raw, "SELECT content FROM messages WHERE sender = '' ORDER BY id",
                       -1, &stmt, nullptr);
    while (sqlite3_step(stmt) == SQLITE_ROW)
      contents.emplace_back(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                            static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
    return contents;
  }

  std::filesystem::path db_file;
  std::shared_ptr<queue_db> db;
  store_actor store;
  supervisor_actor sup;
};

/// A server's actors over one queue database: store, supervisor, and two
/// fake postoffices "dead" and "live".
struct supervisor_fixture : queue_fixture {
  explicit supervisor_fixture(const std::filesystem::path& file, retry_policy retry,
                              std::int64_t start_time = t0,
                              supervisor_options options = {})
    : queue_fixture(file) {
    dead = sys.spawn(fake_postoffice);
    live = sys.spawn(fake_postoffice);
    sched.run();
    state_of<fake_postoffice_state>(live).mode = po_mode::up;
    auto cfg = two_postoffices(retry);
    auto ndr = std::make_shared<const ndr_settings>(
      ndr_settings{cfg.server.hostname, routing_table{cfg}});
    options.origin = {start_time, options.origin.fraction};
    options.attempt_timeout = 30s;
    options.fallback_retry = retry;
    sup = sys.spawn(supervisor,
                    std::vector<postoffice_slot>{{"dead", retry, restartable(dead), {}, false, {}},
                                                 {"live", retry, restartable(live), {}, false, {}}},
                    db->unfinished_deliveries(), store, ndr, options);
    caf::anon_send(store, watch_atom::value, store_listener_actor{sup});
    sched.run();
  }

  /// Starts as `fake` (spawned and set up by the fixture), restarts as a
  /// fresh fake that `fake` then names.
  postoffice_factory restartable(postoffice_actor& fake) {
    auto first = std::make_shared<bool>(true);
    return [this, &fake, first] {
      if (!*first)
        fake = sys.spawn(fake_postoffice);
      *first = false;
      return fake;
    };
  }

  /// Asks the supervisor and runs the scheduler until it answers; an
  /// error answer throws (a test case fails on it).
  template <class Answer, class... Ts>
  Answer ask(Ts... xs) {
    Answer answer{};
    auto handle = self->request(sup, caf::infinite, xs...);
    sched.run();
    handle.receive([&](Answer& given) { answer = std::move(given); },
                   [&](const caf::error& err) { throw std::runtime_error(sys.render(err)); });
    return answer;
  }

  ~supervisor_fixture() {
    // A hung fake holds promises that keep the supervisor alive: end them first.
    for (const auto& actor :
         {caf::actor_cast<caf::actor>(dead), caf::actor_cast<caf::actor>(live)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }

  postoffice_actor dead;
  postoffice_actor live;
};

} // namespace postconn::test
