// Tests actors/cluster_replicas.cpp on the deterministic scheduler, with two
// nodes' real stores (cluster.replicas = 2, membership from etcd rounds the
// test plays): the 250 waits for the replica on the other node, which
// follows the delivery's counts; forgotten, the node's deliveries are
// adopted by the holder with their counts, once; a node without a live
// peer refuses mail and queues nothing.
#include <doctest/doctest.h>

#include "actors/cluster.hpp"
#include "tests/actors/cluster_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using test::supervisor_fixture;
using test::t0;
using namespace test::cluster_fixture;

cluster_config replicated(const std::string& node) {
  auto cfg = node_config(node);
  cfg.etcd = {"127.0.0.1:2379"};
  cfg.lease_ttl = 3s;
  cfg.replicas = 2;
  return cfg;
}

struct fake_lease_state {
  std::vector<std::string> forgotten;

  static inline const char* name = "fake_lease";
};

/// Plays the lease actor: etcd records every adoption it is asked to.
cluster_lease_actor::behavior_type
fake_lease(cluster_lease_actor::stateful_pointer<fake_lease_state> self) {
  return {
    [=](forget_atom, const std::string& node) {
      self->state.forgotten.push_back(node);
      return true;
    },
    [=](delete_atom, const std::string&) {},
    [=](tick_atom) {},
  };
}

incoming_message message_to(const std::string& postoffice) {
  return {"alice@example.org", "Subject: hi\r\n\r\nhello\r\n", t0,
          {{postoffice, {"bob@" + postoffice + ".example.test"}}}};
}

} // namespace

TEST_CASE("replicas = 2: the 250 waits for the replica, and its holder adopts the delivery") {
  test::temp_dir dir;
  retry_policy policy;
  policy.max_open_retries = 10;
  supervisor_fixture f{dir / "a.db", policy};
  second_node b{f, dir / "b.db", policy};
  auto cluster_a = f.sys.spawn(cluster, replicated("a"), f.store, f.sup,
                               owned_by("a", policy, f.restartable(f.dead),
                                        f.restartable(f.live), nullptr));
  auto cluster_b = f.sys.spawn(cluster, replicated("b"), b.store, b.sup,
                               owned_by("a", policy, b.fake(b.dead), b.fake(b.live), b.ndr));
  auto lease_b = f.sys.spawn(fake_lease);
  caf::anon_send(cluster_b, watch_atom::value, lease_b);
  f.sched.run();
  std::map<std::string, std::string> both{{"a", "127.0.0.1:4200"}, {"b", "127.0.0.1:4201"}};
  auto rounds = [&](const std::map<std::string, std::string>& members, bool registered) {
    for (const auto& node : {cluster_a, cluster_b}) {
      auto round = round_at(f.sched.clock().now(), members);
      round.registered = registered;
      round.registered_at = f.sched.clock().now();
      caf::anon_send(node, report_atom::value, std::move(round));
    }
    f.sched.run();
  };
  // a reaches b (as through the middleman) before the first rounds name
  // the members, so neither dials the other.
  caf::anon_send(cluster_a, connected_atom::value, std::string{"127.0.0.1:4201"},
                 caf::actor_cast<caf::strong_actor_ptr>(cluster_b));
  f.sched.run();
  rounds(both, true);
  for (int second = 0; second < 3; ++second) { // the join wait: a ttl
    f.advance(1s);
    rounds(both, false);
  }
  REQUIRE(f.state_of<cluster_state>(cluster_a).live_nodes() == std::vector<std::string>{"a", "b"});
  // Accepted at a: the receipt names b as the replica's holder, and b's
  // queue knows nothing was adopted from a yet.
  auto accepted = f.self->request(cluster_a, caf::infinite, accept_atom::value,
                                  message_to("dead"));
  f.sched.run();
  accept_receipt receipt;
  accepted.receive([&](accept_receipt& r) { receipt = std::move(r); },
                   [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  REQUIRE(receipt.deliveries.size() == 1);
  CHECK(receipt.deliveries[0].replica_node == "b");
  CHECK(delivery_of(*f.db, receipt.id).replica_node == "b");
  // "dead" fails its opens at a: each failure goes to b's replica.
  for (int second = 0; second < 4; ++second) {
    f.advance(1s);
    rounds(both, false);
  }
  auto at_a = delivery_of(*f.db, receipt.id);
  REQUIRE(at_a.open_retries >= 1);
  // a is gone from etcd; forgotten, b adopts the delivery with a's counts.
  std::map<std::string, std::string> only_b{{"b", "127.0.0.1:4201"}};
  rounds(only_b, false);
  auto forgotten = f.self->request(cluster_b, caf::infinite, forget_atom::value,
                                   std::string{"a"}, true);
  f.sched.run();
  std::uint32_t adopted = 0;
  forgotten.receive([&](std::uint32_t n) { adopted = n; },
                    [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  CHECK(adopted == 1);
  CHECK(f.state_of<fake_lease_state>(lease_b).forgotten == std::vector<std::string>{"a"});
  auto moved = b.db->unfinished_deliveries();
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].origin == "a." + receipt.id + "." + std::to_string(at_a.delivery_id));
  CHECK(moved[0].open_retries == at_a.open_retries);
  CHECK(moved[0].attempts == at_a.attempts);
  CHECK(b.db->adopted_keys("a") == std::vector<std::string>{moved[0].origin});
  // Forgotten again: nothing more to adopt.
  auto again = f.self->request(cluster_b, caf::infinite, forget_atom::value, std::string{"a"},
                               false);
  f.sched.run();
  again.receive([&](std::uint32_t n) { CHECK(n == 0); },
                [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  for (const auto& actor : {caf::actor_cast<caf::actor>(cluster_a),
                            caf::actor_cast<caf::actor>(cluster_b),
                            caf::actor_cast<caf::actor>(lease_b)})
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("replicas = 2: a node without a live peer refuses mail and queues nothing") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "a.db", retry_policy{}};
  auto node = f.sys.spawn(cluster, replicated("a"), f.store, f.sup,
                          owned_by("a", retry_policy{}, f.restartable(f.dead),
                                   f.restartable(f.live), nullptr));
  f.sched.run();
  auto accepted = f.self->request(node, caf::infinite, accept_atom::value, message_to("live"));
  f.sched.run();
  accepted.receive([&](const accept_receipt&) { FAIL("accepted without a replica"); },
                   [&](const caf::error& err) {
                     CHECK(is_store_error(err, store_errc::no_replica));
                   });
  CHECK(f.db->unfinished_deliveries().empty());
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
}
