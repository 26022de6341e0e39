// Tests actors/store.cpp on the deterministic scheduler: group commit (all
// writes in the mailbox share one transaction), the batch limit, a bad
// request failing alone, a full disk or a failing fsync failing the whole
// batch without keeping any of it, the disk reserve refusing new mail,
// recipient outcomes written with the ledger change or the bounce that
// decided them, and replicas of other nodes' deliveries (kept, updated,
// adopted) with the deliveries replicated elsewhere left unannounced.
#include <doctest/doctest.h>

#include <set>

#include <caf/event_based_actor.hpp>

#include "actors/store.hpp"
#include "tests/runtime/store/storage_faults.hpp"
#include "tests/actor_fixture.hpp"
#include "tests/temp_dir.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

incoming_message message_for(const std::string& rcpt,
                             std::size_t padding = 0) {
  incoming_message msg;
  msg.sender = "ann@example.org";
  msg.content = "Subject: test\r\n\r\nhello " + rcpt + "\r\n"
                + std::string(padding, 'x');
  msg.received_at = 1700000000;
  msg.deliveries = {{"sales", {rcpt}}};
  return msg;
}

struct store_fixture : test::actor_fixture {
  test::temp_dir dir;
  std::shared_ptr<queue_db> db = queue_db::open(dir / "queue.db");

  store_actor spawn(store_options options = {}) {
    auto store = spawn_store(sys, db, options, false);
    sched.run();
    return store;
  }

  /// Sends `count` accepts before the store runs, as concurrent sessions
  /// would; returns the replies (an id, or the rendered error) in order.
  std::vector<std::string> accept_concurrently(const store_actor& store,
                                               int count,
                                               std::size_t padding = 0) {
    std::vector<std::string> replies;
    sys.spawn([&, store, count, padding](caf::event_based_actor* client) {
      for (int i = 0; i < count; ++i)
        client
          ->request(store, caf::infinite, accept_atom::value,
                    message_for("r" + std::to_string(i) + "@sales.example.test",
                                padding))
          .then([&](const accept_receipt& r) { replies.push_back(r.id); },
                [&](const caf::error& err) {
                  replies.push_back("error: " + sys.render(err));
                });
    });
    sched.run();
    return replies;
  }

  store_status status(const store_actor& store) {
    store_status result;
    auto handle = self->request(store, caf::infinite, status_atom::value);
    sched.run();
    handle.receive([&](const store_status& st) { result = st; },
                   [](const caf::error&) { FAIL("status failed"); });
    return result;
  }
};

/// What a store's listener hears: disk crossings and new deliveries.
struct space_recorder_state {
  std::vector<bool> heard;
  std::vector<std::vector<ledger_entry>> enqueued;
  static inline const char* name = "space_recorder";
};

store_listener_actor::behavior_type
space_recorder(store_listener_actor::stateful_pointer<space_recorder_state> self) {
  return {
    [=](space_atom, bool low) { self->state.heard.push_back(low); },
    [=](enqueue_atom, std::vector<ledger_entry>& created) {
      self->state.enqueued.push_back(std::move(created));
    },
  };
}

constexpr std::uint64_t mebibyte = 1024 * 1024;

/// A store keeping 100 MiB free on a simulated disk with `free` bytes,
/// watched by a listener.
struct reserve_fixture : store_fixture {
  std::uint64_t free = 0;
  store_actor store;
  store_listener_actor listener = sys.spawn(space_recorder);

  explicit reserve_fixture(std::uint64_t initially_free) : free(initially_free) {
    store_options options;
    options.min_free_space = 100 * mebibyte;
    options.free_space = [this] { return std::optional<std::uint64_t>{free}; };
    store = spawn(options);
    self->send(store, watch_atom::value, listener);
    sched.run();
  }

  /// What the listener heard, oldest first: true for below the reserve.
  std::vector<bool>& heard() {
    return state_of<space_recorder_state>(listener).heard;
  }
};

} // namespace

TEST_CASE_FIXTURE(store_fixture, "concurrent accepts share one commit and get distinct ordered ids") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 64);
  REQUIRE(ids.size() == 64);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 64);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  for (const auto& id : ids)
    CHECK(db->message(id));
  auto st = status(store);
  CHECK(st.commits == 1);
  CHECK(st.writes == 64);
  CHECK(db->unfinished_deliveries().size() == 64);
}

