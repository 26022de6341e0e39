// NAME
//   etcd_client -- leases, keys and two transactions on etcd's v3 API.
//
// DESCRIPTION
//   A small synchronous client for what cluster coordination needs from
//   etcd (3.4 or later), spoken over etcd's JSON gateway: each call is one
//   HTTP POST to /v3/... with a JSON body, keys and values in base64. Each
//   call opens its own connection, so one client may be used from several
//   threads at once; each blocks its thread for at most the bounds below.
//
//   Endpoints: "http://HOST:PORT" (an IPv6 HOST in brackets), one per etcd
//   member. A call goes to the endpoint that answered last and moves on to
//   the next one when that one cannot be reached, times out, or answers
//   that it is unavailable (a member without a leader); it fails as
//   `unreachable` only when every endpoint has been tried, naming each and
//   why. Each endpoint gets `timeout` to connect and `timeout` for each
//   read and write, so a call with every endpoint down returns within about
//   2 x timeout x endpoints (a refused connection costs no wait at all; only
//   a server that trickles its answer could hold a call longer).
//   Network trouble never throws: it is an etcd_error in the result.
//
//   What a caller can rely on:
//   - Lease time. When grant or keep_alive returns ok with TTL t, etcd
//     received the request after the caller called and set the lease to
//     expire t after it received it. A caller that reads its clock *before*
//     the call therefore knows a lower bound of the lease's expiry on etcd:
//     its keys stay at least until that reading + t (on clocks that run at
//     the same rate; etcd's leader measures with its monotonic clock). etcd
//     removes them only after expiry (its leader looks about every 500 ms),
//     and a new leader extends every lease rather than shortening it. This
//     is what fencing builds on: a holder that stops acting before
//     reading + t (less a margin for clock rate) has stopped before anyone
//     can see its keys vanish. A keepalive that failed may still have
//     reached etcd: it proves nothing to the caller, but the lease may be
//     longer than the caller knows, never shorter.
//   - TTLs. etcd raises a TTL below its minimum (1.5 election timeouts,
//     rounded up to seconds: 2 s with etcd's default settings) to that
//     minimum; the granted TTL is the one to count with.
//   - Writes that end unreachable. An endpoint that took a request and then
//     did not answer may have applied it, and the next endpoint is then
//     asked the same thing. A repeated put or delete leaves the same keys; create_if_absent
//     may then report lost with this caller's own value and lease as the
//     holder's: a caller recognises its own claim by the holder's lease.
//   - Lease not found: a lease that was never granted, was revoked, or has
//     expired is `lease_not_found` for keep_alive, time_to_live, revoke and
//     for a put or create_if_absent with that lease.
//   - Revisions. get, get_prefix and create_if_absent carry etcd's store
//     revision as of their read; put and revoke return the revision of their
//     write. A key's mod_revision is the revision of its last write and
//     identifies that write for delete_if_mod_revision.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace postconn {

/// Why a call to etcd failed.
enum class etcd_failure {
  /// No endpoint answered: each was refused, timed out, broke off, answered
  /// what is not etcd's v3 API, or said it is unavailable.
  unreachable,
  /// etcd refused the request; the message is etcd's.
  refused,
  /// The lease does not exist: never granted, revoked, or expired.
  lease_not_found,
};

/// A failed call: what kind of failure and a line for the log, e.g.
/// "no etcd endpoint answered: http://10.0.0.1:2379: connection refused;
/// http://10.0.0.2:2379: no answer within 500 ms".
struct etcd_error {
  etcd_failure failure = etcd_failure::unreachable;
  std::string message;
};

/// A call's answer, or why there is none.
template <class T>
class etcd_result {
public:
  etcd_result(T value) : outcome_{std::in_place_index<0>, std::move(value)} {
  }
  etcd_result(etcd_error error) : outcome_{std::in_place_index<1>, std::move(error)} {
  }

  bool ok() const {
    return outcome_.index() == 0;
  }
  explicit operator bool() const {
    return ok();
  }
  /// The answer; only when ok() (else std::bad_variant_access).
  const T& value() const {
    return std::get<0>(outcome_);
  }
  const T& operator*() const {
    return value();
  }
  const T* operator->() const {
    return &value();
  }
  /// Why it failed; only when !ok() (else std::bad_variant_access).
  const etcd_error& error() const {
    return std::get<1>(outcome_);
  }

private:
  std::variant<T, etcd_error> outcome_;
};

