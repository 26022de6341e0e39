// Tests actors/share_pool.cpp with its workers on the deterministic scheduler
// (share_pool_options::detached = false) and simulated time, probing and
// writing real maildirs in temporary directories: calls go to idle workers,
// a hung call holds its worker while other calls go on, a burst of quick
// calls is queued without new workers, the pool starts a worker for a call
// waiting behind a stuck one up to max_workers and then queues, workers
// beyond `workers` end when idle, a postoffice with calls_per_postoffice calls
// unanswered gets "share busy" at once, a call unanswered after hang_limit
// fails while its worker stays taken, and the injected slow, hang and drop
// faults; a probe of a missing root answers the problem text.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include <caf/event_based_actor.hpp>

#include "actors/share_pool.hpp"
#include "tests/actor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void make_postoffice(const fs::path& root, std::initializer_list<const char*> mailboxes) {
  for (const auto* mailbox : mailboxes)
    for (const auto* sub : {"tmp", "new", "cur"})
      fs::create_directories(root / mailbox / sub);
  std::ofstream{root / ".postoffice"};
}

std::size_t files_in(const fs::path& folder) {
  return static_cast<std::size_t>(
    std::distance(fs::directory_iterator{folder}, fs::directory_iterator{}));
}

io_fault hang_for(std::int64_t ms) {
  return io_fault{ms, true, false};
}

io_fault slow_by(std::int64_t ms) {
  return io_fault{ms, false, false};
}

struct pool_fixture : test::actor_fixture {
  test::temp_dir dir;
  fs::path sales = dir / "sales";
  share_pool_actor pool;
  /// Every answer a client got, in order: "<client>: <answer>".
  std::vector<std::string> answers;

  pool_fixture() {
    make_postoffice(sales, {"bob"});
  }

  ~pool_fixture() {
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void start(share_pool_options options) {
    options.detached = false;
    pool = sys.spawn(share_pool, options);
    sched.run();
  }

  share_pool_state& st() {
    return state_of<share_pool_state>(pool);
  }

  /// A postoffice (an actor of its own: the pool counts calls by sender)
  /// probing once per fault given; each answer is logged as "<name>: ok",
  /// "<name>: <problem>" or "<name>: error <error>".
  void probe_from(const std::string& name, std::vector<io_fault> faults,
                  fs::path root = {}) {
    if (root.empty())
      root = sales;
    auto pool_handle = pool;
    sys.spawn([this, name, faults, root, pool_handle](caf::event_based_actor* client) {
      for (const auto& fault : faults)
        client->request(pool_handle, caf::infinite, probe_atom::value,
                        probe_job{root.string(), fault})
          .then(
            [this, name](const std::string& problem) {
              answers.push_back(name + ": " + (problem.empty() ? "ok" : problem));
            },
            [this, name](const caf::error& err) {
              answers.push_back(name + ": error " + sys.render(err));
            });
    });
  }

  /// One maildir delivery to bob from a postoffice of its own; the answer
  /// is logged as "<name>: <result> <status> <text>".
  void deliver_from(const std::string& name, io_fault fault) {
    maildir_job job;
    job.root = sales.string();
    job.delivery_key = "0006615ab267c25e.7";
    job.sender = "ann@support.example.test";
    job.recipient = "bob@sales.example.test";
    job.received_header = "Received: from client.example.test\r\n";
    job.content = "Subject: quarterly report\r\n\r\nnumbers\r\n";
    job.fault = fault;
    auto pool_handle = pool;
    sys.spawn([this, name, job, pool_handle](caf::event_based_actor* client) {
      client->request(pool_handle, caf::infinite, deliver_atom::value, job)
        .then(
          [this, name](const recipient_outcome& outcome) {
            auto result = outcome.result == recipient_result::delivered ? "delivered"
                          : outcome.result == recipient_result::temporary_failure
                            ? "temporary"
                            : "permanent";
            answers.push_back(name + ": " + result + " " + outcome.status + " "
                              + outcome.text);
          },
          [this, name](const caf::error& err) {
            answers.push_back(name + ": error " + sys.render(err));
          });
    });
  }

  void wait(caf::timespan duration) {
    sched.advance_time(duration);
    sched.run();
  }
};

} // namespace