TEST_CASE_FIXTURE(store_fixture, "writes that arrive behind the commit marker join its commit") {
  auto store = spawn();
  std::vector<std::string> ids;
  auto accept = [&](int i) {
    return self->request(store, caf::infinite, accept_atom::value,
                         message_for("r" + std::to_string(i) + "@sales.example.test"));
  };
  auto first = accept(0);
  // The store takes the first write and sends itself the commit marker;
  // three more writes then queue up behind the marker.
  REQUIRE(sched.try_run_once());
  std::vector<decltype(first)> later;
  for (int i = 1; i <= 3; ++i)
    later.push_back(accept(i));
  sched.run();
  auto st = status(store);
  CHECK(st.commits == 1);
  CHECK(st.writes == 4);
  first.receive([&](const accept_receipt& r) { ids.push_back(r.id); },
                [](const caf::error&) { FAIL("first accept failed"); });
  for (auto& handle : later)
    handle.receive([&](const accept_receipt& r) { ids.push_back(r.id); },
                   [](const caf::error&) { FAIL("later accept failed"); });
  REQUIRE(ids.size() == 4);
  for (const auto& id : ids)
    CHECK(db->message(id));
}

TEST_CASE_FIXTURE(store_fixture, "max_batch bounds the writes per transaction") {
  store_options options;
  options.max_batch = 10;
  auto store = spawn(options);
  auto ids = accept_concurrently(store, 25);
  CHECK(ids.size() == 25);
  CHECK(status(store).commits == 3);
  options.max_batch = 1;
  auto one_by_one = spawn(options);
  accept_concurrently(one_by_one, 5);
  CHECK(status(one_by_one).commits == 5);
}

TEST_CASE_FIXTURE(store_fixture, "a ledger change for an unknown delivery fails alone, in the same commit as the rest") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 1);
  auto entry = db->deliveries_of(ids[0]).at(0);
  entry.state = delivery_state::deferred;
  entry.open_retries = 1;
  auto ghost = entry;
  ghost.delivery_id = 999;
  std::vector<ledger_change> changes{
    {ghost, attempt_record{999, 1700000600, "open_failed", "", ""}, {}},
    {entry, attempt_record{entry.delivery_id, 1700000600, "open_failed", "4.4.1", "down"}, {}}};
  auto recorded = self->request(store, caf::infinite, record_atom::value, changes);
  sched.run();
  recorded.receive(
    [](const std::vector<std::string>& failures) {
      REQUIRE(failures.size() == 2);
      CHECK(failures[0].rfind("store: request rejected", 0) == 0);
      CHECK(failures[0].find("no delivery with id 999") != std::string::npos);
      CHECK(failures[1].empty());
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(status(store).commits == 2);
  CHECK(db->deliveries_of(ids[0]).at(0).open_retries == 1);
  CHECK(db->attempts_of(entry.delivery_id).size() == 1);
  CHECK(db->attempts_of(999).empty());
}

TEST_CASE_FIXTURE(store_fixture, "a batch's recipient outcomes go into the commit of its ledger changes, and fail with them") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 2);
  auto first = db->deliveries_of(ids[0]).at(0);
  auto second = db->deliveries_of(ids[1]).at(0);
  first.state = delivery_state::delivered;
  first.recipients.clear();
  auto ghost = second;
  ghost.delivery_id = 999;
  auto commits = status(store).commits;
  std::vector<ledger_change> changes{
    {first, attempt_record{first.delivery_id, 1700000600, "delivered", "", ""},
     {{"r0@sales.example.test", recipient_state::delivered, "2.0.0",
       "250 2.0.0 OK: message accepted", 1700000600}}},
    {ghost, attempt_record{999, 1700000600, "transfer_failed", "", ""},
     {{"r1@sales.example.test", recipient_state::deferred, "4.2.1", "452 busy", 1700000600}}}};
  auto recorded = self->request(store, caf::infinite, record_atom::value, changes);
  sched.run();
  recorded.receive([](const std::vector<std::string>& failures) { CHECK(failures.size() == 2); },
                   [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(status(store).commits == commits + 1);
  auto kept = db->recipients_of(first.delivery_id);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].address == "r0@sales.example.test");
  CHECK(kept[0].state == recipient_state::delivered);
  CHECK(kept[0].text == "250 2.0.0 OK: message accepted");
  CHECK(db->recipients_of(999).empty());
  // Read through the store as the admin API does.
  auto loaded = self->request(store, caf::infinite, load_atom::value, outcomes_atom::value,
                              first.delivery_id);
  sched.run();
  loaded.receive(
    [](const std::vector<recipient_record>& outcomes) {
      REQUIRE(outcomes.size() == 1);
      CHECK(outcomes[0].code == "2.0.0");
      CHECK(outcomes[0].at == 1700000600);
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
}

TEST_CASE_FIXTURE(store_fixture, "a bounce's recipient outcomes are committed with its NDR") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 1);
  auto bounced = db->deliveries_of(ids[0]).at(0);
  bounced.state = delivery_state::bounced;
  bounced.recipients.clear();
  auto ndr = message_for("ann@support.example.test");
  ndr.sender.clear();
  ledger_change change{bounced,
                       attempt_record{bounced.delivery_id, 1700000700, "rejected", "", ""},
                       {{"r0@sales.example.test", recipient_state::bounced, "5.1.1",
                         "550 5.1.1 User unknown", 1700000700}}};
  auto reported = self->request(store, caf::infinite, report_atom::value, change, ndr);
  sched.run();
  reported.receive([](const std::vector<ledger_entry>& created) { CHECK(created.size() == 1); },
                   [&](const caf::error& err) { FAIL(sys.render(err)); });
  auto kept = db->recipients_of(bounced.delivery_id);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].state == recipient_state::bounced);
  CHECK(kept[0].text == "550 5.1.1 User unknown");
}

