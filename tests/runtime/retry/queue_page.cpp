// Tests runtime/retry/queue_page.cpp and delivery_filter.cpp: the admin API's
// /queue page taken from the ledger: filters (recipient, state as shown),
// oldest first (queued time, then id), offset, limit and a cursor, and the
// total of what the filters select; the queue's shape in qshape's age
// buckets.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/retry/delivery_filter.hpp"
#include "runtime/retry/queue_page.hpp"

using namespace postconn;

namespace {

std::map<std::int64_t, ledger_entry> ledger_of(std::vector<ledger_entry> entries) {
  std::map<std::int64_t, ledger_entry> ledger;
  for (auto& entry : entries)
    ledger[entry.delivery_id] = std::move(entry);
  return ledger;
}

ledger_entry entry(std::int64_t id, std::int64_t queued_at, std::string postoffice,
                   delivery_state state, std::string message_id = "m") {
  ledger_entry e;
  e.delivery_id = id;
  e.queued_at = queued_at;
  e.postoffice = std::move(postoffice);
  e.state = state;
  e.message_id = std::move(message_id);
  return e;
}

/// No delivery has an attempt under way.
const std::set<std::int64_t> none_busy;

std::vector<std::int64_t> ids_of(const queue_page& page) {
  std::vector<std::int64_t> ids;
  for (const auto& e : page.deliveries)
    ids.push_back(e.delivery_id);
  return ids;
}

} // namespace

TEST_CASE("a queue page lists the oldest first, ties by delivery id, from offset up to limit") {
  using s = delivery_state;
  auto ledger = ledger_of({entry(1, 300, "sales", s::queued), entry(2, 100, "sales", s::deferred),
                           entry(3, 200, "support", s::held), entry(4, 100, "sales", s::queued),
                           entry(5, 400, "sales", s::deferred)});
  queue_query all;
  auto page = select_page(ledger, none_busy, all);
  CHECK(page.total == 5);
  CHECK(ids_of(page) == std::vector<std::int64_t>{2, 4, 3, 1, 5});
  all.offset = 1;
  all.limit = 2;
  page = select_page(ledger, none_busy, all);
  CHECK(page.total == 5);
  CHECK(ids_of(page) == std::vector<std::int64_t>{4, 3});
  all.offset = 7;
  page = select_page(ledger, none_busy, all);
  CHECK(page.total == 5);
  CHECK(page.deliveries.empty());
}

TEST_CASE("a queue page counts and lists only what the filters select") {
  using s = delivery_state;
  auto ledger = ledger_of({entry(1, 300, "sales", s::queued, "a"),
                           entry(2, 100, "sales", s::deferred, "b"),
                           entry(3, 200, "support", s::deferred, "a"),
                           entry(4, 150, "sales", s::deferred, "c")});
  queue_query query;
  query.filter.queued_before = 1000;
  query.filter.postoffice = "sales";
  query.filter.state = "deferred";
  auto page = select_page(ledger, none_busy, query);
  CHECK(page.total == 2);
  CHECK(ids_of(page) == std::vector<std::int64_t>{2, 4});
  query.filter.queued_before = 120; // min_age: queued at or before
  CHECK(ids_of(select_page(ledger, none_busy, query)) == std::vector<std::int64_t>{2});
  queue_query of_messages;
  of_messages.filter.only_messages = true;
  of_messages.filter.message_ids = {"a", "x"};
  page = select_page(ledger, none_busy, of_messages);
  CHECK(page.total == 2);
  CHECK(ids_of(page) == std::vector<std::int64_t>{3, 1});
  of_messages.filter.message_ids.clear(); // a sender with no queued mail
  CHECK(select_page(ledger, none_busy, of_messages).total == 0);
}

TEST_CASE("a recipient filter matches part of any recipient's address, in any case") {
  using s = delivery_state;
  auto first = entry(1, 100, "sales", s::deferred);
  first.recipients = {"bob@sales.example.test", "Carol.Smith@Sales.example.test"};
  auto second = entry(2, 200, "sales", s::deferred);
  second.recipients = {"dave@sales.example.test"};
  auto ledger = ledger_of({first, second});
  queue_query query;
  query.filter.recipient = "carol.SMITH@";
  CHECK(ids_of(select_page(ledger, none_busy, query)) == std::vector<std::int64_t>{1});
  query.filter.recipient = "@sales.example";
  CHECK(ids_of(select_page(ledger, none_busy, query)) == std::vector<std::int64_t>{1, 2});
  query.filter.recipient = "erin";
  CHECK(select_page(ledger, none_busy, query).total == 0);
}

