// NAME
//   ledger_rules -- what an attempt's outcome does to a ledger (see ledger_rules.hpp).
#include "runtime/retry/ledger_rules.hpp"

#include <algorithm>
#include <limits>

#include "runtime/mail/dsn.hpp"

namespace postconn {

namespace {

/// Status of a delivery whose lifetime ran out: the last failure's, in
/// class 5, or 5.4.7 when no attempt ever failed.
std::string lifetime_status(const ledger_entry& entry) {
  return entry.last_error_code.empty() ? std::string{"5.4.7"}
                                       : permanent_status(entry.last_error_code);
}

/// Notes where a recipient stands now, replacing what the decision said of
/// it before (a deferral the transfer limit turns into a bounce).
void note_recipient(ledger_decision& decision, const std::string& address,
                    recipient_state state, const std::string& code, const std::string& text) {
  auto& records = decision.recipients;
  auto known = std::find_if(records.begin(), records.end(),
                            [&](const recipient_record& r) { return r.address == address; });
  recipient_record record{address, state, code, text, decision.attempt.at};
  if (known == records.end())
    records.push_back(std::move(record));
  else
    *known = std::move(record);
}

/// Bounces every remaining recipient with `status`.
void bounce_all(ledger_decision& decision, const std::string& status,
                const std::string& diagnostic, bool is_reply) {
  for (auto& rcpt : decision.entry.recipients) {
    decision.bounced.push_back({rcpt, status, diagnostic, is_reply});
    note_recipient(decision, rcpt, recipient_state::bounced, status, diagnostic);
  }
  decision.entry.recipients.clear();
  decision.entry.state = delivery_state::bounced;
}

bool lifetime_over(const ledger_entry& entry, const retry_policy& policy,
                   std::int64_t now) {
  auto deadline = lifetime_deadline(entry, policy);
  return deadline != 0 && now >= deadline;
}

void expire(ledger_decision& decision) {
  auto status = lifetime_status(decision.entry);
  auto text = decision.entry.last_error_text.empty()
                ? std::string{"delivery time expired"}
                : "delivery time expired; last error: " + decision.entry.last_error_text;
  decision.attempt.outcome = "expired";
  decision.attempt.code = status;
  decision.attempt.text = text;
  bounce_all(decision, status, text, false);
}

/// A decision on an attempt: one more attempt made.
ledger_decision start(const ledger_entry& entry, std::int64_t now) {
  ledger_decision decision{entry, {}, {}, {}, {}};
  decision.attempt.delivery_id = entry.delivery_id;
  decision.attempt.at = now;
  if (decision.entry.first_attempt_at == 0)
    decision.entry.first_attempt_at = now;
  ++decision.entry.attempts;
  return decision;
}

bool ahead_of_schedule(const ledger_entry& entry, std::int64_t now, attempt_timing timing) {
  return timing == attempt_timing::ahead_of_schedule && entry.next_attempt_at > now;
}

/// The policy an attempt ahead of schedule is decided by: no retry limit
/// bounces it (its lifetime still does).
retry_policy without_retry_limits(retry_policy policy) {
  policy.max_open_retries = std::numeric_limits<int>::max();
  policy.max_transfer_retries = std::numeric_limits<int>::max();
  return policy;
}

/// An attempt ahead of schedule left the delivery deferred: its counts and
/// its next attempt stay as they were, and the failure is counted apart.
void keep_schedule(const ledger_entry& before, ledger_decision& decision) {
  auto& e = decision.entry;
  if (e.state != delivery_state::deferred)
    return;
  e.open_retries = before.open_retries;
  e.transfer_retries = before.transfer_retries;
  e.next_attempt_at = before.next_attempt_at;
  ++e.unscheduled_failures;
  decision.attempt.text += " (ahead of schedule: no retry used)";
}

} // namespace

std::chrono::seconds transfer_backoff(const retry_policy& policy, int failures) {
  auto wait = policy.transfer_interval;
  auto cap = std::max(policy.max_transfer_interval, policy.transfer_interval);
  // Doubling stops at the cap, so the wait never overflows.
  for (int n = 1; n < failures && wait < cap; ++n)
    wait *= 2;
  return std::min(wait, cap);
}

std::int64_t lifetime_deadline(const ledger_entry& entry, const retry_policy& policy) {
  return policy.max_lifetime.count() == 0 ? 0
                                          : entry.queued_at + policy.max_lifetime.count();
}

std::int64_t limit_wake(const ledger_entry& entry, const retry_policy& policy) {
  auto wake = std::numeric_limits<std::int64_t>::max();
  if (auto deadline = lifetime_deadline(entry, policy); deadline != 0)
    wake = deadline;
  if (policy.delay_warning.count() > 0 && !entry.delay_warned)
    wake = std::min(wake, entry.queued_at + policy.delay_warning.count());
  return wake;
}

ledger_decision after_requeue(const ledger_entry& entry, const std::string& postoffice,
                              std::int64_t now) {
  ledger_decision decision{entry, {}, {}, {}, {}};
  auto& moved = decision.entry;
  moved.postoffice = postoffice;
  if (moved.state != delivery_state::held)
    moved.state = delivery_state::queued;
  moved.open_retries = 0;
  moved.transfer_retries = 0;
  moved.attempts = 0;
  moved.first_attempt_at = 0;
  moved.next_attempt_at = now;
  moved.last_error_code.clear();
  moved.last_error_text.clear();
  decision.attempt = {entry.delivery_id, now, "requeued", "",
                      "requeued from " + entry.postoffice + " to " + postoffice
                        + " by the administrator"};
  return decision;
}

ledger_decision after_deletion(const ledger_entry& entry, std::int64_t now) {
  ledger_decision decision{entry, {}, {}, {}, {}};
  const std::string text = "deleted from the queue by the administrator";
  decision.attempt = {entry.delivery_id, now, "deleted", "5.0.0", text};
  bounce_all(decision, "5.0.0", text, false);
  return decision;
}

std::optional<ledger_decision> after_delay_check(const ledger_entry& entry,
                                                 const retry_policy& policy,
                                                 std::int64_t now) {
  if (policy.delay_warning.count() == 0 || entry.delay_warned
      || now < entry.queued_at + policy.delay_warning.count())
    return std::nullopt;
  ledger_decision decision{entry, {}, {}, {}, {}};
  decision.entry.delay_warned = true;
  auto status = entry.last_error_code.rfind("4.", 0) == 0 ? entry.last_error_code
                                                           : std::string{"4.4.7"};
  auto text = entry.last_error_text.empty() ? std::string{"not delivered yet"}
                                            : entry.last_error_text;
  for (const auto& rcpt : entry.recipients)
    decision.delayed.push_back({rcpt, status, text, false});
  decision.attempt = {entry.delivery_id, now, "delay_warned", status, text};
  return decision;
}

ledger_decision after_open_failure(const ledger_entry& entry,
                                   const retry_policy& policy, std::int64_t now,
                                   const std::string& status,
                                   const std::string& text, attempt_timing timing) {
  if (ahead_of_schedule(entry, now, timing)) {
    auto decision = after_open_failure(entry, without_retry_limits(policy), now, status, text);
    keep_schedule(entry, decision);
    return decision;
  }
  auto decision = start(entry, now);
  auto& e = decision.entry;
  e.last_error_code = status;
  e.last_error_text = text;
  e.state = delivery_state::deferred;
  e.next_attempt_at = now + policy.open_interval.count();
  decision.attempt.outcome = "open_failed";
  decision.attempt.code = status;
  decision.attempt.text = text;
  auto at_limit = policy.enforce_retry_limits && e.open_retries >= policy.max_open_retries;
  if (at_limit && !e.in_doubt) {
    // Every failed open was counted, this one too: retries + 1.
    bounce_all(decision, "5.4.1",
               "postoffice could not be opened " + std::to_string(e.open_retries + 1)
                 + " times; last error: " + text,
               false);
  } else if (lifetime_over(e, policy, now)) {
    expire(decision);
  } else if (at_limit) {
    // It may have reached the postoffice before a restart: only an open
    // (or its lifetime) can tell, not the count of failed opens.
    decision.attempt.text += " (in doubt since a restart: not bounced for failed opens)";
  } else if (policy.enforce_retry_limits) {
    ++e.open_retries;
  }
  return decision;
}

ledger_decision after_transfer(const ledger_entry& entry, const retry_policy& policy,
                               std::int64_t now, const delivery_outcome& outcome,
                               attempt_timing timing) {
  if (ahead_of_schedule(entry, now, timing)) {
    auto decision = after_transfer(entry, without_retry_limits(policy), now, outcome);
    keep_schedule(entry, decision);
    return decision;
  }
  auto decision = start(entry, now);
  auto& e = decision.entry;
  e.in_doubt = false; // opened: this outcome is the one of record
  std::vector<std::string> remaining;
  const recipient_outcome* last_temporary = nullptr;
  int delivered = 0;
  for (const auto& rcpt : outcome.recipients) {
    switch (rcpt.result) {
      case recipient_result::delivered:
        ++delivered;
        note_recipient(decision, rcpt.address, recipient_state::delivered, rcpt.status,
                       rcpt.text);
        break;
      case recipient_result::permanent_failure: {
        auto status = permanent_status(rcpt.status);
        decision.bounced.push_back({rcpt.address, status, rcpt.text, rcpt.text_is_reply});
        note_recipient(decision, rcpt.address, recipient_state::bounced, status, rcpt.text);
        break;
      }
      case recipient_result::temporary_failure:
        remaining.push_back(rcpt.address);
        last_temporary = &rcpt;
        note_recipient(decision, rcpt.address, recipient_state::deferred, rcpt.status,
                       rcpt.text);
        break;
    }
  }
  // Recipients the postoffice did not report on stay queued.
  for (const auto& rcpt : e.recipients) {
    bool reported = std::any_of(outcome.recipients.begin(), outcome.recipients.end(),
                                [&](const auto& r) { return r.address == rcpt; });
    if (!reported)
      remaining.push_back(rcpt);
  }
  e.recipients = remaining;
  decision.attempt.outcome = !remaining.empty() ? "transfer_failed"
                             : delivered > 0    ? "delivered"
                                                : "rejected";
  decision.attempt.text = std::to_string(delivered) + " delivered, "
                          + std::to_string(decision.bounced.size()) + " rejected, "
                          + std::to_string(remaining.size()) + " deferred";
  if (remaining.empty()) {
    e.state = decision.bounced.empty() || delivered > 0 ? delivery_state::delivered
                                                          : delivery_state::bounced;
    return decision;
  }
  e.state = delivery_state::deferred;
  // This failure is the delivery's (transfer_retries + 1)-th: its count
  // grows below, once it is known to be retried.
  e.next_attempt_at = now + transfer_backoff(policy, e.transfer_retries + 1).count();
  if (last_temporary) {
    e.last_error_code = last_temporary->status;
    e.last_error_text = last_temporary->text;
    decision.attempt.code = last_temporary->status;
  }
  if (e.transfer_retries >= policy.max_transfer_retries) {
    bounce_all(decision, permanent_status(e.last_error_code),
               last_temporary ? last_temporary->text : e.last_error_text,
               last_temporary && last_temporary->text_is_reply);
  } else if (lifetime_over(e, policy, now)) {
    expire(decision);
  } else {
    ++e.transfer_retries;
  }
  return decision;
}

std::optional<ledger_decision> after_lifetime_check(const ledger_entry& entry,
                                                    const retry_policy& policy,
                                                    std::int64_t now) {
  if (!lifetime_over(entry, policy, now))
    return std::nullopt;
  ledger_decision decision{entry, {}, {}, {}, {}};
  decision.attempt.delivery_id = entry.delivery_id;
  decision.attempt.at = now;
  expire(decision);
  return decision;
}

} // namespace postconn
