// NAME
//   policy -- how a postoffice is to be tried: its retry policy and its TLS.
//
// DESCRIPTION
//   Set by the config ([retry], [[postoffice]]) and carried in messages, so
//   the words live here and the config only fills them in.
#pragma once

#include <chrono>
#include <cstdint>

#include <caf/meta/type_name.hpp>

namespace postconn {

/// TLS towards an SMTP/LMTP postoffice: none; may (STARTTLS when the
/// server offers it, any certificate); verify (STARTTLS required, and the
/// certificate must chain to a trusted CA and name the server).
enum class tls_policy : std::uint8_t { none, may, verify };

/// Retry policy of a postoffice (mirrors the Exchange MTA's connection retry
/// values). A zero duration disables `max_lifetime` and `delay_warning`.
struct retry_policy {
  /// Failed opens tolerated before the NDR (the 145th failure bounces).
  int max_open_retries = 144;
  /// Wait after a failed open, and between idle probes.
  std::chrono::seconds open_interval{600};
  /// Temporary transfer failures tolerated before the NDR.
  int max_transfer_retries = 2;
  /// Wait after the first temporary transfer failure.
  std::chrono::seconds transfer_interval{120};
  /// Backoff: the wait doubles with each further transfer failure up to
  /// this. 0 (or no more than transfer_interval): always transfer_interval.
  std::chrono::seconds max_transfer_interval{0};
  /// KB 277831 fix: count failed opens. false = legacy, never counted.
  bool enforce_retry_limits = true;
  /// Undelivered this long after queueing: bounce. 0 disables.
  std::chrono::seconds max_lifetime{5 * 24 * 3600};
  /// Undelivered this long: one "delayed" DSN. 0 disables.
  std::chrono::seconds delay_warning{0};
  /// A postoffice that is down is probed this often (not only every
  /// open_interval), and when it is up again its deferred deliveries are
  /// due at once. 0: probed every open_interval, deliveries keep their times.
  std::chrono::seconds recovery_probe_interval{10};
  /// Deferred deliveries made due per second when their postoffice is up
  /// again, so a recovering postoffice is not flooded.
  int recovery_rate = 100;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, retry_policy& x) {
  return f(caf::meta::type_name("retry_policy"), x.max_open_retries, x.open_interval,
           x.max_transfer_retries, x.transfer_interval, x.max_transfer_interval,
           x.enforce_retry_limits, x.max_lifetime, x.delay_warning, x.recovery_probe_interval,
           x.recovery_rate);
}

} // namespace postconn
