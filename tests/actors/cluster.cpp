// Tests actors/cluster.cpp and the supervisor's handoff on the deterministic
// scheduler: which postoffices a lineup runs, a delivery handed to another
// node with its counts and finished only on the owner's reply, a failed
// handoff that counts nothing, two nodes joining, a member lost and back,
// and the retry contract across an ownership move (the NDR at the same count
// and time).
#include <doctest/doctest.h>

#include "actors/cluster.hpp"
#include "tests/actors/cluster_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using test::fake_postoffice_state;
using test::supervisor_fixture;
using test::t0;
using namespace test::cluster_fixture;

struct fake_handoff_state {
  /// Whether the owner commits what it is handed.
  bool owner_commits = true;
  std::vector<ledger_entry> handed;

  static inline const char* name = "fake_handoff";
};

/// Plays the cluster actor for the supervisor: records each delivery and
/// answers as an owner named "b" that committed it, or not.
handoff_actor::behavior_type
fake_handoff(handoff_actor::stateful_pointer<fake_handoff_state> self) {
  return {
    [=](handoff_atom, const ledger_entry& entry) -> caf::result<std::string> {
      self->state.handed.push_back(entry);
      if (!self->state.owner_commits)
        return caf::make_error(caf::sec::request_timeout);
      return std::string{"b"};
    },
    [=](replicate_atom, const std::vector<ledger_entry>&) {},
  };
}


std::vector<attempt_record> attempts_with(queue_db& db, std::int64_t delivery_id,
                                          const std::string& outcome) {
  std::vector<attempt_record> found;
  for (auto& attempt : db.attempts_of(delivery_id))
    if (attempt.outcome == outcome)
      found.push_back(attempt);
  return found;
}

/// Only "live" runs here; "dead" is owned by another node.
postoffice_lineup dead_elsewhere(const retry_policy& policy, handoff_actor courier) {
  postoffice_lineup lineup{{{"live", policy, {}}}, policy, nullptr};
  lineup.elsewhere = {{"dead", policy}};
  lineup.handoff = std::move(courier);
  return lineup;
}

} // namespace

TEST_CASE("a lineup runs the postoffices this node owns and hands over the others") {
  auto starts = 0;
  postoffice_factory start = [&starts] {
    ++starts;
    return postoffice_actor{};
  };
  retry_policy strict;
  strict.max_open_retries = 7;
  cluster_postoffices postoffices;
  postoffices.all.postoffices = {{"sales", {}, start}, {"support", strict, start},
                                 {"billing", {}, start}};
  std::map<std::string, std::string> owners{
    {"sales", "a"}, {"support", "b"}, {"billing", "a"}};
  auto lineup = lineup_for(postoffices, owners, "a", {});
  REQUIRE(lineup.postoffices.size() == 2);
  CHECK(lineup.postoffices[0].name == "sales");
  CHECK(lineup.postoffices[1].name == "billing");
  CHECK(lineup.postoffices[0].start);
  REQUIRE(lineup.elsewhere.count("support"));
  CHECK(lineup.elsewhere.at("support").max_open_retries == 7);
  // Running and unchanged: kept as it is; changed: started anew.
  auto again = lineup_for(postoffices, owners, "a", {"sales", "billing"});
  CHECK_FALSE(again.postoffices[0].start);
  postoffices.changed = {"sales"};
  CHECK(lineup_for(postoffices, owners, "a", {"sales", "billing"}).postoffices[0].start);
  CHECK(starts == 0);
}

TEST_CASE("a delivery another node owns is handed over with its counts, then finished here") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(1200s, 600s);
  REQUIRE(delivery_of(*f.db, id).open_retries == 3);
  auto courier = f.sys.spawn(fake_handoff);
  caf::anon_send(f.sup, reload_atom::value, dead_elsewhere(retry_policy{}, courier));
  f.sched.run();
  auto& handed = f.state_of<fake_handoff_state>(courier).handed;
  REQUIRE(handed.size() == 1);
  CHECK(handed[0].message_id == id);
  CHECK(handed[0].open_retries == 3);
  CHECK(handed[0].next_attempt_at == t0 + 1800);
  auto entry = delivery_of(*f.db, id);
  CHECK(entry.state == delivery_state::delivered);
  auto handoffs = attempts_with(*f.db, entry.delivery_id, "handed_off");
  REQUIRE(handoffs.size() == 1);
  CHECK(handoffs[0].text == "to node b");
  f.advance(3600s, 600s);
  CHECK(handed.size() == 1);
  CHECK(f.db->attempts_of(entry.delivery_id).size() == 4); // 3 failed opens, the handoff
  caf::anon_send_exit(courier, caf::exit_reason::user_shutdown);
}

