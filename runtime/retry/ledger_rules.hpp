// NAME
//   ledger_rules -- what an attempt's outcome does to a delivery's ledger.
//
// DESCRIPTION
//   Plain functions of (ledger entry, retry policy, now, outcome) that
//   return the entry's new values, the line for the attempt log, what
//   became of each recipient, and the recipients to bounce now. They are
//   the README's retry semantics: a failed open counts against
//   max_open_retries only when enforce_retry_limits is on (the KB 277831
//   fix), a temporary transfer failure counts against max_transfer_retries,
//   a permanent failure bounces its recipients at once, and max_lifetime
//   bounces in either mode. The lifetime is checked in every function here,
//   so no path that touches a delivery can skip it.
//
//   An attempt is one open tried (after_open_failure, after_transfer), and
//   every attempt adds one to the entry's `attempts`. A retry count grows
//   only by a failure that is retried: with max_open_retries = 144 the
//   first attempt and 144 retries fail, open_retries reads 144/144, and the
//   145th failed open bounces (the NDR says 145 attempts).
//
//   An attempt made ahead of its schedule (an operator's flush or release,
//   or its postoffice found up again before the delivery's next attempt)
//   is an attempt like any other, but a temporary failure of it uses no
//   retry and cannot bounce by a retry limit: the delivery keeps its counts
//   and its scheduled next attempt, and counts the failure in
//   unscheduled_failures. A permanent failure still bounces and the
//   lifetime still ends it, so trying early cannot keep mail forever.
//
//   A delivery in doubt (an attempt had opened its postoffice when the
//   server stopped, before its outcome was recorded) may already be in the
//   mailbox: a failed open does not bounce it by max_open_retries, since
//   that would tell the sender it failed; its lifetime still ends it. The
//   next attempt that opens settles it (a maildir copy is replaced, not
//   added) and clears the doubt.
//
//   Transfer retries back off exponentially (transfer_backoff()): the wait
//   after the n-th temporary transfer failure is transfer_interval x 2^(n-1),
//   never more than max_transfer_interval, as Postfix's queue manager doubles
//   its wait from minimal_backoff_time to maximal_backoff_time. A
//   max_transfer_interval of 0, or one no longer than transfer_interval,
//   keeps every wait at transfer_interval (the seed's fixed intervals).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/vocabulary.hpp"
#include "runtime/config/config.hpp"

namespace postconn {

/// A recipient to report in an NDR.
struct bounced_recipient {
  std::string address;
  /// Class 5 status ("5.4.1", "5.1.1").
  std::string status;
  std::string diagnostic;
  bool diagnostic_is_reply = false;
};

struct ledger_decision {
  /// The entry's new values: deferred (retry at next_attempt_at),
  /// delivered, or bounced (no recipient left).
  ledger_entry entry;
  /// What happened, for the attempt log.
  attempt_record attempt;
  /// Recipients to report in an NDR now.
  std::vector<bounced_recipient> bounced;
  /// Recipients to report in a delay warning now (status in class 4).
  std::vector<bounced_recipient> delayed;
  /// What became of each recipient the decision tried or bounced, for the
  /// ledger to keep (one per address).
  std::vector<recipient_record> recipients;
};

/// When an attempt was made: when its ledger said, or before (see
/// DESCRIPTION). An attempt is ahead of schedule only while the entry's
/// next_attempt_at is later than the attempt.
enum class attempt_timing { scheduled, ahead_of_schedule };

/// The postoffice could not be opened (probe, connect or greeting failed).
ledger_decision after_open_failure(const ledger_entry& entry,
                                   const retry_policy& policy, std::int64_t now,
                                   const std::string& status,
                                   const std::string& text,
                                   attempt_timing timing = attempt_timing::scheduled);

/// An administrator moved the delivery to `postoffice`: due now with fresh
/// counts there; a held delivery stays held. Its lifetime still runs from
/// acceptance, so requeueing cannot keep mail forever.
ledger_decision after_requeue(const ledger_entry& entry, const std::string& postoffice,
                              std::int64_t now);

/// An administrator deleted the delivery and asked for an NDR: every
/// recipient bounces with 5.0.0.
ledger_decision after_deletion(const ledger_entry& entry, std::int64_t now);

/// The postoffice was opened and every recipient got a result.
ledger_decision after_transfer(const ledger_entry& entry, const retry_policy& policy,
                               std::int64_t now, const delivery_outcome& outcome,
                               attempt_timing timing = attempt_timing::scheduled);

/// The delivery outlived max_lifetime without an attempt deciding it: the
/// bounce, or nothing while it may still wait.
std::optional<ledger_decision> after_lifetime_check(const ledger_entry& entry,
                                                    const retry_policy& policy,
                                                    std::int64_t now);

/// The delivery has waited delay_warning without a warning: the warning
/// (one DSN "delayed" per delivery), or nothing.
std::optional<ledger_decision> after_delay_check(const ledger_entry& entry,
                                                 const retry_policy& policy,
                                                 std::int64_t now);

/// The wait after the `failures`-th temporary transfer failure (1 for the
/// first): transfer_interval doubled failures - 1 times, at most
/// max_transfer_interval (see DESCRIPTION).
std::chrono::seconds transfer_backoff(const retry_policy& policy, int failures);

/// When the delivery's lifetime ends (0: never).
std::int64_t lifetime_deadline(const ledger_entry& entry, const retry_policy& policy);

/// When a limit next acts on the delivery, whatever its attempts: its delay
/// warning or its lifetime's end, whichever is first (INT64_MAX: never).
std::int64_t limit_wake(const ledger_entry& entry, const retry_policy& policy);

} // namespace postconn
