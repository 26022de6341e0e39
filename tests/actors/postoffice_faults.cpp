// Tests the fault-injecting transport (runtime/delivery/fault_injector.hpp, applied by
// actors/postoffice.cpp and the share workers) with the real supervisor,
// store, NDR generator, postoffice actors and share pool on the
// deterministic scheduler, writing real maildirs in simulated time. Each
// fault mode must produce what the retry contract predicts: failed opens
// count against max_open_retries, temporary transfer failures against
// max_transfer_retries, refused recipients bounce at once, and a fault that
// ends lets the mail through exactly once.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "actors/postoffice.hpp"
#include "actors/share_pool.hpp"
#include "tests/actors/supervisor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The postoffice actor for `cfg`, as the server starts it.
postoffice_actor spawn_postoffice(caf::actor_system& sys, const postoffice_config& cfg,
                                  const share_pool_actor& pool, const store_actor& store) {
  return sys.spawn(postoffice, std::make_shared<const postoffice_config>(cfg), pool, store,
                   std::make_shared<const std::string>("connector.example.test"));
}

using test::t0;

/// Retry limits small enough to reach: 3 failed opens 600 s apart, 2
/// transfer failures 120 s apart, no lifetime limit.
retry_policy small_limits() {
  retry_policy retry;
  retry.max_open_retries = 3;
  retry.open_interval = 600s;
  retry.max_transfer_retries = 2;
  retry.transfer_interval = 120s;
  retry.max_lifetime = 0s;
  return retry;
}

void make_postoffice(const fs::path& root, std::initializer_list<const char*> mailboxes) {
  for (const auto* mailbox : mailboxes)
    for (const auto* sub : {"tmp", "new", "cur"})
      fs::create_directories(root / mailbox / sub);
  std::ofstream{root / ".postoffice"};
}

std::vector<fs::path> files_in(const fs::path& folder) {
  return {fs::directory_iterator{folder}, fs::directory_iterator{}};
}

