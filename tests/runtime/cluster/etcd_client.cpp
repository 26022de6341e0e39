// Tests runtime/cluster/etcd_client.cpp against a real etcd (etcd_process.hpp):
// leases that hold their keys at least TTL from when they were asked for and
// then let them go, keepalives, one winner of a create-if-absent race,
// prefix ranges, compare-and-delete, endpoints that are dead or not etcd, and
// an etcd killed and restarted under a client.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "runtime/cluster/etcd_client.hpp"
#include "tests/runtime/cluster/etcd_process.hpp"

using namespace postconn;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

constexpr auto request_timeout = 2000ms;

/// Why a call failed, for the test's message; empty when it did not.
template <class T>
std::string problem(const etcd_result<T>& result) {
  return result ? std::string{} : result.error().message;
}

/// What kind of failure a call that must fail had.
template <class T>
etcd_failure failure_of(const etcd_result<T>& result) {
  REQUIRE_FALSE(result);
  return result.error().failure;
}

/// The value of `key`; "" when it does not exist.
std::string value_of(const etcd_client& client, const std::string& key) {
  auto read = client.get(key);
  REQUIRE_MESSAGE(read, problem(read));
  return read->keys.empty() ? std::string{} : read->keys.front().value;
}

/// Reads `key` every 10 ms until it is gone or `deadline` passes; every
/// read that returned before `present_until` must have found it. Returns
/// whether it went.
bool vanishes(const etcd_client& client, const std::string& key,
              steady_clock::time_point present_until, steady_clock::time_point deadline) {
  while (steady_clock::now() < deadline) {
    auto read = client.get(key);
    auto returned = steady_clock::now();
    REQUIRE_MESSAGE(read, problem(read));
    if (read->keys.empty()) {
      CHECK_MESSAGE(returned >= present_until, "the key went before its lease could expire");
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

/// A loopback port that accepts connections (the kernel does, into the
/// backlog) and never answers: a hung etcd.
class silent_listener {
public:
  silent_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0
        || ::listen(fd_, 16) != 0
        || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot listen on loopback");
    port_ = ntohs(address.sin_port);
  }
  ~silent_listener() {
    ::close(fd_);
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

private:
  int fd_ = -1;
  int port_ = 0;
};

/// An HTTP server that answers every POST with `status` and `body`: an
/// etcd member without a leader, or something that is not etcd.
class fake_endpoint {
public:
  fake_endpoint(int status, std::string body) {
    server_.Post(".*", [status, body](const httplib::Request&, httplib::Response& response) {
      response.status = status;
      response.set_content(body, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread{[this] { server_.listen_after_bind(); }};
  }
  ~fake_endpoint() {
    // stop() does nothing to a server that has not started listening yet.
    while (!server_.is_running())
      std::this_thread::yield();
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

/// A test's own etcd and a client of it.
struct etcd_fixture {
  test::etcd_process etcd;
  etcd_client client{{etcd.endpoint()}, request_timeout};
};

std::string dead_endpoint() {
  return "http://127.0.0.1:" + std::to_string(test::free_loopback_port());
}

} // namespace

TEST_CASE("etcd client: endpoints must be http://HOST:PORT, the timeout positive") {
  for (const char* bad : {"", "127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1",
                          "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://:2379",
                          "http://127.0.0.1:23x9", "http://a/b:2379"}) {
    INFO(bad);
    CHECK_THROWS_AS((etcd_client{{bad}, 1s}), std::invalid_argument);
  }
  CHECK_THROWS_AS((etcd_client{{}, 1s}), std::invalid_argument);
  CHECK_THROWS_AS((etcd_client{{"http://127.0.0.1:2379"}, 0ms}), std::invalid_argument);
  etcd_client fine{{"http://127.0.0.1:2379", "http://[::1]:2379/", "http://etcd-1:2379"}, 1s};
  CHECK(fine.endpoints().size() == 3);
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: a key put with a lease reads back with its value, lease and revisions") {
  auto lease = client.grant(30s);
  REQUIRE_MESSAGE(lease, problem(lease));
  CHECK(lease->ttl == 30s);
  auto first = client.put("members/mx1", "10.0.0.1:4200", lease->id);
  REQUIRE_MESSAGE(first, problem(first));
  auto second = client.put("members/mx1", "10.0.0.9:4200", lease->id);
  REQUIRE_MESSAGE(second, problem(second));
  CHECK(*second > *first);

  auto read = client.get("members/mx1");
  REQUIRE_MESSAGE(read, problem(read));
  REQUIRE(read->keys.size() == 1);
  const auto& member = read->keys.front();
  CHECK(member.key == "members/mx1");
  CHECK(member.value == "10.0.0.9:4200");
  CHECK(member.lease == lease->id);
  CHECK(member.create_revision == *first);
  CHECK(member.mod_revision == *second);
  CHECK(member.version == 2);
  CHECK(read->revision == *second);

  auto missing = client.get("members/mx2");
  REQUIRE_MESSAGE(missing, problem(missing));
  CHECK(missing->keys.empty());
  CHECK(missing->revision == *second);

  auto time = client.time_to_live(lease->id);
  REQUIRE_MESSAGE(time, problem(time));
  CHECK(time->granted == 30s);
  CHECK(time->remaining > 25s);
  CHECK(time->remaining <= 30s);

  auto unleased = client.put("config/version", "7");
  REQUIRE_MESSAGE(unleased, problem(unleased));
  auto config = client.get("config/version");
  REQUIRE_MESSAGE(config, problem(config));
  REQUIRE(config->keys.size() == 1);
  CHECK(config->keys.front().lease == 0);
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: keys and values of any bytes round-trip") {
  std::string every_byte;
  for (int c = 0; c < 256; ++c)
    every_byte += static_cast<char>(c);
  auto key = std::string{"k\0\xff\n", 4};
  auto put = client.put(key, every_byte);
  REQUIRE_MESSAGE(put, problem(put));
  CHECK(value_of(client, key) == every_byte);
  auto empty = client.put("empty", "");
  REQUIRE_MESSAGE(empty, problem(empty));
  auto read = client.get("empty");
  REQUIRE_MESSAGE(read, problem(read));
  REQUIRE(read->keys.size() == 1);
  CHECK(read->keys.front().value.empty());
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: a leased key stays until TTL after the grant was sent, then vanishes") {
  auto sent = steady_clock::now();
  auto lease = client.grant(1s);
  REQUIRE_MESSAGE(lease, problem(lease));
  CHECK(lease->ttl >= 1s); // etcd may raise it to its minimum: count with what it granted
  auto put = client.put("owners/sales", "mx1", lease->id);
  REQUIRE_MESSAGE(put, problem(put));

  auto lower_bound = sent + lease->ttl;
  CHECK(vanishes(client, "owners/sales", lower_bound, lower_bound + 5s));

  CHECK(failure_of(client.keep_alive(lease->id)) == etcd_failure::lease_not_found);
  CHECK(failure_of(client.time_to_live(lease->id)) == etcd_failure::lease_not_found);
  CHECK(failure_of(client.put("owners/sales", "mx1", lease->id)) == etcd_failure::lease_not_found);
  CHECK(value_of(client, "owners/sales").empty());
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: keepalives keep a leased key past its TTL, and it goes once they stop") {
  auto lease = client.grant(1s);
  REQUIRE_MESSAGE(lease, problem(lease));
  auto put = client.put("members/mx1", "alive", lease->id);
  REQUIRE_MESSAGE(put, problem(put));

  // A node's keepalive cadence: four rounds per TTL, for three TTLs.
  auto cadence = std::chrono::duration_cast<steady_clock::duration>(lease->ttl) / 4;
  auto until = steady_clock::now() + 3 * lease->ttl;
  auto last_sent = steady_clock::now();
  int rounds = 0;
  while (steady_clock::now() < until) {
    last_sent = steady_clock::now();
    auto ttl = client.keep_alive(lease->id);
    REQUIRE_MESSAGE(ttl, problem(ttl));
    CHECK(*ttl == lease->ttl);
    CHECK(value_of(client, "members/mx1") == "alive");
    ++rounds;
    std::this_thread::sleep_until(last_sent + cadence);
  }
  CHECK(rounds >= 10);
  CHECK(vanishes(client, "members/mx1", last_sent + lease->ttl, last_sent + lease->ttl + 5s));
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: a revoked lease takes its keys at once and is then not found") {
  auto lease = client.grant(60s);
  REQUIRE_MESSAGE(lease, problem(lease));
  auto put = client.put("members/mx1", "alive", lease->id);
  REQUIRE_MESSAGE(put, problem(put));
  auto revoked = client.revoke(lease->id);
  REQUIRE_MESSAGE(revoked, problem(revoked));
  CHECK(*revoked > *put);
  CHECK(value_of(client, "members/mx1").empty());

  CHECK(failure_of(client.keep_alive(lease->id)) == etcd_failure::lease_not_found);
  CHECK(failure_of(client.revoke(lease->id)) == etcd_failure::lease_not_found);
  auto claim = client.create_if_absent("owners/sales", "mx1", lease->id);
  CHECK(failure_of(claim) == etcd_failure::lease_not_found);
  CHECK(claim.error().message.find("lease not found") != std::string::npos);
}

TEST_CASE("etcd client: create-if-absent is won by exactly one of two clients racing") {
  test::etcd_process etcd;
  etcd_client mx1{{etcd.endpoint()}, request_timeout};
  etcd_client mx2{{etcd.endpoint()}, request_timeout};
  auto lease1 = mx1.grant(60s);
  auto lease2 = mx2.grant(60s);
  REQUIRE_MESSAGE(lease1, problem(lease1));
  REQUIRE_MESSAGE(lease2, problem(lease2));

  constexpr int keys = 20;
  std::vector<etcd_result<etcd_claim>> claims1;
  std::vector<etcd_result<etcd_claim>> claims2;
  std::atomic<int> ready{0};
  auto race = [&](const etcd_client& client, std::string node, std::int64_t lease,
                  std::vector<etcd_result<etcd_claim>>& claims) {
    for (int i = 0; i < keys; ++i) {
      // Both threads reach each key before either asks for it.
      ready.fetch_add(1);
      while (ready.load() < 2 * (i + 1)) {
      }
      claims.push_back(client.create_if_absent("owners/po" + std::to_string(i), node, lease));
    }
  };
  std::thread first{race, std::cref(mx1), "mx1", lease1->id, std::ref(claims1)};
  std::thread second{race, std::cref(mx2), "mx2", lease2->id, std::ref(claims2)};
  first.join();
  second.join();

  int won_by_mx1 = 0;
  for (int i = 0; i < keys; ++i) {
    INFO("owners/po" << i);
    const auto& claim1 = claims1[i];
    const auto& claim2 = claims2[i];
    REQUIRE_MESSAGE(claim1, problem(claim1));
    REQUIRE_MESSAGE(claim2, problem(claim2));
    CHECK(claim1->won != claim2->won);
    const auto& winner = claim1->won ? claim1.value() : claim2.value();
    const auto& loser = claim1->won ? claim2.value() : claim1.value();
    CHECK(winner.holder.value == (claim1->won ? "mx1" : "mx2"));
    CHECK(winner.holder.lease == (claim1->won ? lease1->id : lease2->id));
    CHECK(loser.holder.value == winner.holder.value);
    CHECK(loser.holder.lease == winner.holder.lease);
    CHECK(loser.holder.create_revision == winner.holder.create_revision);
    CHECK(winner.revision == winner.holder.create_revision);
    won_by_mx1 += claim1->won ? 1 : 0;
    CHECK(value_of(mx1, "owners/po" + std::to_string(i)) == winner.holder.value);
  }
  MESSAGE("mx1 won " << won_by_mx1 << " of " << keys);

  // Gone with its holder's lease, the key is free to be won again.
  auto revoked = mx1.revoke(lease1->id);
  REQUIRE_MESSAGE(revoked, problem(revoked));
  auto lost_by_mx1 = std::find_if(claims1.begin(), claims1.end(),
                                  [](const auto& claim) { return !claim->won; });
  auto won_by_1 = std::find_if(claims1.begin(), claims1.end(),
                               [](const auto& claim) { return claim->won; });
  if (won_by_1 != claims1.end()) {
    auto retaken = mx2.create_if_absent((*won_by_1)->holder.key, "mx2", lease2->id);
    REQUIRE_MESSAGE(retaken, problem(retaken));
    CHECK(retaken->won);
    CHECK(retaken->holder.value == "mx2");
  }
  if (lost_by_mx1 != claims1.end()) {
    auto still = mx1.create_if_absent((*lost_by_mx1)->holder.key, "mx1", 0);
    REQUIRE_MESSAGE(still, problem(still));
    CHECK_FALSE(still->won);
    CHECK(still->holder.value == "mx2");
  }
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: a prefix range reads the keys under the prefix in order, with the revision") {
  std::int64_t last_write = 0;
  for (const char* key : {"members/mx2", "members/mx1", "members/mx3", "membersx", "member",
                          "owners/sales", "p\xff", "p\xff\x01", "p\xff\xff", "q"}) {
    auto put = client.put(key, std::string{"v-"} + key);
    REQUIRE_MESSAGE(put, problem(put));
    last_write = *put;
  }
  auto keys_of = [](const etcd_range& range) {
    std::vector<std::string> keys;
    for (const auto& kv : range.keys)
      keys.push_back(kv.key);
    return keys;
  };
  auto members = client.get_prefix("members/");
  REQUIRE_MESSAGE(members, problem(members));
  CHECK(keys_of(*members) == std::vector<std::string>{"members/mx1", "members/mx2", "members/mx3"});
  CHECK(members->keys.front().value == "v-members/mx1");
  CHECK(members->revision == last_write);

  // A prefix ending in 0xff bytes: its range ends before "q".
  auto high = client.get_prefix("p\xff");
  REQUIRE_MESSAGE(high, problem(high));
  CHECK(keys_of(*high) == std::vector<std::string>{"p\xff", "p\xff\x01", "p\xff\xff"});

  auto none = client.get_prefix("nothing/");
  REQUIRE_MESSAGE(none, problem(none));
  CHECK(none->keys.empty());
  CHECK(none->revision == last_write);

  auto every = client.get_prefix("");
  REQUIRE_MESSAGE(every, problem(every));
  CHECK(every->keys.size() == 10);
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: compare-and-delete deletes only on the expected value or mod revision") {
  REQUIRE(client.put("owners/sales", "mx1"));
  auto other = client.delete_if_value("owners/sales", "mx2");
  REQUIRE_MESSAGE(other, problem(other));
  CHECK_FALSE(*other);
  CHECK(value_of(client, "owners/sales") == "mx1");
  auto own = client.delete_if_value("owners/sales", "mx1");
  REQUIRE_MESSAGE(own, problem(own));
  CHECK(*own);
  CHECK(value_of(client, "owners/sales").empty());

  auto older = client.put("owners/sales", "mx1");
  auto newer = client.put("owners/sales", "mx1");
  REQUIRE(older);
  REQUIRE(newer);
  auto stale = client.delete_if_mod_revision("owners/sales", *older);
  REQUIRE_MESSAGE(stale, problem(stale));
  CHECK_FALSE(*stale);
  CHECK(value_of(client, "owners/sales") == "mx1");
  auto current = client.delete_if_mod_revision("owners/sales", *newer);
  REQUIRE_MESSAGE(current, problem(current));
  CHECK(*current);
  CHECK(value_of(client, "owners/sales").empty());

  auto absent = client.delete_if_value("owners/sales", "mx1");
  REQUIRE_MESSAGE(absent, problem(absent));
  CHECK_FALSE(*absent);
  REQUIRE(client.put("owners/support", "mx2"));
  auto deleted = client.delete_key("owners/support");
  REQUIRE_MESSAGE(deleted, problem(deleted));
  CHECK(*deleted == 1);
  auto again = client.delete_key("owners/support");
  REQUIRE_MESSAGE(again, problem(again));
  CHECK(*again == 0);
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: etcd's own error comes back as refused, with etcd's message") {
  auto put = client.put("", "no key");
  CHECK(failure_of(put) == etcd_failure::refused);
  CHECK(put.error().message == "etcdserver: key is not provided");
}

TEST_CASE("etcd client: a dead endpoint first in the list falls through to the live one, and is then passed over") {
  test::etcd_process etcd;
  silent_listener hung;
  constexpr auto timeout = 300ms;
  etcd_client client{{dead_endpoint(), hung.endpoint(), etcd.endpoint()}, timeout};
  auto started = steady_clock::now();
  auto put = client.put("members/mx1", "alive");
  auto first_call = steady_clock::now() - started;
  REQUIRE_MESSAGE(put, problem(put));
  CHECK(first_call >= timeout); // the hung endpoint had its timeout
  // The next call starts at the endpoint that answered.
  started = steady_clock::now();
  CHECK(value_of(client, "members/mx1") == "alive");
  CHECK(steady_clock::now() - started < timeout);
}

TEST_CASE("etcd client: a member without a leader, or a server that is not etcd, is passed over") {
  test::etcd_process etcd;
  fake_endpoint leaderless{
    503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})"};
  fake_endpoint not_etcd{404, "404 page not found"};
  etcd_client client{{leaderless.endpoint(), not_etcd.endpoint(), etcd.endpoint()},
                     request_timeout};
  auto put = client.put("members/mx1", "alive");
  REQUIRE_MESSAGE(put, problem(put));
  CHECK(value_of(client, "members/mx1") == "alive");

  etcd_client stranded{{leaderless.endpoint(), not_etcd.endpoint()}, request_timeout};
  auto read = stranded.get("members/mx1");
  CHECK(failure_of(read) == etcd_failure::unreachable);
  CHECK(read.error().message
        == "no etcd endpoint answered: " + leaderless.endpoint()
             + ": unavailable: etcdserver: no leader; " + not_etcd.endpoint()
             + ": answered HTTP 404 without JSON: not etcd's v3 API");
}

TEST_CASE("etcd client: with every endpoint dead a call fails within its timeout, naming each endpoint and why") {
  silent_listener hung;
  auto refused = dead_endpoint();
  constexpr auto timeout = 300ms;
  etcd_client client{{refused, hung.endpoint()}, timeout};
  auto started = steady_clock::now();
  auto lease = client.grant(5s);
  auto took = steady_clock::now() - started;
  CHECK(failure_of(lease) == etcd_failure::unreachable);
  CHECK(lease.error().message
        == "no etcd endpoint answered: " + refused
             + ": connection refused, or host unknown or unreachable; " + hung.endpoint()
             + ": no answer within 300 ms, or the connection broke");
  CHECK(took >= timeout);
  CHECK(took < 2 * timeout * 2); // the bound etcd_client.hpp promises for two endpoints

  etcd_client nobody{{dead_endpoint(), dead_endpoint()}, timeout};
  started = steady_clock::now();
  CHECK(failure_of(nobody.keep_alive(1)) == etcd_failure::unreachable);
  CHECK(steady_clock::now() - started < timeout); // refused at once: no wait
}

TEST_CASE_FIXTURE(etcd_fixture, "etcd client: etcd killed and restarted on its data, the client carries on") {
  auto lease = client.grant(60s);
  REQUIRE_MESSAGE(lease, problem(lease));
  auto before = client.put("members/mx1", "alive", lease->id);
  REQUIRE_MESSAGE(before, problem(before));

  etcd.kill();
  auto down = client.get("members/mx1");
  CHECK(failure_of(down) == etcd_failure::unreachable);
  CHECK(down.error().message.find(etcd.endpoint()) != std::string::npos);
  CHECK(failure_of(client.keep_alive(lease->id)) == etcd_failure::unreachable);

  etcd.restart();
  CHECK(value_of(client, "members/mx1") == "alive"); // acknowledged writes survive
  auto ttl = client.keep_alive(lease->id);
  REQUIRE_MESSAGE(ttl, problem(ttl));
  CHECK(*ttl == 60s);
  auto after = client.put("members/mx1", "back", lease->id);
  REQUIRE_MESSAGE(after, problem(after));
  CHECK(*after > *before);
}
