// Tests runtime/retry/ledger_rules.cpp: open failures in both enforce modes,
// transfer failures, their backoff and their limit, permanent failures,
// partial outcomes, max_lifetime with its status, the attempts counted, and
// what becomes of each recipient.
#include <doctest/doctest.h>

#include "runtime/retry/ledger_rules.hpp"

#include <limits>

using namespace postconn;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t t0 = 1'700'000'000;

ledger_entry fresh_delivery(std::vector<std::string> recipients = {"bob@x.test"}) {
  ledger_entry entry;
  entry.delivery_id = 7;
  entry.message_id = "0000000000000001";
  entry.postoffice = "sales";
  entry.recipients = std::move(recipients);
  entry.queued_at = t0;
  entry.next_attempt_at = t0;
  return entry;
}

recipient_outcome result(const std::string& rcpt, recipient_result r,
                         const std::string& status) {
  return {rcpt, r, status, status + " from the server", true};
}

} // namespace

TEST_CASE("an enforced open failure counts, and the 145th bounces with 5.4.1") {
  retry_policy policy;
  auto entry = fresh_delivery();
  for (int failure = 1; failure <= 144; ++failure) {
    auto d = after_open_failure(entry, policy, t0 + (failure - 1) * 600, "4.4.1", "down");
    REQUIRE(d.bounced.empty());
    CHECK(d.entry.open_retries == failure);
    CHECK(d.entry.attempts == failure);
    CHECK(d.recipients.empty()); // no recipient was tried
    CHECK(d.entry.state == delivery_state::deferred);
    CHECK(d.entry.next_attempt_at == t0 + failure * 600);
    CHECK(d.entry.first_attempt_at == t0);
    CHECK(d.attempt.outcome == "open_failed");
    entry = d.entry;
  }
  auto last = after_open_failure(entry, policy, t0 + 144 * 600, "4.4.1", "down");
  CHECK(last.entry.state == delivery_state::bounced);
  REQUIRE(last.bounced.size() == 1);
  CHECK(last.bounced[0].address == "bob@x.test");
  CHECK(last.bounced[0].status == "5.4.1");
  CHECK(last.bounced[0].diagnostic
        == "postoffice could not be opened 145 times; last error: down");
  CHECK(last.entry.recipients.empty());
  // 1 attempt and 144 retries: the count is at its limit, never past it.
  CHECK(last.entry.open_retries == 144);
  CHECK(last.entry.attempts == 145);
  REQUIRE(last.recipients.size() == 1);
  CHECK(last.recipients[0].address == "bob@x.test");
  CHECK(last.recipients[0].state == recipient_state::bounced);
  CHECK(last.recipients[0].code == "5.4.1");
  CHECK(last.recipients[0].at == t0 + 144 * 600);
}

TEST_CASE("a legacy open failure is not counted and never bounces without a lifetime") {
  retry_policy policy;
  policy.enforce_retry_limits = false;
  policy.max_lifetime = 0s;
  auto entry = fresh_delivery();
  for (int failure = 1; failure <= 1000; ++failure) {
    auto d = after_open_failure(entry, policy, t0 + failure * 600, "4.4.1", "down");
    REQUIRE(d.bounced.empty());
    entry = d.entry;
  }
  CHECK(entry.open_retries == 0);
  CHECK(entry.attempts == 1000); // uncounted against the limit, but made
  CHECK(entry.state == delivery_state::deferred);
  CHECK_FALSE(after_lifetime_check(entry, policy, t0 + 3650 * 86400));
}

TEST_CASE("max_lifetime bounces in either mode with the last failure's status in class 5") {
  for (bool enforce : {true, false}) {
    retry_policy policy;
    policy.enforce_retry_limits = enforce;
    policy.max_lifetime = 24h;
    auto d = after_open_failure(fresh_delivery(), policy, t0, "4.4.1", "down");
    CHECK(d.bounced.empty());
    auto expired = after_open_failure(d.entry, policy, t0 + 86400, "4.4.1", "down");
    REQUIRE(expired.bounced.size() == 1);
    CHECK(expired.bounced[0].status == "5.4.1");
    CHECK(expired.attempt.outcome == "expired");
    CHECK(expired.entry.attempts == 2); // the open that found the lifetime over was tried
    CHECK(expired.entry.open_retries == d.entry.open_retries); // and not retried
    CHECK_FALSE(after_lifetime_check(d.entry, policy, t0 + 86399));
    auto checked = after_lifetime_check(d.entry, policy, t0 + 86400);
    REQUIRE(checked);
    CHECK(checked->entry.state == delivery_state::bounced);
    CHECK(checked->entry.attempts == 1); // no attempt, only a look at the clock
  }
}