std::string read_file(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// Holds the directory the queue fixture's database lives in.
struct fault_dirs {
  test::temp_dir dir;
};

/// A server with a maildir postoffice "sales" (mailboxes bob and carol)
/// under `fault`, and a healthy "support" (mailbox ann, the sender, where
/// NDRs land).
struct fault_fixture : fault_dirs, test::queue_fixture {
  explicit fault_fixture(fault_config fault) : queue_fixture(dir / "queue.db") {
    make_postoffice(sales_root, {"bob", "carol"});
    make_postoffice(support_root, {"ann"});
    share_pool_options pool_options;
    pool_options.workers = 2;
    pool_options.detached = false;
    pool = sys.spawn(share_pool, pool_options);
    config cfg;
    cfg.server.hostname = "connector.example.test";
    cfg.retry = small_limits();
    postoffice_config sales;
    sales.name = "sales";
    sales.domains = {"sales.example.test"};
    sales.path = sales_root;
    sales.retry = cfg.retry;
    sales.fault = std::move(fault);
    postoffice_config support = sales;
    support.name = "support";
    support.domains = {"support.example.test"};
    support.path = support_root;
    support.fault = {};
    cfg.postoffices = {sales, support};
    auto ndr = std::make_shared<const ndr_settings>(
      ndr_settings{cfg.server.hostname, routing_table{cfg}});
    supervisor_options options;
    options.origin = {t0, {}};
    options.attempt_timeout = 120s;
    options.fallback_retry = cfg.retry;
    sup = sys.spawn(supervisor,
                    std::vector<postoffice_slot>{{"sales", cfg.retry, start(sales, sales_po), {}, false, {}},
                                                 {"support", cfg.retry, start(support, support_po), {}, false, {}}},
                    db->unfinished_deliveries(), store, ndr, options);
    caf::anon_send(store, watch_atom::value, store_listener_actor{sup});
    sched.run();
  }

  ~fault_fixture() {
    for (const auto& actor : {caf::actor_cast<caf::actor>(sales_po),
                              caf::actor_cast<caf::actor>(support_po),
                              caf::actor_cast<caf::actor>(pool)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }

  /// Starts the real postoffice actor for `cfg`, remembered in `handle`.
  postoffice_factory start(postoffice_config cfg, postoffice_actor& handle) {
    return [this, cfg, &handle] {
      handle = spawn_postoffice(sys, cfg, pool, store);
      return handle;
    };
  }

  /// Mail from ann@support to `recipients` at sales, at the current time.
  std::string send_to_sales(std::vector<std::string> recipients) {
    auto now = t0 + std::chrono::duration_cast<std::chrono::seconds>(
                      sched.clock().current_time.time_since_epoch())
                      .count();
    return submit({{"sales", std::move(recipients)}}, now, "ann@support.example.test");
  }

  std::vector<fs::path> mailbox(const char* name, const char* sub = "new") {
    return files_in(sales_root / name / sub);
  }

  /// The mail delivered to ann (NDRs included), oldest name first.
  std::vector<std::string> ann_mailbox() {
    auto files = files_in(support_root / "ann" / "new");
    std::sort(files.begin(), files.end());
    std::vector<std::string> texts;
    for (const auto& file : files)
      texts.push_back(read_file(file));
    return texts;
  }

  /// The last probe problem of "sales", "" when it was reachable.
  std::string probe_problem() {
    return state_of<postoffice_state>(sales_po).problem;
  }

  /// Replaces the fault of "sales" at run time.
  void inject(fault_config fault) {
    caf::anon_send(sales_po, fault_atom::value, std::move(fault));
    sched.run();
  }

  fs::path sales_root = dir / "sales";
  fs::path support_root = dir / "support";
  share_pool_actor pool;
  postoffice_actor sales_po;
  postoffice_actor support_po;
};

fault_config with_mode(fault_mode mode) {
  fault_config fault;
  fault.mode = mode;
  return fault;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("fault unreachable: every open fails and the 4th failure, 3 x 600 s after the first, bounces") {
  fault_fixture f{with_mode(fault_mode::unreachable)};
  f.send_to_sales({"bob@sales.example.test"});
  f.advance(1799s);
  CHECK(f.ndrs().empty());
  f.advance(2s);
  REQUIRE(f.ndrs().size() == 1);
  f.advance(10s);
  auto received = f.ann_mailbox();
  REQUIRE(received.size() == 1);
  CHECK(contains(received[0], "Status: 5.4.1"));
  CHECK(contains(received[0], "unreachable (fault injection)"));
  CHECK(f.mailbox("bob").empty());
}

TEST_CASE("fault hang: the probe timeout fails each open, and the other postoffice keeps delivering") {
  auto fault = with_mode(fault_mode::hang);
  fault.latency = 2h;
  fault_fixture f{fault};
  auto id = f.send_to_sales({"bob@sales.example.test"});
  f.submit({{"support", {"ann@support.example.test"}}}, t0, "carol@sales.example.test");
  f.advance(5s);
  // The share call to sales is still hung; support was not held up by it.
  CHECK(f.ann_mailbox().size() == 1);
  f.advance(20s);
  auto entries = f.db->deliveries_of(id);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].open_retries == 1);
  CHECK(contains(entries[0].last_error_text, "probe timed out after 10s"));
  f.advance(1700s);
  CHECK(f.ndrs().empty());
  f.advance(200s);
  REQUIRE(f.ndrs().size() == 1);
  // Later mail to support still flows while calls to sales hang.
  f.submit({{"support", {"ann@support.example.test"}}}, t0 + 1925, "carol@sales.example.test");
  f.advance(5s);
  CHECK(f.ann_mailbox().size() == 3);
  CHECK(f.mailbox("bob").empty());
  // Three hours of idle probes, each hanging for two: sales holds at most
  // calls_per_postoffice workers and is told "share busy" beyond that.
  f.advance(3h);
  const auto& pool = f.state_of<share_pool_state>(f.pool);
  CHECK(pool.workers.size() <= 2 + share_pool_options{}.calls_per_postoffice + 1);
  CHECK(contains(f.probe_problem(), "share busy: 6 earlier calls have not returned"));
}

TEST_CASE("the supervisor reports a postoffice down as soon as it starts, though idle probes are 600 s apart") {
  fault_fixture f{with_mode(fault_mode::unreachable)};
  std::vector<postoffice_report> reports;
  auto asked = f.self->request(f.sup, caf::infinite, postoffice_atom::value);
  f.sched.run();
  asked.receive([&](std::vector<postoffice_report>& answer) { reports = std::move(answer); },
                [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  // The simulated clock has not moved since the start.
  CHECK(f.sched.clock().current_time.time_since_epoch() < caf::timespan{1s});
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].name == "sales");
  CHECK(reports[0].state == reachability::down);
  CHECK(contains(reports[0].problem, "unreachable (fault injection)"));
  CHECK(reports[1].name == "support");
  CHECK(reports[1].state == reachability::up);
}

TEST_CASE("fault tempfail: transfers fail with 451 and the 3rd failure, 2 x 120 s after the first, bounces") {
  fault_fixture f{with_mode(fault_mode::tempfail)};
  f.send_to_sales({"bob@sales.example.test"});
  f.advance(239s);
  CHECK(f.ndrs().empty());
  f.advance(2s);
  REQUIRE(f.ndrs().size() == 1);
  CHECK(contains(f.ndrs()[0], "smtp; 451 4.3.0 transfer failed (fault injection: tempfail)"));
  CHECK(f.mailbox("bob").empty());
}

TEST_CASE("fault permfail: the chosen recipient bounces at once with 5.1.1, the other gets the mail") {
  auto fault = with_mode(fault_mode::permfail);
  fault.recipients = {"bob@sales.example.test"};
  fault_fixture f{fault};
  f.send_to_sales({"bob@sales.example.test", "carol@sales.example.test"});
  f.advance(1s);
  REQUIRE(f.ndrs().size() == 1);
  auto ndr = f.ndrs()[0];
  CHECK(contains(ndr, "Final-Recipient: rfc822; bob@sales.example.test"));
  CHECK_FALSE(contains(ndr, "Final-Recipient: rfc822; carol@sales.example.test"));
  CHECK(contains(ndr, "Status: 5.1.1"));
  CHECK(f.mailbox("carol").size() == 1);
  CHECK(f.mailbox("bob").empty());
}

TEST_CASE("fault slow: a share slower than the probe timeout fails opens, a slightly slow one delivers late") {
  SUBCASE("4 s per call, probe timeout 10 s") {
    auto fault = with_mode(fault_mode::slow);
    fault.latency = 4s;
    fault_fixture f{fault};
    f.send_to_sales({"bob@sales.example.test"});
    f.advance(7s);
    CHECK(f.mailbox("bob").empty());
    f.advance(2s);
    CHECK(f.mailbox("bob").size() == 1);
    CHECK(f.ndrs().empty());
  }
  SUBCASE("20 s per call, probe timeout 10 s") {
    auto fault = with_mode(fault_mode::slow);
    fault.latency = 20s;
    fault_fixture f{fault};
    f.send_to_sales({"bob@sales.example.test"});
    f.advance(1700s);
    CHECK(f.ndrs().empty());
    f.advance(300s);
    REQUIRE(f.ndrs().size() == 1);
    CHECK(contains(f.ndrs()[0], "probe timed out after 10s"));
    CHECK(f.mailbox("bob").empty());
  }
}

TEST_CASE("fault flap: mail that arrives while the postoffice is down is delivered in the next up window") {
  auto fault = with_mode(fault_mode::flap);
  fault.up = 10min;
  fault.down = 15min;
  fault_fixture f{fault};
  f.advance(11min);
  f.send_to_sales({"bob@sales.example.test"});
  f.advance(1s);
  CHECK(f.mailbox("bob").empty());
  // Retried every 600 s: at 21 min it is still down, at 31 min up again.
  f.advance(10min);
  CHECK(f.mailbox("bob").empty());
  f.advance(10min);
  CHECK(f.mailbox("bob").size() == 1);
  CHECK(f.ndrs().empty());
}

TEST_CASE("fault drop: each write is cut off in tmp/, nothing reaches new/, and the 3rd failure bounces") {
  fault_fixture f{with_mode(fault_mode::drop)};
  f.send_to_sales({"bob@sales.example.test"});
  f.advance(1s);
  CHECK(f.mailbox("bob").empty());
  auto cut = f.mailbox("bob", "tmp");
  REQUIRE(cut.size() == 1);
  CHECK(read_file(cut[0]).size() > 0);
  f.advance(240s);
  REQUIRE(f.ndrs().size() == 1);
  CHECK(contains(f.ndrs()[0], "write cut off"));
  CHECK(f.mailbox("bob").empty());
}

TEST_CASE("fault drop lifted at run time: the retry replaces the cut-off file and delivers once") {
  fault_fixture f{with_mode(fault_mode::drop)};
  f.send_to_sales({"bob@sales.example.test"});
  f.advance(60s);
  CHECK(f.mailbox("bob", "tmp").size() == 1);
  f.inject({});
  f.advance(61s);
  CHECK(f.mailbox("bob").size() == 1);
  CHECK(f.mailbox("bob", "tmp").empty());
  f.advance(1h);
  CHECK(f.mailbox("bob").size() == 1);
  CHECK(f.ndrs().empty());
}

TEST_CASE("fault set at run time: an outage counts opens, and mail flows once it is lifted") {
  fault_fixture f{{}};
  f.inject(with_mode(fault_mode::unreachable));
  auto id = f.send_to_sales({"bob@sales.example.test"});
  f.advance(601s);
  auto entries = f.db->deliveries_of(id);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].open_retries == 2);
  f.inject({});
  f.advance(600s);
  CHECK(f.mailbox("bob").size() == 1);
  CHECK(f.ndrs().empty());
}

TEST_CASE("fault probability: with a seed, some opens fail and each message arrives once or bounces") {
  auto fault = with_mode(fault_mode::unreachable);
  fault.probability = 0.5;
  fault.seed = 3;
  fault_fixture f{fault};
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(f.send_to_sales({"bob@sales.example.test"}));
    f.advance(700s);
  }
  f.advance(2h);
  auto delivered = f.mailbox("bob").size();
  CHECK(delivered + f.ndrs().size() == 20);
  CHECK(delivered >= 10);
  int retried = 0;
  for (const auto& id : ids)
    for (const auto& entry : f.db->deliveries_of(id))
      retried += entry.open_retries > 0 ? 1 : 0;
  CHECK(retried > 0);
}