TEST_CASE("a failed handoff counts no retry and is tried again after handoff_retry") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto courier = f.sys.spawn(fake_handoff);
  f.sched.run();
  f.state_of<fake_handoff_state>(courier).owner_commits = false;
  caf::anon_send(f.sup, reload_atom::value, dead_elsewhere(retry_policy{}, courier));
  f.sched.run();
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  auto& handed = f.state_of<fake_handoff_state>(courier).handed;
  CHECK(handed.size() == 1);
  f.advance(4s);
  CHECK(handed.size() == 1);
  f.advance(1s);
  CHECK(handed.size() == 2);
  auto entry = delivery_of(*f.db, id);
  CHECK(entry.state == delivery_state::queued);
  CHECK(entry.open_retries == 0);
  CHECK(entry.transfer_retries == 0);
  CHECK(f.db->attempts_of(entry.delivery_id).empty());
  f.state_of<fake_handoff_state>(courier).owner_commits = true;
  f.advance(5s);
  auto done = delivery_of(*f.db, id);
  CHECK(done.state == delivery_state::delivered);
  CHECK(done.open_retries == 0);
  CHECK(f.db->attempts_of(done.delivery_id).size() == 1); // the handoff alone
  caf::anon_send_exit(courier, caf::exit_reason::user_shutdown);
}


TEST_CASE("the retry contract holds across a move: the NDR comes at the same count and time") {
  test::temp_dir dir;
  retry_policy policy;
  policy.max_open_retries = 4;
  supervisor_fixture f{dir / "a.db", policy};
  second_node b{f, dir / "b.db", policy};
  auto a_postoffices = [&](const std::string& owner) {
    return owned_by(owner, policy, f.restartable(f.dead), f.restartable(f.live), nullptr);
  };
  auto b_postoffices = [&](const std::string& owner) {
    return owned_by(owner, policy, b.fake(b.dead), b.fake(b.live), b.ndr);
  };
  auto cluster_a = f.sys.spawn(cluster, node_config("a"), f.store, f.sup, a_postoffices("a"));
  auto cluster_b = f.sys.spawn(cluster, node_config("b"), b.store, b.sup, b_postoffices("a"));
  f.sched.run();
  // a learns of b's cluster actor (as from the middleman) and joins it.
  caf::anon_send(cluster_a, connected_atom::value, std::string{"127.0.0.1:4201"},
                 caf::actor_cast<caf::strong_actor_ptr>(cluster_b));
  f.sched.run();
  auto members = [&](const cluster_actor& node) {
    return f.state_of<cluster_state>(node).live_nodes();
  };
  CHECK(members(cluster_a) == std::vector<std::string>{"a", "b"});
  CHECK(members(cluster_b) == std::vector<std::string>{"b", "a"});
  CHECK(f.state_of<cluster_state>(cluster_b).owners.at("dead") == "a");
  auto id = f.submit({{"dead", {"bob@dead.example.test"}}});
  f.advance(1200s, 600s); // three failed opens at a
  REQUIRE(delivery_of(*f.db, id).open_retries == 3);
  // "dead" moves to b while both are up: a hands its delivery over.
  caf::anon_send(cluster_a, reload_atom::value, a_postoffices("b"));
  caf::anon_send(cluster_b, reload_atom::value, b_postoffices("b"));
  f.sched.run();
  CHECK(delivery_of(*f.db, id).state == delivery_state::delivered);
  auto moved = b.db->unfinished_deliveries();
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].open_retries == 3);
  CHECK(moved[0].attempts == 3);
  CHECK(moved[0].origin == "a." + id + "." + std::to_string(delivery_of(*f.db, id).delivery_id));
  CHECK(attempts_with(*b.db, moved[0].delivery_id, "handed_in").size() == 1);
  // On one node the NDR would come at the 5th failed open, t0 + 4 x 600 s.
  f.advance(1199s, 600s);
  CHECK(b.db->deliveries_of(moved[0].message_id).at(0).state != delivery_state::bounced);
  f.advance(1s);
  auto ended = b.db->deliveries_of(moved[0].message_id).at(0);
  CHECK(ended.state == delivery_state::bounced);
  CHECK(ended.open_retries == 4); // at the limit: the fifth failed open bounced
  CHECK(ended.attempts == 5);      // three at a, two at b
  CHECK(f.state_of<fake_postoffice_state>(b.dead).attempts == 2);
  CHECK(f.ndrs().empty());
  std::size_t ndrs = 0;
  for (const auto& entry : b.db->unfinished_deliveries())
    ndrs += entry.postoffice == "live" ? 1 : 0;
  CHECK(ndrs == 1);
  for (const auto& node : {cluster_a, cluster_b})
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
}

