// Tests actors/supervisor.cpp with retry policies as the config resolves them
// per transport: an smtp postoffice answering 4xx to every attempt backs off
// (5 min doubling up to 4000 s) and is still trying hours later, until
// max_lifetime bounces it after 5 days, while a maildir postoffice failing
// the same way bounces by the seed's limits (2 retries, 120 s apart). The
// real store, supervisor and NDR generators, fake postoffices, simulated time.
#include <doctest/doctest.h>

#include "runtime/config/config.hpp"
#include "tests/actors/supervisor_fixture.hpp"
#include "tests/runtime/config/config_loading.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using test::fake_postoffice_state;
using test::po_mode;
using test::t0;

/// No [retry] at all: every postoffice has its transport's defaults.
const std::string transports_config = R"(
[server]
hostname = "connector.example.test"

[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:25"

[[postoffice]]
name = "share"
domains = ["share.example.test"]
transport = "maildir"
path = "share"

[[postoffice]]
name = "live"
domains = ["live.example.test"]
transport = "maildir"
path = "live"
)";

/// The supervisor over the config's postoffices, each a fake: "relay" and
/// "share" answer every recipient with a 4xx, "live" (the senders') delivers.
struct transports_fixture : test::queue_fixture {
  explicit transports_fixture(const std::filesystem::path& file)
    : queue_fixture(file), cfg(test::loaded(transports_config)) {
    std::vector<postoffice_slot> slots;
    for (const auto& po : cfg.postoffices) {
      auto fake = sys.spawn(test::fake_postoffice);
      fakes.push_back(fake);
      slots.push_back({po.name, po.retry, [fake] { return fake; }, {}, false, {}});
    }
    sched.run();
    for (auto i : {0, 1})
      state_of<fake_postoffice_state>(fakes[i]).mode = po_mode::tempfail;
    state_of<fake_postoffice_state>(fakes[2]).mode = po_mode::up;
    auto ndr = std::make_shared<const ndr_settings>(
      ndr_settings{cfg.server.hostname, routing_table{cfg}});
    supervisor_options options;
    options.origin = {t0, options.origin.fraction};
    options.attempt_timeout = 30s;
    options.fallback_retry = cfg.retry;
    sup = sys.spawn(supervisor, slots, db->unfinished_deliveries(), store, ndr, options);
    caf::anon_send(store, watch_atom::value, store_listener_actor{sup});
    sched.run();
  }

  ~transports_fixture() {
    for (const auto& fake : fakes)
      caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
  }

  int attempts_at(std::size_t po) {
    return state_of<fake_postoffice_state>(fakes[po]).attempts;
  }

  /// The one delivery of message `id`.
  ledger_entry delivery(const std::string& id) {
    auto entries = db->deliveries_of(id);
    REQUIRE(entries.size() == 1);
    return entries[0];
  }

  config cfg;
  std::vector<postoffice_actor> fakes;
};

} // namespace

TEST_CASE("an smtp postoffice answering 4xx to every attempt backs off for days, a maildir one bounces by the seed's limits") {
  test::temp_dir dir;
  transports_fixture f{dir / "queue.db"};
  REQUIRE(f.cfg.postoffices[0].retry == default_retry(transport_kind::smtp));
  REQUIRE(f.cfg.postoffices[1].retry == retry_policy{});
  auto relayed = f.submit({{"relay", {"bob@relay.example.test"}}});
  auto shared = f.submit({{"share", {"carol@share.example.test"}}});
  CHECK(f.attempts_at(0) == 1);
  CHECK(f.attempts_at(1) == 1);

  // The maildir postoffice: retries 120 s apart, the third failure bounces.
  f.advance(239s);
  CHECK(f.attempts_at(1) == 2);
  CHECK(f.ndrs().empty());
  f.advance(1s);
  CHECK(f.attempts_at(1) == 3);
  CHECK(f.delivery(shared).state == delivery_state::bounced);
  REQUIRE(f.ndrs().size() == 1);
  CHECK(f.ndrs()[0].find("carol@share.example.test") != std::string::npos);

  // The smtp postoffice: attempt k comes 5 min x 2^(k-2) after the one
  // before, at most 4000 s: at 0, 300, 900, 2100, 4500, 8500, 12500, ...
  CHECK(f.attempts_at(0) == 1);
  const std::int64_t attempt_at[] = {300, 900, 2100, 4500, 8500, 12500, 16500, 20500};
  std::int64_t now = 240;
  for (std::size_t k = 0; k < std::size(attempt_at); ++k) {
    CAPTURE(attempt_at[k]);
    f.advance(std::chrono::seconds{attempt_at[k] - 1 - now});
    CHECK(f.attempts_at(0) == static_cast<int>(k) + 1);
    f.advance(1s);
    CHECK(f.attempts_at(0) == static_cast<int>(k) + 2);
    now = attempt_at[k];
  }
  // Six hours on: nine attempts, still deferred, no NDR for it.
  f.advance(std::chrono::seconds{6 * 3600 - now}, 60s);
  auto relay = f.delivery(relayed);
  CHECK(relay.state == delivery_state::deferred);
  CHECK(relay.transfer_retries == 9);
  CHECK(relay.next_attempt_at == t0 + 24500);
  CHECK(f.ndrs().size() == 1);

  // Its lifetime (5 days) ends it, 111 failed attempts in (of 120 allowed).
  f.advance(5 * 24h - 6h - 1s, 600s);
  CHECK(f.delivery(relayed).state == delivery_state::deferred);
  CHECK(f.ndrs().size() == 1);
  f.advance(1s);
  relay = f.delivery(relayed);
  CHECK(relay.state == delivery_state::bounced);
  CHECK(relay.transfer_retries == 111);
  auto ndrs = f.ndrs();
  REQUIRE(ndrs.size() == 2);
  CHECK(ndrs[1].find("Final-Recipient: rfc822; bob@relay.example.test") != std::string::npos);
  CHECK(ndrs[1].find("Status: 5.2.1") != std::string::npos);
  CHECK(ndrs[1].find("delivery time expired") != std::string::npos);
}