TEST_CASE_FIXTURE(store_fixture, "a full disk fails every write of the batch and keeps none, the store recovers") {
  auto store = spawn();
  accept_concurrently(store, 1);
  db->limit_pages(1);
  auto replies = accept_concurrently(store, 8, 64 * 1024);
  REQUIRE(replies.size() == 8);
  for (const auto& reply : replies)
    CHECK(reply.rfind("error: store: commit failed", 0) == 0);
  CHECK(db->unfinished_deliveries().size() == 1);
  CHECK(db->integrity_check() == "ok");
  db->limit_pages(1u << 30);
  auto after = accept_concurrently(store, 2);
  for (const auto& id : after)
    CHECK(db->message(id));
  auto st = status(store);
  CHECK(st.failed_writes == 8);
  CHECK(st.writes == 3);
}

TEST_CASE_FIXTURE(store_fixture, "a failing fsync fails the whole batch and keeps none of it, the next commit works") {
  db = queue_db::open(dir / "faulty.db", storage_faults_vfs());
  auto store = spawn();
  auto first = accept_concurrently(store, 1);
  fail_syncs(1);
  auto replies = accept_concurrently(store, 4);
  fail_syncs(0);
  REQUIRE(replies.size() == 4);
  for (const auto& reply : replies)
    CHECK(reply.rfind("error: store: commit failed", 0) == 0);
  CHECK(db->unfinished_deliveries().size() == 1);
  auto after = accept_concurrently(store, 2);
  for (const auto& id : after)
    CHECK(db->message(id));
  CHECK(status(store).failed_writes == 4);
  // Reopened, the file holds what was acknowledged and nothing else.
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  sched.run();
  db.reset();
  auto reopened = queue_db::open(dir / "faulty.db");
  CHECK(reopened->unfinished_deliveries().size() == 3);
  CHECK(reopened->integrity_check() == "ok");
}

TEST_CASE_FIXTURE(store_fixture, "a write failing as on a full disk fails the batch and keeps none of it") {
  db = queue_db::open(dir / "faulty.db", storage_faults_vfs());
  auto store = spawn();
  accept_concurrently(store, 1);
  fail_writes(1);
  auto replies = accept_concurrently(store, 3, 64 * 1024);
  fail_writes(0);
  for (const auto& reply : replies)
    CHECK(reply.rfind("error: store: commit failed", 0) == 0);
  CHECK(db->unfinished_deliveries().size() == 1);
  CHECK(db->integrity_check() == "ok");
  CHECK(accept_concurrently(store, 1).at(0).rfind("error", 0) != 0);
}