/// One key as etcd holds it.
struct etcd_key_value {
  std::string key;
  std::string value;
  /// The revision of the write that created the key (since it last did not exist).
  std::int64_t create_revision = 0;
  /// The revision of the key's last write.
  std::int64_t mod_revision = 0;
  /// Writes since the key was created, 1 for the first.
  std::int64_t version = 0;
  /// The lease the key is attached to; 0 for none.
  std::int64_t lease = 0;
};

/// The keys a read found, and etcd's revision when it read them.
struct etcd_range {
  std::int64_t revision = 0;
  /// In ascending order of key.
  std::vector<etcd_key_value> keys;
};

/// A granted lease.
struct etcd_lease {
  std::int64_t id = 0;
  /// The TTL etcd granted: the one asked for, or etcd's minimum if larger.
  std::chrono::seconds ttl{0};
};

/// A lease's time as etcd sees it.
struct etcd_lease_time {
  /// Time left until it expires, rounded down to seconds.
  std::chrono::seconds remaining{0};
  /// The TTL it was granted; each keepalive sets it back to this.
  std::chrono::seconds granted{0};
};

/// The outcome of create_if_absent.
struct etcd_claim {
  /// This call created the key.
  bool won = false;
  /// The key as it is now: this caller's when won, else the holder's.
  etcd_key_value holder;
  std::int64_t revision = 0;
};

class etcd_client {
public:
  /// A client of the etcd members at `endpoints` ("http://HOST:PORT"), each
  /// call bounded as the DESCRIPTION says. Throws std::invalid_argument for
  /// no endpoints or one that is not http://HOST:PORT, or a timeout that is
  /// not positive.
  etcd_client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);

  /// Grants a lease of `ttl` (at least 1 s; etcd may raise it).
  etcd_result<etcd_lease> grant(std::chrono::seconds ttl) const;

  /// One keepalive round: etcd sets the lease to expire its TTL after it
  /// receives this. Returns that TTL.
  etcd_result<std::chrono::seconds> keep_alive(std::int64_t lease) const;

  /// Revokes the lease and deletes its keys. Returns the revision.
  etcd_result<std::int64_t> revoke(std::int64_t lease) const;

  /// The lease's remaining and granted TTL.
  etcd_result<etcd_lease_time> time_to_live(std::int64_t lease) const;

  /// Writes `key` = `value`, attached to `lease` (0: none; the key then
  /// lives until deleted). Returns the revision of the write.
  etcd_result<std::int64_t> put(const std::string& key, const std::string& value,
                                std::int64_t lease = 0) const;

  /// `key`, if it exists: no keys or one.
  etcd_result<etcd_range> get(const std::string& key) const;

  /// Every key that starts with `prefix` ("" for every key).
  etcd_result<etcd_range> get_prefix(const std::string& prefix) const;

  /// Deletes `key`. Returns how many keys were deleted (0 or 1).
  etcd_result<std::int64_t> delete_key(const std::string& key) const;

  /// Creates `key` = `value` attached to `lease` only if no such key
  /// exists, in one transaction: exactly one of several callers wins.
  etcd_result<etcd_claim> create_if_absent(const std::string& key, const std::string& value,
                                           std::int64_t lease) const;

  /// Writes `key` = `value` (no lease) only if `absent` does not exist, in
  /// one transaction. Returns whether it did.
  etcd_result<bool> put_unless_exists(const std::string& key, const std::string& value,
                                      const std::string& absent) const;

  /// Deletes `key` only if its value is `value`. Returns whether it did.
  etcd_result<bool> delete_if_value(const std::string& key, const std::string& value) const;

  /// Deletes `key` only if its last write was at `mod_revision`. Returns
  /// whether it did.
  etcd_result<bool> delete_if_mod_revision(const std::string& key,
                                           std::int64_t mod_revision) const;

  const std::vector<std::string>& endpoints() const {
    return endpoints_;
  }

private:
  struct endpoint_address {
    std::string host;
    int port = 0;
  };

  /// POSTs `request` to `path` on the endpoints in turn, from the one that
  /// answered last: etcd's reply, or why there is none.
  etcd_result<nlohmann::json> call(const std::string& path,
                                   const nlohmann::json& request) const;

  std::vector<std::string> endpoints_;
  std::vector<endpoint_address> addresses_;
  std::chrono::milliseconds timeout_;
  /// The endpoint that answered last: the first one the next call tries.
  mutable std::atomic<std::size_t> preferred_{0};
};

} // namespace postconn