TEST_CASE("a lost member's postoffices move to the survivor and come back when it rejoins") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "a.db", retry_policy{}};
  second_node b{f, dir / "b.db", retry_policy{}};
  // No explicit owner: rendezvous hashing gives dead to a and live to b.
  auto hashed = [](postoffice_factory dead, postoffice_factory live) {
    return owned_by("", retry_policy{}, std::move(dead), std::move(live), nullptr);
  };
  auto cluster_a = f.sys.spawn(cluster, node_config("a"), f.store, f.sup,
                               hashed(f.restartable(f.dead), f.restartable(f.live)));
  auto start_b = [&] {
    return f.sys.spawn(cluster, node_config("b"), b.store, b.sup,
                       hashed(b.fake(b.dead), b.fake(b.live)));
  };
  auto cluster_b = start_b();
  f.sched.run();
  auto join = [&] {
    caf::anon_send(cluster_a, connected_atom::value, std::string{"127.0.0.1:4201"},
                   caf::actor_cast<caf::strong_actor_ptr>(cluster_b));
    f.sched.run();
  };
  join();
  auto& a = f.state_of<cluster_state>(cluster_a);
  std::map<std::string, std::string> both{{"dead", "a"}, {"live", "b"}};
  CHECK(a.owners == both);
  CHECK(a.running == std::set<std::string>{"dead"});
  // b's connection is gone: a gets the down message and owns everything.
  caf::anon_send_exit(cluster_b, caf::exit_reason::remote_link_unreachable);
  f.sched.run();
  CHECK(a.live_nodes() == std::vector<std::string>{"a"});
  CHECK(a.running == std::set<std::string>{"dead", "live"});
  CHECK(f.state_of<supervisor_state>(f.sup).handoff.elsewhere.empty());
  // b starts again under the same name and joins: the owners are as before.
  cluster_b = start_b();
  f.sched.run();
  join();
  CHECK(a.live_nodes() == std::vector<std::string>{"a", "b"});
  CHECK(a.owners == both);
  CHECK(a.running == std::set<std::string>{"dead"});
  CHECK(f.state_of<supervisor_state>(f.sup).handoff.elsewhere.count("live") == 1);
  for (const auto& node : {cluster_a, cluster_b})
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
}