TEST_CASE_FIXTURE(store_fixture, "an attempt's fetch marks its deliveries in doubt, then returns the messages in the queue in the order asked") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 3);
  std::vector<std::string> asked{ids[2], "ffffffffffffffff", ids[0], ids[2]};
  auto first = db->deliveries_of(ids[0]).at(0);
  CHECK_FALSE(first.in_doubt);
  auto fetched = self->request(store, caf::infinite, fetch_atom::value, asked,
                               std::vector<std::int64_t>{first.delivery_id});
  sched.run();
  CHECK(db->deliveries_of(ids[0]).at(0).in_doubt);
  CHECK_FALSE(db->deliveries_of(ids[2]).at(0).in_doubt);
  // The outcome, once recorded, says whether it still is.
  first.state = delivery_state::delivered;
  db->update_delivery(first);
  CHECK_FALSE(db->deliveries_of(ids[0]).at(0).in_doubt);
  sched.run();
  fetched.receive(
    [&](const std::vector<stored_message>& found) {
      REQUIRE(found.size() == 3);
      CHECK(found[0].id == ids[2]);
      CHECK(found[0].content == message_for("r2@sales.example.test").content);
      CHECK(found[1].id == ids[0]);
      CHECK(found[1].sender == "ann@example.org");
      CHECK(found[2].id == ids[2]);
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
}

TEST_CASE_FIXTURE(store_fixture, "fetch returns the stored message or not_found, load lists unfinished deliveries") {
  auto store = spawn();
  auto ids = accept_concurrently(store, 2);
  auto fetched = self->request(store, caf::infinite, fetch_atom::value, ids[1]);
  auto missing = self->request(store, caf::infinite, fetch_atom::value,
                               std::string{"ffffffffffffffff"});
  auto loaded = self->request(store, caf::infinite, load_atom::value);
  sched.run();
  fetched.receive(
    [&](const stored_message& msg) {
      CHECK(msg.id == ids[1]);
      CHECK(msg.content == message_for("r1@sales.example.test").content);
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  missing.receive([](const stored_message&) { FAIL("found a missing message"); },
                  [&](const caf::error& err) {
                    CHECK(sys.render(err).rfind("store: not found", 0) == 0);
                  });
  loaded.receive(
    [&](const std::vector<ledger_entry>& entries) {
      REQUIRE(entries.size() == 2);
      CHECK(entries[0].message_id == ids[0]);
      CHECK(entries[1].recipients
            == std::vector<std::string>{"r1@sales.example.test"});
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
}

TEST_CASE_FIXTURE(store_fixture, "the store tells its listener of the deliveries each durable write creates, and of nothing else") {
  auto store = spawn();
  store_listener_actor listener = sys.spawn(space_recorder);
  self->send(store, watch_atom::value, listener);
  sched.run();
  auto& heard = state_of<space_recorder_state>(listener);
  // New mail: its deliveries.
  auto ids = accept_concurrently(store, 1);
  REQUIRE(heard.enqueued.size() == 1);
  REQUIRE(heard.enqueued[0].size() == 1);
  CHECK(heard.enqueued[0][0].message_id == ids[0]);
  // An NDR committed with its bounce: the NDR's deliveries.
  auto bounced = heard.enqueued[0][0];
  bounced.state = delivery_state::bounced;
  auto ndr = message_for("ann@support.example.test");
  ndr.sender.clear();
  auto reported = self->request(
    store, caf::infinite, report_atom::value,
    ledger_change{bounced, attempt_record{bounced.delivery_id, 1, "bounced", "5.1.1", ""}, {}},
    ndr);
  sched.run();
  reported.receive([](const std::vector<ledger_entry>&) {},
                   [&](const caf::error& err) { FAIL(sys.render(err)); });
  REQUIRE(heard.enqueued.size() == 2);
  CHECK(heard.enqueued[1].at(0).recipients
        == std::vector<std::string>{"ann@support.example.test"});
  // A handoff adopted: its delivery; the same handoff again: nothing.
  handoff incoming{"b", stored_message{"00000000000000b1", "c@x.test", "x\r\n", 1}, bounced};
  incoming.delivery.state = delivery_state::queued;
  incoming.delivery.origin = "b.00000000000000b1.1";
  for (int round = 0; round < 2; ++round) {
    auto adopted = self->request(store, caf::infinite, adopt_atom::value, incoming,
                                 attempt_record{0, 1, "handed_in", "", ""}, std::string{});
    sched.run();
    adopted.receive([](const std::vector<ledger_entry>&) {},
                    [&](const caf::error& err) { FAIL(sys.render(err)); });
  }
  REQUIRE(heard.enqueued.size() == 3);
  CHECK(heard.enqueued[2].size() == 1);
  // A ledger change creates no delivery: nothing more is heard.
  auto recorded = self->request(store, caf::infinite, record_atom::value,
                                std::vector<ledger_change>{{heard.enqueued[2][0], {}, {}}});
  sched.run();
  recorded.receive([](const std::vector<std::string>&) {},
                   [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(heard.enqueued.size() == 3);
}

TEST_CASE_FIXTURE(store_fixture, "deliveries replicated on another node are left for whoever committed the replica to announce") {
  auto store = spawn();
  store_listener_actor listener = sys.spawn(space_recorder);
  self->send(store, watch_atom::value, listener);
  sched.run();
  auto& heard = state_of<space_recorder_state>(listener);
  auto replicated = message_for("bob@sales.example.test");
  replicated.replica_node = "node-b";
  auto accepted = self->request(store, caf::infinite, accept_atom::value, replicated);
  sched.run();
  accepted.receive(
    [](const accept_receipt& receipt) {
      REQUIRE(receipt.deliveries.size() == 1);
      CHECK(receipt.deliveries[0].replica_node == "node-b");
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(heard.enqueued.empty());
  // A handoff adopted with a replica on node-b: not announced either.
  ledger_entry entry;
  entry.postoffice = "sales";
  entry.recipients = {"carol@sales.example.test"};
  entry.origin = "node-c.00000000000000c1.1";
  handoff incoming{"node-c", stored_message{"00000000000000c1", "c@x.test", "x\r\n", 1}, entry};
  auto adopted = self->request(store, caf::infinite, adopt_atom::value, incoming,
                               attempt_record{0, 1, "handed_in", "", ""}, std::string{"node-b"});
  sched.run();
  adopted.receive(
    [](const std::vector<ledger_entry>& created) {
      REQUIRE(created.size() == 1);
      CHECK(created[0].replica_node == "node-b");
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(heard.enqueued.empty());
  // Both are in the queue, with their replica node.
  auto loaded = db->unfinished_deliveries();
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].replica_node == "node-b");
  CHECK(loaded[1].replica_node == "node-b");
  // Without a replica node, new mail is announced as before.
  auto ids = accept_concurrently(store, 1);
  REQUIRE(heard.enqueued.size() == 1);
  REQUIRE(heard.enqueued[0].size() == 1);
  CHECK(heard.enqueued[0][0].message_id == ids.at(0));
  CHECK(heard.enqueued[0][0].replica_node.empty());
}

TEST_CASE_FIXTURE(store_fixture, "replicas are committed, kept up to date, and adopted and announced when their node is gone") {
  auto store = spawn();
  store_listener_actor listener = sys.spawn(space_recorder);
  self->send(store, watch_atom::value, listener);
  sched.run();
  auto& heard = state_of<space_recorder_state>(listener);
  auto replica = [](const std::string& key) {
    ledger_entry entry;
    entry.postoffice = "sales";
    entry.recipients = {"bob@sales.example.test"};
    entry.state = delivery_state::deferred;
    entry.open_retries = 2;
    entry.origin = key;
    return handoff{"node-a", stored_message{"00000000000000a1", "ann@example.org",
                                            "Subject: r\r\n\r\n" + key + "\r\n", 1700000000},
                   entry};
  };
  std::vector<handoff> replicas{replica("node-a.00000000000000a1.1"),
                                replica("node-a.00000000000000a1.2")};
  auto committed = self->request(store, caf::infinite, replicate_atom::value, replicas);
  sched.run();
  committed.receive([](bool done) { CHECK(done); },
                    [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(heard.enqueued.empty());
  // The first delivery failed again at node-a, the second was delivered.
  auto retried = replicas[0].delivery;
  retried.open_retries = 3;
  retried.last_error_text = "root missing";
  auto delivered = replicas[1].delivery;
  delivered.state = delivery_state::delivered;
  self->send(store, replicate_atom::value, std::string{"node-a"},
             std::vector<ledger_entry>{retried, delivered});
  sched.run();
  auto commits = status(store).commits;

  auto forgotten = self->request(store, caf::infinite, forget_atom::value, std::string{"node-a"});
  sched.run();
  forgotten.receive(
    [&](const std::vector<ledger_entry>& adopted) {
      REQUIRE(adopted.size() == 1);
      CHECK(adopted[0].origin == "node-a.00000000000000a1.1");
      CHECK(adopted[0].open_retries == 3);
      CHECK(adopted[0].last_error_text == "root missing");
      CHECK(adopted[0].state == delivery_state::deferred);
      CHECK(db->message(adopted[0].message_id)->content
            == "Subject: r\r\n\r\nnode-a.00000000000000a1.1\r\n");
      REQUIRE(db->attempts_of(adopted[0].delivery_id).size() == 1);
      CHECK(db->attempts_of(adopted[0].delivery_id)[0].outcome == "adopted");
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(status(store).commits == commits + 1);
  REQUIRE(heard.enqueued.size() == 1);
  REQUIRE(heard.enqueued[0].size() == 1);
  CHECK(heard.enqueued[0][0].origin == "node-a.00000000000000a1.1");
  auto keys = self->request(store, caf::infinite, load_atom::value, forget_atom::value,
                            std::string{"node-a"});
  sched.run();
  keys.receive(
    [](const std::vector<std::string>& adopted) {
      CHECK(adopted == std::vector<std::string>{"node-a.00000000000000a1.1"});
    },
    [&](const caf::error& err) { FAIL(sys.render(err)); });
  // Forgotten again (another node's admin call): nothing more to adopt.
  auto again = self->request(store, caf::infinite, forget_atom::value, std::string{"node-a"});
  sched.run();
  again.receive([](const std::vector<ledger_entry>& adopted) { CHECK(adopted.empty()); },
                [&](const caf::error& err) { FAIL(sys.render(err)); });
  CHECK(heard.enqueued.size() == 1);
}

TEST_CASE("below the disk reserve new mail is refused while ledger changes go on, until the disk is back above 110 percent") {
  reserve_fixture f{200 * mebibyte};
  CHECK(f.heard() == std::vector<bool>{false});
  auto ids = f.accept_concurrently(f.store, 1);
  REQUIRE(f.db->message(ids.at(0)));

  f.free = 99 * mebibyte;
  auto entry = f.db->deliveries_of(ids[0]).at(0);
  entry.state = delivery_state::delivered;
  std::vector<ledger_change> changes{
    {entry, attempt_record{entry.delivery_id, 1700000600, "delivered", "2.0.0", "ok"}, {}}};
  auto recorded = f.self->request(f.store, caf::infinite, record_atom::value, changes);
  auto refused = f.accept_concurrently(f.store, 2);
  recorded.receive(
    [](const std::vector<std::string>& failures) { CHECK(failures == std::vector<std::string>{""}); },
    [&](const caf::error& err) { FAIL(f.sys.render(err)); });
  REQUIRE(refused.size() == 2);
  for (const auto& reply : refused)
    CHECK(reply.rfind("error: store: low on disk space", 0) == 0);
  CHECK(f.db->deliveries_of(ids[0]).at(0).state == delivery_state::delivered);
  CHECK(f.db->unfinished_deliveries().empty());
  CHECK(f.heard() == std::vector<bool>{false, true});
  auto st = f.status(f.store);
  CHECK(st.messages_refused_low_space == 2);
  CHECK(st.free_bytes == 99 * mebibyte);

  // Above the reserve but under 110 % of it: still low, looked at again
  // every space_recheck without a word to the listener.
  f.free = 105 * mebibyte;
  f.sched.advance_time(store_state::space_recheck);
  f.sched.run();
  CHECK(f.heard().size() == 2);
  CHECK(f.accept_concurrently(f.store, 1).at(0).rfind("error: store: low on disk space", 0) == 0);
  f.free = 111 * mebibyte;
  f.sched.advance_time(store_state::space_recheck);
  f.sched.run();
  CHECK(f.heard() == std::vector<bool>{false, true, false});
  CHECK(f.db->message(f.accept_concurrently(f.store, 1).at(0)));
  // Nothing looks any more while the disk has room.
  CHECK_FALSE(f.sched.has_pending_timeout());
}

TEST_CASE("a reserve reloaded to 0 accepts new mail again at once") {
  reserve_fixture f{10 * mebibyte};
  CHECK(f.heard() == std::vector<bool>{true});
  CHECK(f.accept_concurrently(f.store, 1).at(0).rfind("error: store: low on disk space", 0) == 0);
  f.self->send(f.store, reload_atom::value, std::uint64_t{0});
  f.sched.run();
  CHECK(f.heard() == std::vector<bool>{true, false});
  CHECK(f.db->message(f.accept_concurrently(f.store, 1).at(0)));
}