TEST_CASE("a delivery that never failed expires with 5.4.7") {
  retry_policy policy;
  policy.max_lifetime = 1h;
  auto expired = after_lifetime_check(fresh_delivery(), policy, t0 + 3600);
  REQUIRE(expired);
  REQUIRE(expired->bounced.size() == 1);
  CHECK(expired->bounced[0].status == "5.4.7");
  CHECK(lifetime_deadline(fresh_delivery(), policy) == t0 + 3600);
  CHECK(limit_wake(fresh_delivery(), policy) == t0 + 3600);
  policy.max_lifetime = 0s;
  CHECK(limit_wake(fresh_delivery(), policy) == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("temporary transfer failures count, past max_transfer_retries the last status bounces in class 5") {
  retry_policy policy; // 2 transfer retries, 120 s apart
  auto entry = fresh_delivery();
  delivery_outcome busy{7, true, "", "", {result("bob@x.test", recipient_result::temporary_failure, "4.2.1")}};
  for (int failure = 1; failure <= 2; ++failure) {
    auto d = after_transfer(entry, policy, t0 + failure, busy);
    REQUIRE(d.bounced.empty());
    CHECK(d.entry.transfer_retries == failure);
    CHECK(d.entry.next_attempt_at == t0 + failure + 120);
    CHECK(d.entry.last_error_code == "4.2.1");
    CHECK(d.attempt.outcome == "transfer_failed");
    entry = d.entry;
  }
  auto last = after_transfer(entry, policy, t0 + 300, busy);
  REQUIRE(last.bounced.size() == 1);
  CHECK(last.bounced[0].status == "5.2.1");
  CHECK(last.bounced[0].diagnostic_is_reply);
  CHECK(last.entry.state == delivery_state::bounced);
  CHECK(last.entry.transfer_retries == 2); // 2/2, not 3/2
  CHECK(last.entry.attempts == 3);
  // The deferral the limit turned into a bounce is recorded once, bounced.
  REQUIRE(last.recipients.size() == 1);
  CHECK(last.recipients[0].state == recipient_state::bounced);
  CHECK(last.recipients[0].code == "5.2.1");
  CHECK(last.recipients[0].text == "4.2.1 from the server");
}

TEST_CASE("transfer backoff doubles from transfer_interval up to max_transfer_interval") {
  retry_policy policy;
  policy.transfer_interval = 300s;
  policy.max_transfer_interval = 4000s;
  const std::int64_t waits[] = {300, 600, 1200, 2400, 4000, 4000, 4000};
  for (int failures = 1; failures <= 7; ++failures)
    CHECK_MESSAGE(transfer_backoff(policy, failures).count() == waits[failures - 1],
                  "failure " << failures);
  // A long run of failures stays at the cap (no overflow on the way).
  CHECK(transfer_backoff(policy, 1000) == 4000s);
  policy.max_transfer_interval = 36500 * 24h;
  CHECK(transfer_backoff(policy, std::numeric_limits<int>::max()) == 36500 * 24h);
}

TEST_CASE("without a longer max_transfer_interval every transfer wait is transfer_interval") {
  retry_policy policy; // the seed's: 120 s, max_transfer_interval 0
  for (int failures = 1; failures <= 5; ++failures)
    CHECK(transfer_backoff(policy, failures) == 120s);
  policy.max_transfer_interval = 60s; // shorter than transfer_interval: no growth
  CHECK(transfer_backoff(policy, 4) == 120s);
  policy.max_transfer_interval = 120s;
  CHECK(transfer_backoff(policy, 4) == 120s);
}

TEST_CASE("a delivery failing every transfer waits out the backoff between its attempts") {
  retry_policy policy;
  policy.transfer_interval = 300s;
  policy.max_transfer_interval = 4000s;
  policy.max_transfer_retries = 6;
  policy.max_lifetime = 0s;
  auto entry = fresh_delivery();
  delivery_outcome busy{7, true, "", "", {result("bob@x.test", recipient_result::temporary_failure, "4.7.1")}};
  std::int64_t now = t0;
  const std::int64_t waits[] = {300, 600, 1200, 2400, 4000, 4000};
  for (int failure = 1; failure <= 6; ++failure) {
    auto d = after_transfer(entry, policy, now, busy);
    REQUIRE(d.bounced.empty());
    CHECK(d.entry.next_attempt_at == now + waits[failure - 1]);
    now = d.entry.next_attempt_at;
    entry = d.entry;
  }
  // The 7th failure is past max_transfer_retries: 12,500 s after the first.
  CHECK(now == t0 + 12500);
  auto last = after_transfer(entry, policy, now, busy);
  REQUIRE(last.bounced.size() == 1);
  CHECK(last.bounced[0].status == "5.7.1");
}

TEST_CASE("one outcome delivers, rejects and defers different recipients") {
  retry_policy policy;
  auto entry = fresh_delivery({"a@x.test", "b@x.test", "c@x.test"});
  delivery_outcome mixed{7, true, "", "", {
    result("a@x.test", recipient_result::delivered, "2.0.0"),
    result("b@x.test", recipient_result::permanent_failure, "5.1.1"),
    result("c@x.test", recipient_result::temporary_failure, "4.3.0"),
  }};
  auto d = after_transfer(entry, policy, t0, mixed);
  REQUIRE(d.bounced.size() == 1);
  CHECK(d.bounced[0].address == "b@x.test");
  CHECK(d.bounced[0].status == "5.1.1");
  REQUIRE(d.recipients.size() == 3);
  const std::pair<recipient_state, std::string> expected[] = {
    {recipient_state::delivered, "2.0.0"},
    {recipient_state::bounced, "5.1.1"},
    {recipient_state::deferred, "4.3.0"}};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(d.recipients[i].address == mixed.recipients[i].address);
    CHECK(d.recipients[i].state == expected[i].first);
    CHECK(d.recipients[i].code == expected[i].second);
    CHECK(d.recipients[i].text == expected[i].second + " from the server");
    CHECK(d.recipients[i].at == t0);
  }
  CHECK(d.entry.recipients == std::vector<std::string>{"c@x.test"});
  CHECK(d.entry.state == delivery_state::deferred);
  CHECK(d.entry.transfer_retries == 1);
  delivery_outcome rest{7, true, "", "", {result("c@x.test", recipient_result::delivered, "2.0.0")}};
  auto done = after_transfer(d.entry, policy, t0 + 120, rest);
  CHECK(done.bounced.empty());
  CHECK(done.entry.state == delivery_state::delivered);
  CHECK(done.attempt.outcome == "delivered");
  CHECK(done.entry.attempts == 2);
  REQUIRE(done.recipients.size() == 1);
  CHECK(done.recipients[0].state == recipient_state::delivered);
}

TEST_CASE("a permanent failure of every recipient bounces at once") {
  retry_policy policy;
  delivery_outcome rejected{7, true, "", "", {result("bob@x.test", recipient_result::permanent_failure, "5.1.1")}};
  auto d = after_transfer(fresh_delivery(), policy, t0, rejected);
  CHECK(d.entry.state == delivery_state::bounced);
  REQUIRE(d.bounced.size() == 1);
  CHECK(d.entry.transfer_retries == 0);
  CHECK(d.entry.attempts == 1);
}

TEST_CASE("recipients the postoffice did not report on stay queued") {
  retry_policy policy;
  auto entry = fresh_delivery({"a@x.test", "b@x.test"});
  delivery_outcome partial{7, true, "", "", {result("a@x.test", recipient_result::delivered, "2.0.0")}};
  auto d = after_transfer(entry, policy, t0, partial);
  CHECK(d.entry.recipients == std::vector<std::string>{"b@x.test"});
  CHECK(d.entry.state == delivery_state::deferred);
}

TEST_CASE("one delay warning per delivery, once delay_warning has passed") {
  retry_policy policy;
  policy.delay_warning = 4h;
  auto d = after_open_failure(fresh_delivery(), policy, t0, "4.4.1", "down");
  CHECK(limit_wake(d.entry, policy) == t0 + 4 * 3600);
  CHECK_FALSE(after_delay_check(d.entry, policy, t0 + 4 * 3600 - 1));
  auto warning = after_delay_check(d.entry, policy, t0 + 4 * 3600);
  REQUIRE(warning);
  CHECK(warning->entry.delay_warned);
  CHECK(warning->entry.state == delivery_state::deferred);
  CHECK(warning->bounced.empty());
  REQUIRE(warning->delayed.size() == 1);
  CHECK(warning->delayed[0].status == "4.4.1");
  CHECK_FALSE(after_delay_check(warning->entry, policy, t0 + 10 * 3600));
  policy.delay_warning = 0s;
  CHECK_FALSE(after_delay_check(d.entry, policy, t0 + 10 * 3600));
}

TEST_CASE("a deletion with an NDR bounces every recipient with 5.0.0") {
  auto entry = fresh_delivery({"bob@x.test", "eve@x.test"});
  entry.open_retries = 3;
  auto d = after_deletion(entry, 1'700'000'500);
  CHECK(d.entry.state == delivery_state::bounced);
  CHECK(d.entry.recipients.empty());
  CHECK(d.entry.open_retries == 3);
  REQUIRE(d.bounced.size() == 2);
  CHECK(d.bounced[1].address == "eve@x.test");
  CHECK(d.bounced[0].status == "5.0.0");
  CHECK(d.bounced[0].diagnostic == "deleted from the queue by the administrator");
  CHECK(d.attempt.outcome == "deleted");
  CHECK(d.attempt.at == 1'700'000'500);
  REQUIRE(d.recipients.size() == 2);
  CHECK(d.recipients[1].address == "eve@x.test");
  CHECK(d.recipients[1].state == recipient_state::bounced);
  CHECK(d.recipients[1].code == "5.0.0");
  CHECK(d.recipients[1].at == 1'700'000'500);
}

TEST_CASE("a requeue moves the delivery with fresh counts, due now, and a held one stays held") {
  auto entry = fresh_delivery({"bob@x.test"});
  entry.state = delivery_state::deferred;
  entry.open_retries = 7;
  entry.transfer_retries = 2;
  entry.attempts = 9;
  entry.first_attempt_at = 1'700'000'010;
  entry.last_error_code = "4.4.1";
  auto d = after_requeue(entry, "other", 1'700'000'500);
  CHECK(d.entry.postoffice == "other");
  CHECK(d.entry.state == delivery_state::queued);
  CHECK(d.entry.open_retries == 0);
  CHECK(d.entry.transfer_retries == 0);
  CHECK(d.entry.attempts == 0);
  CHECK(d.entry.first_attempt_at == 0);
  CHECK(d.entry.next_attempt_at == 1'700'000'500);
  CHECK(d.entry.queued_at == entry.queued_at);
  CHECK(d.entry.last_error_code.empty());
  CHECK(d.bounced.empty());
  CHECK(d.attempt.outcome == "requeued");
  CHECK(d.attempt.text == "requeued from " + entry.postoffice + " to other by the administrator");
  entry.state = delivery_state::held;
  CHECK(after_requeue(entry, "other", 1'700'000'500).entry.state == delivery_state::held);
}

TEST_CASE("a count above a limit a reload lowered bounces at the next failure") {
  retry_policy policy;
  auto entry = fresh_delivery();
  entry.open_retries = 50;
  entry.attempts = 51;
  policy.max_open_retries = 10;
  auto d = after_open_failure(entry, policy, t0, "4.4.1", "down");
  CHECK(d.entry.state == delivery_state::bounced);
  CHECK(d.entry.open_retries == 50);
  CHECK(d.entry.attempts == 52);
  CHECK(d.bounced[0].diagnostic == "postoffice could not be opened 51 times; last error: down");
}

TEST_CASE("a failed open ahead of schedule uses no retry and keeps the scheduled attempt") {
  retry_policy policy;
  policy.max_open_retries = 2;
  auto entry = fresh_delivery();
  entry.open_retries = 2; // at its limit: the next scheduled failure bounces
  entry.attempts = 3;
  entry.next_attempt_at = t0 + 600;
  auto early = after_open_failure(entry, policy, t0 + 10, "4.4.1", "down",
                                  attempt_timing::ahead_of_schedule);
  CHECK(early.bounced.empty());
  CHECK(early.entry.state == delivery_state::deferred);
  CHECK(early.entry.open_retries == 2);
  CHECK(early.entry.attempts == 4);
  CHECK(early.entry.unscheduled_failures == 1);
  CHECK(early.entry.next_attempt_at == t0 + 600);
  CHECK(early.attempt.outcome == "open_failed");
  CHECK(early.attempt.text == "down (ahead of schedule: no retry used)");
  // At its scheduled time the same failure bounces, as without the early one.
  auto scheduled = after_open_failure(early.entry, policy, t0 + 600, "4.4.1", "down",
                                      attempt_timing::ahead_of_schedule);
  CHECK(scheduled.entry.state == delivery_state::bounced);
  CHECK(scheduled.entry.unscheduled_failures == 1);
  CHECK(scheduled.bounced.at(0).diagnostic
        == "postoffice could not be opened 3 times; last error: down");
}

TEST_CASE("a transfer failure ahead of schedule uses no retry, and a permanent failure still bounces") {
  retry_policy policy;
  policy.max_transfer_retries = 1;
  auto entry = fresh_delivery({"bob@x.test", "carol@x.test"});
  entry.transfer_retries = 1;
  entry.next_attempt_at = t0 + 240;
  delivery_outcome outcome{7, true, "", "",
                           {result("bob@x.test", recipient_result::temporary_failure, "4.2.2"),
                            result("carol@x.test", recipient_result::permanent_failure,
                                   "5.1.1")}};
  auto early = after_transfer(entry, policy, t0 + 30, outcome,
                              attempt_timing::ahead_of_schedule);
  CHECK(early.entry.state == delivery_state::deferred);
  CHECK(early.entry.recipients == std::vector<std::string>{"bob@x.test"});
  CHECK(early.entry.transfer_retries == 1);
  CHECK(early.entry.next_attempt_at == t0 + 240);
  CHECK(early.entry.unscheduled_failures == 1);
  REQUIRE(early.bounced.size() == 1);
  CHECK(early.bounced[0].address == "carol@x.test");
  // Scheduled, the same outcome finds the count at its limit and bounces bob.
  auto scheduled = after_transfer(entry, policy, t0 + 240, outcome,
                                  attempt_timing::ahead_of_schedule);
  CHECK(scheduled.entry.state == delivery_state::bounced);
  CHECK(scheduled.bounced.size() == 2);
  CHECK(scheduled.entry.unscheduled_failures == 0);
}

TEST_CASE("an attempt ahead of schedule past the lifetime still expires") {
  retry_policy policy;
  policy.max_lifetime = 3600s;
  auto entry = fresh_delivery();
  entry.next_attempt_at = t0 + 4000;
  auto early = after_open_failure(entry, policy, t0 + 3700, "4.4.1", "down",
                                  attempt_timing::ahead_of_schedule);
  CHECK(early.entry.state == delivery_state::bounced);
  CHECK(early.attempt.outcome == "expired");
  CHECK(early.entry.unscheduled_failures == 0);
}

TEST_CASE("a delivery in doubt since a restart is not bounced for failed opens, only by its lifetime") {
  retry_policy policy;
  policy.max_open_retries = 2;
  policy.max_lifetime = 3600s;
  auto entry = fresh_delivery();
  entry.open_retries = 2;
  entry.in_doubt = true;
  auto failed = after_open_failure(entry, policy, t0 + 600, "4.4.1", "down");
  CHECK(failed.entry.state == delivery_state::deferred);
  CHECK(failed.bounced.empty());
  CHECK(failed.entry.open_retries == 2);
  CHECK(failed.entry.in_doubt);
  CHECK(failed.attempt.text == "down (in doubt since a restart: not bounced for failed opens)");
  auto expired = after_open_failure(failed.entry, policy, t0 + 3600, "4.4.1", "down");
  CHECK(expired.entry.state == delivery_state::bounced);
  CHECK(expired.attempt.outcome == "expired");
  // An attempt that opens settles it.
  delivery_outcome delivered{7, true, "", "",
                             {result("bob@x.test", recipient_result::delivered, "2.0.0")}};
  auto settled = after_transfer(failed.entry, policy, t0 + 700, delivered);
  CHECK(settled.entry.state == delivery_state::delivered);
  CHECK_FALSE(settled.entry.in_doubt);
}