TEST_CASE("a message requeued to a postoffice another node owns is handed to that node") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "queue.db", retry_policy{}};
  auto courier = f.sys.spawn(fake_handoff);
  caf::anon_send(f.sup, reload_atom::value, dead_elsewhere(retry_policy{}, courier));
  f.sched.run();
  f.state_of<fake_postoffice_state>(f.live).mode = test::po_mode::down;
  auto id = f.submit({{"live", {"bob@live.example.test"}}});
  REQUIRE(delivery_of(*f.db, id).open_retries == 1);
  auto moved = f.self->request(f.sup, caf::infinite, requeue_atom::value, message_filter(id),
                               std::string{"dead"});
  f.sched.run();
  moved.receive([](const verb_tally& tally) { CHECK(tally.deliveries == 1); },
                [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  f.sched.run();
  auto& handed = f.state_of<fake_handoff_state>(courier).handed;
  REQUIRE(handed.size() == 1);
  CHECK(handed[0].postoffice == "dead");
  CHECK(handed[0].open_retries == 0);
  CHECK(delivery_of(*f.db, id).state == delivery_state::delivered);
  caf::anon_send_exit(courier, caf::exit_reason::user_shutdown);
}


TEST_CASE("with etcd: nothing owned while joining or fenced, deliveries kept, handoffs refused") {
  test::temp_dir dir;
  supervisor_fixture f{dir / "a.db", retry_policy{}};
  auto options = node_config("a");
  options.etcd = {"127.0.0.1:2379"};
  options.lease_ttl = 3s;
  auto node = f.sys.spawn(cluster, options, f.store, f.sup,
                          owned_by("", retry_policy{}, f.restartable(f.dead),
                                   f.restartable(f.live), nullptr));
  f.sched.run();
  auto& st = f.state_of<cluster_state>(node);
  auto& sup = f.state_of<supervisor_state>(f.sup);
  auto now = [&] { return f.sched.clock().now(); };
  auto report = [&](membership_round round) {
    caf::anon_send(node, report_atom::value, std::move(round));
    f.sched.run();
  };
  auto running = [&] {
    std::set<std::string> names;
    for (const auto& slot : sup.postoffices.slots())
      names.insert(slot.name);
    return names;
  };
  auto refused = [&](const std::string& why) {
    ledger_entry entry;
    entry.postoffice = "live";
    auto handed = f.self->request(node, caf::infinite, handoff_atom::value, entry);
    f.sched.run();
    std::string error;
    handed.receive([](const std::string&) {},
                   [&](const caf::error& err) { error = f.sys.render(err); });
    CHECK_MESSAGE(error.find(why) != std::string::npos, error);
  };
  std::map<std::string, std::string> members{{"a", "127.0.0.1:4200"}};
  // Registered: the lease is valid, but a owns nothing for a ttl.
  auto first = round_at(now(), members);
  first.registered = true;
  first.registered_at = now();
  report(first);
  CHECK(st.live_nodes().empty());
  CHECK(running().empty());
  CHECK(sup.handoff.elsewhere.size() == 2);
  refused("node a is joining");
  // Rounds every second; a ttl after the put, a owns its share.
  f.advance(1s);
  report(round_at(now(), members));
  f.advance(1s);
  report(round_at(now(), members));
  CHECK(running().empty());
  f.advance(1s);
  CHECK(st.live_nodes() == std::vector<std::string>{"a"});
  CHECK(running() == std::set<std::string>{"dead", "live"});
  CHECK(sup.handoff.elsewhere.empty());
  // No round goes through: the fence falls at the last round's asked_at +
  // ttl - ttl/5 (t + 2 s + 2.4 s), by the timer alone.
  f.advance(1399ms);
  CHECK(running() == std::set<std::string>{"dead", "live"});
  f.advance(1ms);
  CHECK(st.etcd->fenced);
  CHECK(running().empty());
  CHECK(sup.handoff.elsewhere.size() == 2);
  refused("cannot prove it holds its etcd lease");
  auto adopted = f.self->request(node, caf::infinite, handoff_atom::value,
                                 handoff{"b", stored_message{}, ledger_entry{}});
  f.sched.run();
  adopted.receive([](bool) { FAIL("a fenced node took a handoff"); },
                  [](const caf::error&) {});
  // A failed round says why; nothing changes.
  membership_round failed;
  failed.problem = "no etcd endpoint answered";
  report(failed);
  CHECK(running().empty());
  // etcd says the lease expired; the round granted a new one and wrote the
  // member key again: valid, joining for a ttl, then owning.
  auto again = round_at(now(), members);
  again.lease_lost = true;
  again.registered = true;
  again.registered_at = now();
  report(again);
  CHECK_FALSE(st.etcd->fenced);
  CHECK(running().empty());
  f.advance(2s);
  report(round_at(now(), members));
  f.advance(1s);
  CHECK(running() == std::set<std::string>{"dead", "live"});
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
}
