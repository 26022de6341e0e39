// NAME
//   cluster_fixture -- what the cluster actor tests share: a second node
//   next to the supervisor fixture's, node configs, lineups, etcd rounds.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "actors/cluster.hpp"
#include "runtime/store/queue_db.hpp"
#include "tests/actors/supervisor_fixture.hpp"

namespace postconn::test::cluster_fixture {

using namespace std::chrono_literals;

/// Node "b" next to the fixture's node "a": its own queue, supervisor,
/// fake postoffices and cluster actor, on the same deterministic scheduler.
struct second_node {
  second_node(supervisor_fixture& f, const std::filesystem::path& file,
              const retry_policy& policy)
    : f(f), db(queue_db::open(file)) {
    store = spawn_store(f.sys, db, store_options{}, false);
    auto cfg = test::two_postoffices(policy);
    ndr = std::make_shared<const ndr_settings>(
      ndr_settings{cfg.server.hostname, routing_table{cfg}});
    supervisor_options options;
    options.origin = {t0, {}};
    options.attempt_timeout = 30s;
    options.fallback_retry = policy;
    options.node = "b";
    options.await_lineup = true;
    sup = f.sys.spawn(supervisor, std::vector<postoffice_slot>{},
                      std::vector<ledger_entry>{}, store, ndr, options);
    caf::anon_send(store, watch_atom::value, store_listener_actor{sup});
  }

  ~second_node() {
    for (const auto& actor : {caf::actor_cast<caf::actor>(sup), caf::actor_cast<caf::actor>(store),
                              caf::actor_cast<caf::actor>(dead), caf::actor_cast<caf::actor>(live)})
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }

  /// Starts a fresh fake for `name` each time it is asked.
  postoffice_factory fake(postoffice_actor& slot) {
    return [this, &slot] {
      slot = f.sys.spawn(test::fake_postoffice);
      return slot;
    };
  }

  supervisor_fixture& f;
  std::shared_ptr<queue_db> db;
  store_actor store;
  supervisor_actor sup;
  std::shared_ptr<const ndr_settings> ndr;
  postoffice_actor dead;
  postoffice_actor live;
};

inline cluster_config node_config(const std::string& node) {
  cluster_config cfg;
  cfg.node = node;
  cfg.listen = "127.0.0.1:" + std::string{node == "a" ? "4200" : "4201"};
  return cfg;
}

inline cluster_postoffices owned_by(const std::string& owner, const retry_policy& policy,
                             postoffice_factory dead, postoffice_factory live,
                             std::shared_ptr<const ndr_settings> ndr) {
  cluster_postoffices postoffices;
  postoffices.all = {{{"dead", policy, std::move(dead)}, {"live", policy, std::move(live)}},
                     policy, std::move(ndr)};
  postoffices.owners = {{"dead", owner}, {"live", owner}};
  return postoffices;
}

/// A round of the lease actor that went through, asked at `asked_at`.
inline membership_round round_at(caf::actor_clock::time_point asked_at,
                          std::map<std::string, std::string> members) {
  membership_round round;
  round.ok = true;
  round.asked_at = asked_at;
  round.ttl = 3s;
  round.lease = 7;
  round.members = std::move(members);
  return round;
}

inline ledger_entry delivery_of(queue_db& db, const std::string& id) {
  auto entries = db.deliveries_of(id);
  REQUIRE(entries.size() == 1);
  return entries.front();
}

} // namespace postconn::test::cluster_fixture
