// Tests runtime/retry/queue_page.cpp: the admin API's /queue page taken from the
// ledger: filters, oldest first (queued time, then id), offset and limit,
// and the total of what the filters select.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

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
  all.queued_before = 1000;
  auto page = select_page(ledger, all);
  CHECK(page.total == 5);
  CHECK(ids_of(page) == std::vector<std::int64_t>{2, 4, 3, 1, 5});
  all.offset = 1;
  all.limit = 2;
  page = select_page(ledger, all);
  CHECK(page.total == 5);
  CHECK(ids_of(page) == std::vector<std::int64_t>{4, 3});
  all.offset = 7;
  page = select_page(ledger, all);
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
  query.queued_before = 1000;
  query.postoffice = "sales";
  query.state = "deferred";
  auto page = select_page(ledger, query);
  CHECK(page.total == 2);
  CHECK(ids_of(page) == std::vector<std::int64_t>{2, 4});
  query.queued_before = 120; // min_age: queued at or before
  CHECK(ids_of(select_page(ledger, query)) == std::vector<std::int64_t>{2});
  queue_query of_messages;
  of_messages.queued_before = 1000;
  of_messages.only_messages = true;
  of_messages.message_ids = {"a", "x"};
  page = select_page(ledger, of_messages);
  CHECK(page.total == 2);
  CHECK(ids_of(page) == std::vector<std::int64_t>{3, 1});
  of_messages.message_ids.clear(); // a sender with no queued mail
  CHECK(select_page(ledger, of_messages).total == 0);
}