TEST_CASE_FIXTURE(pool_fixture, "a call goes to an idle worker, which is idle again once it answered") {
  share_pool_options options;
  options.workers = 2;
  start(options);
  CHECK(st().workers.size() == 2);
  CHECK(st().idle.size() == 2);
  probe_from("sales", {io_fault{}});
  deliver_from("sales-po", io_fault{});
  sched.run();
  REQUIRE(answers.size() == 2);
  CHECK(answers[0] == "sales: ok");
  CHECK(answers[1].rfind("sales-po: delivered 2.0.0", 0) == 0);
  CHECK(files_in(sales / "bob" / "new") == 1);
  CHECK(st().workers.size() == 2); // no worker started for calls idle ones took
  CHECK(st().idle.size() == 2);
  CHECK(st().waiting.empty());
  CHECK(st().calls_by_client.empty());
  CHECK(st().busy.empty());
}

TEST_CASE_FIXTURE(pool_fixture, "a probe of a missing maildir root answers the problem text") {
  start({});
  probe_from("gone", {io_fault{}}, dir / "not-mounted");
  fs::create_directories(dir / "empty-mount-point");
  probe_from("unmounted", {io_fault{}}, dir / "empty-mount-point");
  sched.run();
  CHECK(answers
        == std::vector<std::string>{"gone: root missing",
                                    "unmounted: marker .postoffice missing (share not mounted?)"});
}

