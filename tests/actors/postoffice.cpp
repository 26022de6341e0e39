// Tests actors/postoffice.cpp and its transports with the share pool on the
// deterministic scheduler: an attempt opens the postoffice first and reports a
// failed open for every job when it cannot be opened, reading nothing from
// the store; otherwise it reads the batch and the transport writes each
// recipient's copy and reports per recipient (unknown mailbox: 5.1.1).
#include <doctest/doctest.h>

#include <fstream>

#include "actors/postoffice.hpp"
#include "actors/share_pool.hpp"
#include "actors/store.hpp"
#include "tests/actor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
namespace fs = std::filesystem;

namespace {

/// The postoffice actor for `cfg`, as the server starts it.
postoffice_actor spawn_postoffice(caf::actor_system& sys, const postoffice_config& cfg,
                                  const share_pool_actor& pool, const store_actor& store) {
  return sys.spawn(postoffice, std::make_shared<const postoffice_config>(cfg), pool, store,
                   std::make_shared<const std::string>("connector.example.test"));
}

/// One attempt of `jobs` at `po`, run to its answer.
std::vector<delivery_outcome> attempt_at(test::actor_fixture& f, const postoffice_actor& po,
                                         std::vector<delivery_job> jobs) {
  std::vector<delivery_outcome> result;
  auto handle = f.self->request(po, caf::infinite, deliver_atom::value, std::move(jobs));
  f.sched.run();
  handle.receive([&](std::vector<delivery_outcome>& outcomes) { result = outcomes; },
                 [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  return result;
}

struct postoffice_fixture : test::actor_fixture {
  postoffice_fixture() {
    fs::create_directories(root / "bob" / "tmp");
    fs::create_directories(root / "bob" / "new");
    fs::create_directories(root / "bob" / "cur");
    std::ofstream{root / ".postoffice"};
    db = queue_db::open(dir / "queue.db");
    store = spawn_store(sys, db, store_options{}, false);
    share_pool_options pool_options;
    pool_options.workers = 2;
    pool_options.detached = false;
    pool = sys.spawn(share_pool, pool_options);
    postoffice_config cfg;
    cfg.name = "sales";
    cfg.path = root;
    po = spawn_postoffice(sys, cfg, pool, store);
    sched.run();
  }

  ~postoffice_fixture() {
    for (const auto& actor : {caf::actor_cast<caf::actor>(po),
                              caf::actor_cast<caf::actor>(pool),
                              caf::actor_cast<caf::actor>(store)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Queues a message directly and returns its one delivery as a job.
  delivery_job queue(std::vector<std::string> recipients) {
    incoming_message msg;
    msg.sender = "ann@example.org";
    msg.content = "Subject: hi\r\n\r\nhello\r\n";
    msg.received_at = 1'700'000'000;
    msg.deliveries = {{"sales", recipients}};
    auto id = "00000000000000" + std::to_string(10 + ++queued);
    db->begin();
    auto entries = db->insert_message(id, msg);
    db->commit();
    return {entries.at(0).delivery_id, id, recipients, delivery_key(entries.at(0), "")};
  }

  std::vector<delivery_outcome> attempt(std::vector<delivery_job> jobs) {
    return attempt_at(*this, po, std::move(jobs));
  }

  test::temp_dir dir;
  fs::path root = dir / "sales";
  std::shared_ptr<queue_db> db;
  store_actor store;
  share_pool_actor pool;
  postoffice_actor po;
  int queued = 0;
};

std::size_t files_in(const fs::path& folder) {
  return static_cast<std::size_t>(
    std::distance(fs::directory_iterator{folder}, fs::directory_iterator{}));
}

} // namespace

TEST_CASE_FIXTURE(postoffice_fixture, "an open postoffice gets each recipient's copy, or a per-recipient failure") {
  auto outcomes = attempt({queue({"bob@sales.example.test", "nobody@sales.example.test"}),
                           queue({"Bob@sales.example.test"})});
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].opened);
  REQUIRE(outcomes[0].recipients.size() == 2);
  for (const auto& rcpt : outcomes[0].recipients) {
    if (rcpt.address == "bob@sales.example.test") {
      CHECK(rcpt.result == recipient_result::delivered);
    } else {
      CHECK(rcpt.result == recipient_result::permanent_failure);
      CHECK(rcpt.status == "5.1.1");
    }
  }
  REQUIRE(outcomes[1].recipients.size() == 1);
  CHECK(outcomes[1].recipients[0].result == recipient_result::delivered);
  CHECK(files_in(root / "bob" / "new") == 2);
  CHECK(files_in(root / "bob" / "tmp") == 0);
}

TEST_CASE_FIXTURE(postoffice_fixture, "a share that is gone fails the open of every job, and nothing is written") {
  fs::rename(root, dir / "sales.gone");
  auto outcomes = attempt({queue({"bob@sales.example.test"}), queue({"bob@sales.example.test"})});
  REQUIRE(outcomes.size() == 2);
  for (const auto& outcome : outcomes) {
    CHECK_FALSE(outcome.opened);
    CHECK(outcome.status == "4.4.1");
    CHECK_FALSE(outcome.text.empty());
    CHECK(outcome.recipients.empty());
  }
  CHECK(files_in(dir / "sales.gone" / "bob" / "new") == 0);
}

TEST_CASE_FIXTURE(postoffice_fixture, "an unmounted share (marker missing) does not open") {
  fs::remove(root / ".postoffice");
  auto outcomes = attempt({queue({"bob@sales.example.test"})});
  REQUIRE(outcomes.size() == 1);
  CHECK_FALSE(outcomes[0].opened);
  CHECK(outcomes[0].text.find(".postoffice") != std::string::npos);
  CHECK(files_in(root / "bob" / "new") == 0);
}

TEST_CASE_FIXTURE(postoffice_fixture, "a repeated attempt of the same delivery leaves one copy") {
  auto job = queue({"bob@sales.example.test"});
  attempt({job});
  auto again = attempt({job});
  REQUIRE(again.size() == 1);
  CHECK(again[0].recipients.at(0).result == recipient_result::delivered);
  CHECK(files_in(root / "bob" / "new") == 1);
}

TEST_CASE_FIXTURE(postoffice_fixture, "idle probes fall on 100 ms ticks of the clock, one per open_interval") {
  using namespace std::chrono_literals;
  auto& clock = sched.clock();
  // Right after the start (and its first probe, whose request timeouts are
  // timers too) the first idle probe is the only message it sent itself for
  // later (the share pool has a timer of its own).
  using clock_type = caf::detail::simple_actor_clock;
  auto own = caf::actor_cast<caf::strong_actor_ptr>(po);
  std::vector<caf::actor_clock::time_point> delayed;
  for (const auto& [at, event] : clock.schedule())
    if (event->subtype == clock_type::actor_msg_type
        && static_cast<const clock_type::actor_msg&>(*event).receiver == own)
      delayed.push_back(at);
  REQUIRE(delayed.size() == 1);
  auto first = delayed.front();
  CHECK(first.time_since_epoch() % caf::timespan{100ms} == caf::timespan{0});
  sched.advance_time(first - clock.current_time);
  sched.run();
  auto interval = std::chrono::duration_cast<caf::timespan>(retry_policy{}.open_interval);
  CHECK(clock.schedule().count(first + interval) == 1);
}

TEST_CASE_FIXTURE(postoffice_fixture, "a postoffice is unknown until its first probe, which it runs as it starts") {
  using namespace std::chrono_literals;
  postoffice_config cfg;
  cfg.name = "support";
  cfg.path = dir / "support"; // missing
  cfg.retry.open_interval = 10min;
  auto support = spawn_postoffice(sys, cfg, pool, store);
  CHECK(state_of<postoffice_state>(support).state == reachability::unknown);
  auto started = sched.clock().current_time;
  sched.run();
  // Down at once, though the first idle probe may be ten minutes away.
  CHECK(sched.clock().current_time == started);
  const auto& st = state_of<postoffice_state>(support);
  CHECK(st.state == reachability::down);
  CHECK(st.problem.find("root") != std::string::npos);
  auto asked = self->request(support, caf::infinite, status_atom::value);
  sched.run();
  asked.receive([](const postoffice_report& report) {
                  CHECK(report.state == reachability::down);
                  CHECK(report.name == "support");
                },
                [&](const caf::error& err) { FAIL(sys.render(err)); });
  // The fixture's postoffice, whose root is there, read up the same way.
  CHECK(state_of<postoffice_state>(po).state == reachability::up);
  caf::anon_send_exit(support, caf::exit_reason::user_shutdown);
}

namespace {

struct recovery_log {
  std::vector<std::string> recovered;
};

/// Records the postoffices said to be up again.
recovery_listener_actor::behavior_type
recovery_recorder(recovery_listener_actor::pointer, std::shared_ptr<recovery_log> log) {
  return {[=](recovered_atom, const std::string& postoffice) {
    log->recovered.push_back(postoffice);
  }};
}

/// The times the delayed messages to `po` (its idle probes) are due.
std::vector<caf::actor_clock::time_point> probes_of(caf::scheduler::test_coordinator& s,
                                                    const postoffice_actor& po) {
  using clock = caf::detail::simple_actor_clock;
  std::vector<caf::actor_clock::time_point> delayed;
  for (const auto& [at, event] : s.clock().schedule())
    if (event->subtype == clock::actor_msg_type
        && static_cast<const clock::actor_msg&>(*event).receiver
             == caf::actor_cast<caf::strong_actor_ptr>(po))
      delayed.push_back(at);
  return delayed;
}

/// Moves time on in 100 ms steps, up to `limit`, until `done` says yes.
template <class Done>
void advance_until(test::actor_fixture& f, caf::timespan limit, Done done) {
  using namespace std::chrono_literals;
  for (caf::timespan waited{0}; waited < limit && !done(); waited += 100ms) {
    f.sched.advance_time(100ms);
    f.sched.run();
  }
}

} // namespace

TEST_CASE_FIXTURE(postoffice_fixture, "a postoffice that is down is probed every recovery_probe_interval and says when it is up again") {
  using namespace std::chrono_literals;
  postoffice_config cfg;
  cfg.name = "support";
  cfg.path = dir / "support"; // missing until the test makes it
  cfg.retry.open_interval = 10min;
  cfg.retry.recovery_probe_interval = 10s;
  auto support = spawn_postoffice(sys, cfg, pool, store);
  auto log = std::make_shared<recovery_log>();
  auto listener = sys.spawn(recovery_recorder, log);
  caf::anon_send(support, watch_atom::value, listener);
  auto started = sched.clock().current_time;
  sched.run();
  REQUIRE(state_of<postoffice_state>(support).state == reachability::down);
  // The first idle probe, up to ten minutes away, came forward to 10 s.
  // (The probe it was set for stays in the clock's schedule; it is dropped
  // when it comes, as next_probe_at is not its time.)
  const auto& st = state_of<postoffice_state>(support);
  auto first = st.next_probe_at;
  CHECK(first - started <= caf::timespan{10s + 100ms});
  CHECK(probes_of(sched, support).front() == first);
  // Still down at that probe: no word, and the next is 10 s later.
  sched.advance_time(first - started);
  sched.run();
  CHECK(st.state == reachability::down);
  CHECK(log->recovered.empty());
  CHECK(st.next_probe_at - first <= caf::timespan{10s + 100ms});
  fs::create_directories(dir / "support");
  std::ofstream{dir / "support" / ".postoffice"};
  advance_until(*this, 11s, [&] { return !log->recovered.empty(); });
  CHECK(state_of<postoffice_state>(support).state == reachability::up);
  CHECK(log->recovered == std::vector<std::string>{"support"});
  CHECK(sched.clock().current_time - started <= caf::timespan{20s + 200ms});
  // Up: back to open_interval, and no second word.
  auto next = st.next_probe_at;
  CHECK(next - sched.clock().current_time > caf::timespan{9min});
  // The stale first idle probe (52.5 s after the start) comes and is dropped.
  advance_until(*this, 1min, [] { return false; });
  CHECK(st.next_probe_at == next);
  caf::anon_send_exit(support, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
  sched.run();
  CHECK(log->recovered.size() == 1);
}

TEST_CASE_FIXTURE(postoffice_fixture, "with recovery_probe_interval 0 a postoffice that is down is probed every open_interval") {
  using namespace std::chrono_literals;
  postoffice_config cfg;
  cfg.name = "hr";
  cfg.path = dir / "hr";
  cfg.retry.open_interval = 10min;
  cfg.retry.recovery_probe_interval = 0s;
  auto support = spawn_postoffice(sys, cfg, pool, store);
  auto started = sched.clock().current_time;
  sched.run();
  REQUIRE(state_of<postoffice_state>(support).state == reachability::down);
  auto delayed = probes_of(sched, support);
  REQUIRE(delayed.size() == 1);
  // Its first idle probe stays where the spread over open_interval put it
  // (for this name, 419 s away).
  CHECK(delayed.front() - started > caf::timespan{1min});
  CHECK(delayed.front() - started <= caf::timespan{10min + 100ms});
  caf::anon_send_exit(support, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_FIXTURE(postoffice_fixture, "each outcome names the share it went to, opened or not") {
  auto outcomes = attempt({queue({"bob@sales.example.test"})});
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].opened);
  CHECK(outcomes[0].relay == root.string());
  fs::rename(root, dir / "gone");
  outcomes = attempt({queue({"bob@sales.example.test"})});
  REQUIRE(outcomes.size() == 1);
  CHECK_FALSE(outcomes[0].opened);
  CHECK(outcomes[0].relay == root.string());
}

namespace {

/// A store that only counts the batch reads it is asked for and finds
/// nothing.
caf::behavior counting_store(caf::event_based_actor* self, std::shared_ptr<int> reads) {
  self->set_default_handler(caf::drop);
  return {
    [=](fetch_atom, const std::vector<std::string>&, const std::vector<std::int64_t>&) {
      ++*reads;
      return std::vector<stored_message>{};
    },
  };
}

/// An attempt of two jobs at a postoffice that cannot be opened.
struct unreachable_fixture : test::actor_fixture {
  std::vector<delivery_outcome> attempt(postoffice_config cfg) {
    share_pool_options pool_options;
    pool_options.detached = false;
    pool = sys.spawn(share_pool, pool_options);
    store = caf::actor_cast<store_actor>(sys.spawn(counting_store, reads));
    po = spawn_postoffice(sys, cfg, pool, store);
    sched.run();
    return attempt_at(*this, po,
                      {{1, "00000000000000a1", {"bob@x.test"}, "k1"},
                       {2, "00000000000000a2", {"eve@x.test"}, "k2"}});
  }

  ~unreachable_fixture() {
    for (const auto& actor : {caf::actor_cast<caf::actor>(po), caf::actor_cast<caf::actor>(pool),
                              caf::actor_cast<caf::actor>(store)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::shared_ptr<int> reads = std::make_shared<int>(0);
  share_pool_actor pool;
  store_actor store;
  postoffice_actor po;
};

} // namespace

TEST_CASE_FIXTURE(unreachable_fixture, "an SMTP postoffice that cannot be connected to reads nothing from the store") {
  postoffice_config cfg;
  cfg.name = "relay";
  cfg.transport = transport_kind::smtp;
  cfg.address = "127.0.0.1:1"; // nothing listens on port 1
  auto outcomes = attempt(cfg);
  REQUIRE(outcomes.size() == 2);
  for (const auto& outcome : outcomes) {
    CHECK_FALSE(outcome.opened);
    CHECK(outcome.text.find("connect to 127.0.0.1:1 failed") != std::string::npos);
  }
  CHECK(*reads == 0);
}

TEST_CASE_FIXTURE(unreachable_fixture, "a maildir postoffice whose share is gone reads nothing from the store") {
  test::temp_dir dir;
  postoffice_config cfg;
  cfg.name = "sales";
  cfg.path = dir / "not-mounted";
  auto outcomes = attempt(cfg);
  REQUIRE(outcomes.size() == 2);
  for (const auto& outcome : outcomes)
    CHECK_FALSE(outcome.opened);
  CHECK(*reads == 0);
}

TEST_CASE_FIXTURE(unreachable_fixture, "an open maildir postoffice reads its batch in one request") {
  test::temp_dir dir;
  fs::create_directories(dir / "sales");
  std::ofstream{dir / "sales" / ".postoffice"};
  postoffice_config cfg;
  cfg.name = "sales";
  cfg.path = dir / "sales";
  auto outcomes = attempt(cfg);
  CHECK(*reads == 1);
  REQUIRE(outcomes.size() == 2);
  for (const auto& outcome : outcomes) {
    CHECK(outcome.opened);
    REQUIRE(outcome.recipients.size() == 1);
    CHECK(outcome.recipients[0].text == "message unreadable: not in the queue");
  }
}