TEST_CASE("a delivery with an attempt under way is shown and selected as in_flight, unless held") {
  using s = delivery_state;
  auto ledger = ledger_of({entry(1, 100, "sales", s::deferred), entry(2, 200, "sales", s::deferred),
                           entry(3, 300, "sales", s::held)});
  const std::set<std::int64_t> busy{2, 3};
  CHECK(shown_state(ledger.at(2), true) == s::in_flight);
  CHECK(shown_state(ledger.at(3), true) == s::held);
  CHECK(shown_state(ledger.at(1), false) == s::deferred);
  queue_query query;
  query.filter.state = "deferred";
  CHECK(ids_of(select_page(ledger, busy, query)) == std::vector<std::int64_t>{1});
  query.filter.state = "in_flight";
  auto page = select_page(ledger, busy, query);
  CHECK(ids_of(page) == std::vector<std::int64_t>{2});
  CHECK(page.deliveries[0].state == s::in_flight);
  query.filter.state = "held";
  CHECK(ids_of(select_page(ledger, busy, query)) == std::vector<std::int64_t>{3});
  query.filter.state = "bogus"; // selects nothing, rather than everything
  CHECK(select_page(ledger, busy, query).total == 0);
}

TEST_CASE("pages read after a cursor miss nothing while deliveries leave the queue") {
  using s = delivery_state;
  std::vector<ledger_entry> entries;
  for (std::int64_t id = 1; id <= 7; ++id)
    entries.push_back(entry(id, 100 + id / 2, "sales", s::deferred)); // ties in queued time
  auto ledger = ledger_of(entries);
  queue_query query;
  query.limit = 3;
  auto first = select_page(ledger, none_busy, query);
  CHECK(ids_of(first) == std::vector<std::int64_t>{1, 2, 3});
  CHECK(first.more);
  // Two listed deliveries finish: an offset of 3 would now skip 4 and 5.
  ledger.erase(1);
  ledger.erase(2);
  query.after_queued_at = first.deliveries.back().queued_at;
  query.after_delivery = first.deliveries.back().delivery_id;
  auto second = select_page(ledger, none_busy, query);
  CHECK(ids_of(second) == std::vector<std::int64_t>{4, 5, 6});
  CHECK(second.total == 5);
  CHECK(second.more);
  query.after_queued_at = second.deliveries.back().queued_at;
  query.after_delivery = second.deliveries.back().delivery_id;
  auto last = select_page(ledger, none_busy, query);
  CHECK(ids_of(last) == std::vector<std::int64_t>{7});
  CHECK_FALSE(last.more);
}

TEST_CASE("the queue's shape counts each postoffice's deliveries in qshape's age buckets") {
  using s = delivery_state;
  constexpr std::int64_t now = 1'000'000;
  auto ledger = ledger_of({entry(1, now, "sales", s::deferred),
                           entry(2, now - 300, "sales", s::deferred),      // 5 minutes: "5"
                           entry(3, now - 301, "sales", s::held),          // just over: "10"
                           entry(4, now - 76800, "sales", s::deferred),    // "1280"
                           entry(5, now - 76801, "support", s::deferred),  // "1280+"
                           entry(6, now - 5000, "support", s::queued)});   // "160"
  auto shapes = shape_of(ledger, none_busy, delivery_filter{}, now);
  REQUIRE(shapes.size() == 2);
  CHECK(shapes[0].postoffice == "sales");
  CHECK(shapes[0].ages == std::vector<std::uint64_t>{2, 1, 0, 0, 0, 0, 0, 0, 1, 0});
  CHECK(shapes[0].oldest_queued_at == now - 76800);
  CHECK(shapes[1].postoffice == "support");
  CHECK(shapes[1].ages == std::vector<std::uint64_t>{0, 0, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(shapes[1].oldest_queued_at == now - 76801);
  delivery_filter deferred;
  deferred.state = "deferred";
  shapes = shape_of(ledger, none_busy, deferred, now);
  REQUIRE(shapes.size() == 2);
  CHECK(shapes[0].ages == std::vector<std::uint64_t>{2, 0, 0, 0, 0, 0, 0, 0, 1, 0});
  CHECK(shapes[1].ages == std::vector<std::uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  deferred.postoffice = "nowhere";
  CHECK(shape_of(ledger, none_busy, deferred, now).empty());
}