TEST_CASE_FIXTURE(pool_fixture, "a hung call holds its worker while the calls of other postoffices go on") {
  share_pool_options options;
  options.workers = 2;
  options.max_workers = 2;
  options.hang_limit = 900s;
  start(options);
  probe_from("dead", {hang_for(600'000)});
  sched.run();
  CHECK(answers.empty());
  CHECK(st().idle.size() == 1);
  // The other worker takes call after call meanwhile.
  for (int i = 0; i < 3; ++i) {
    probe_from("live" + std::to_string(i), {io_fault{}});
    sched.run();
  }
  CHECK(answers == std::vector<std::string>{"live0: ok", "live1: ok", "live2: ok"});
  CHECK(st().workers.size() == 2);
  CHECK(st().idle.size() == 1);
  wait(599s);
  CHECK(answers.size() == 3);
  wait(1s);
  REQUIRE(answers.size() == 4);
  CHECK(answers[3] == "dead: share call hung for 600s (fault injection: hang)");
  CHECK(st().idle.size() == 2);
}

TEST_CASE_FIXTURE(pool_fixture, "the pool starts a worker for calls waiting behind a stuck one, up to max_workers, then queues calls until a worker is free") {
  share_pool_options options;
  options.workers = 1;
  options.max_workers = 2;
  options.idle_limit = 600s;
  start(options);
  CHECK(st().workers.size() == 1);
  probe_from("a", {slow_by(60'000)});
  probe_from("b", {slow_by(60'000)});
  probe_from("c", {slow_by(60'000)});
  sched.run();
  CHECK(st().workers.size() == 1); // b and c wait: a may be quick
  CHECK(st().waiting.size() == 2);
  wait(options.grow_after);
  CHECK(st().workers.size() == 2); // a's worker is stuck: one started for b
  CHECK(st().idle.empty());
  REQUIRE(st().waiting.size() == 1); // c waits
  CHECK(answers.empty());
  wait(60s);
  // a and b answered; their workers went back, one straight on to c.
  CHECK(answers == std::vector<std::string>{"a: ok", "b: ok"});
  CHECK(st().waiting.empty());
  CHECK(st().idle.size() == 1);
  CHECK(st().workers.size() == 2);
  wait(59s);
  CHECK(answers.size() == 2);
  wait(1s);
  CHECK(answers == std::vector<std::string>{"a: ok", "b: ok", "c: ok"});
  CHECK(st().idle.size() == 2);
  CHECK(st().workers.size() == 2);
}

TEST_CASE_FIXTURE(pool_fixture, "a postoffice with calls_per_postoffice calls unanswered gets share busy at once, others do not") {
  share_pool_options options;
  options.workers = 2;
  options.calls_per_postoffice = 3;
  options.hang_limit = 900s;
  start(options);
  probe_from("dead", {hang_for(600'000), hang_for(600'000), hang_for(600'000),
                      hang_for(600'000)});
  sched.run();
  CHECK(answers
        == std::vector<std::string>{"dead: share busy: 3 earlier calls have not returned"});
  wait(options.grow_after);
  CHECK(st().workers.size() == 3); // only three workers hang, not four
  probe_from("live", {io_fault{}});
  sched.run();
  wait(options.grow_after);
  CHECK(answers.back() == "live: ok");
  CHECK(st().workers.size() == 4); // all three hang: one more for live
  wait(600s);
  CHECK(answers.size() == 5);
  CHECK(st().calls_by_client.empty());
  CHECK(st().idle.size() == 4);
  // Its calls returned: the postoffice may call again.
  probe_from("dead", {io_fault{}});
  sched.run();
  CHECK(answers.back() == "dead: ok");
}

TEST_CASE_FIXTURE(pool_fixture, "a call unanswered after hang_limit fails, and its worker stays taken until it returns") {
  share_pool_options options;
  options.workers = 1;
  options.max_workers = 1;
  options.hang_limit = 300s;
  start(options);
  probe_from("dead", {hang_for(600'000)});
  sched.run();
  wait(299s);
  CHECK(answers.empty());
  wait(1s);
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].rfind("dead: error ", 0) == 0);
  CHECK(answers[0].find("request_timeout") != std::string::npos);
  // The worker still hangs: the next call waits for it.
  CHECK(st().idle.empty());
  probe_from("live", {io_fault{}});
  sched.run();
  CHECK(answers.size() == 1);
  CHECK(st().waiting.size() == 1);
  wait(300s);
  REQUIRE(answers.size() == 2);
  CHECK(answers[1] == "live: ok");
  CHECK(st().idle.size() == 1);
}

TEST_CASE_FIXTURE(pool_fixture, "a slow share answers after the delay, as a healthy one would") {
  start({});
  probe_from("sales", {slow_by(5'000)});
  deliver_from("sales-po", slow_by(5'000));
  sched.run();
  wait(4999ms);
  CHECK(answers.empty());
  CHECK(files_in(sales / "bob" / "new") == 0);
  wait(1ms);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0] == "sales: ok");
  CHECK(answers[1].rfind("sales-po: delivered 2.0.0", 0) == 0);
  CHECK(files_in(sales / "bob" / "new") == 1);
}

TEST_CASE_FIXTURE(pool_fixture, "a hung delivery answers 4.3.0 after the delay and writes nothing") {
  share_pool_options options;
  options.hang_limit = 900s;
  start(options);
  deliver_from("sales", hang_for(120'000));
  sched.run();
  wait(120s);
  CHECK(answers
        == std::vector<std::string>{
          "sales: temporary 4.3.0 share call hung for 120s (fault injection: hang)"});
  CHECK(files_in(sales / "bob" / "new") == 0);
  CHECK(files_in(sales / "bob" / "tmp") == 0);
}

TEST_CASE_FIXTURE(pool_fixture, "a dropped transfer is cut off in the middle: 4.4.2, nothing in new/") {
  start({});
  deliver_from("sales", io_fault{0, false, true});
  sched.run();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].rfind("sales: temporary 4.4.2 mailbox bob: write cut off after ", 0) == 0);
  CHECK(answers[0].find("(fault injection: drop)") != std::string::npos);
  CHECK(files_in(sales / "bob" / "new") == 0);
  CHECK(st().idle.size() == st().workers.size());
}

TEST_CASE_FIXTURE(pool_fixture, "a burst of quick calls is queued for the workers there are, none started") {
  share_pool_options options;
  options.workers = 2;
  start(options);
  for (int i = 0; i < 50; ++i)
    probe_from("po" + std::to_string(i), {io_fault{}});
  sched.run();
  CHECK(answers.size() == 50);
  CHECK(st().workers.size() == 2);
  CHECK(st().idle.size() == 2);
  CHECK(st().busy.empty());
}

TEST_CASE_FIXTURE(pool_fixture, "workers beyond `workers` end once idle for idle_limit") {
  share_pool_options options;
  options.workers = 1;
  options.max_workers = 3;
  options.idle_limit = 60s;
  start(options);
  probe_from("a", {slow_by(10'000)});
  probe_from("b", {slow_by(10'000)});
  probe_from("c", {slow_by(10'000)});
  sched.run();
  wait(options.grow_after);
  CHECK(st().workers.size() == 2); // for b
  wait(options.grow_after);
  CHECK(st().workers.size() == 3); // b's is stuck too: for c
  wait(10s);
  CHECK(answers.size() == 3);
  CHECK(st().idle.size() == 3);
  wait(59s);
  CHECK(st().workers.size() == 3);
  wait(1s);
  CHECK(st().workers.size() == 1); // the two started for b and c ended
  CHECK(st().idle.size() == 1);
  probe_from("d", {io_fault{}});
  sched.run();
  CHECK(answers.back() == "d: ok");
}
