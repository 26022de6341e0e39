// NAME
//   mail_server_cache -- SMTP/LMTP connections kept open between batches
//   for the next batch to the same server, as Postfix's connection cache.
//
// DESCRIPTION
//   After a batch, a share worker parks its still sound connection here
//   under the session's key: the server's address, the protocol, our EHLO
//   name and the TLS settings. Sessions with one key are alike, whichever
//   postoffice opened them, so any of them may take it. The next open with
//   that key takes the connection parked last and checks it with RSET
//   (mail_server_connection::still_open) before it connects anew.
//
//   A connection is kept at most `idle` after its batch and reused until
//   `age` after it was opened; at most `per_key` are kept per key (a burst
//   of parallel batches to one server leaves no more open than that; the
//   rest say QUIT). close_expired() closes those past a limit, and the
//   share pool calls it on its timer; the rest are closed with the cache.
//   Thread-safe: workers park and take from their own threads; the network
//   work (RSET, QUIT) happens outside the lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/delivery/mail_server_session.hpp"

namespace postconn {

/// How long, and how many, connections are kept.
struct kept_connection_limits {
  std::chrono::steady_clock::duration idle = std::chrono::seconds{2};
  std::chrono::steady_clock::duration age = std::chrono::seconds{300};
  std::size_t per_key = 10;
};

class mail_server_cache {
public:
  using clock = std::chrono::steady_clock;

  explicit mail_server_cache(kept_connection_limits limits = {});
  /// Closes every connection still kept (QUIT).
  ~mail_server_cache();
  mail_server_cache(const mail_server_cache&) = delete;
  mail_server_cache& operator=(const mail_server_cache&) = delete;

  /// The key of the sessions `job` would open.
  static std::string key_of(const mail_server_job& job);

  /// A connection kept under `key` and not expired at `now`, or none.
  std::unique_ptr<mail_server_connection> take(const std::string& key, clock::time_point now);

  /// Keeps `connection` (kept() true) under `key`, from `now`.
  void park(const std::string& key, std::unique_ptr<mail_server_connection> connection,
            clock::time_point now);

  /// Closes the connections expired at `now`; when the next one expires.
  std::optional<clock::time_point> close_expired(clock::time_point now);

  /// How many connections are kept.
  std::size_t size() const;

private:
  struct parked {
    std::unique_ptr<mail_server_connection> connection;
    clock::time_point expires;
  };

  kept_connection_limits limits_;
  mutable std::mutex mutex_;
  /// Per key, oldest first.
  std::map<std::string, std::vector<parked>> kept_;
};

} // namespace postconn
