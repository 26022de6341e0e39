// Tests runtime/cluster/membership.cpp: member keys, the members of a read,
// the fence's arithmetic (valid_until from the time read before the round,
// the join wait, a lost lease), and ownership from the members etcd holds.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "runtime/cluster/membership.hpp"
#include "runtime/cluster/ownership.hpp"

using namespace postconn;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// A fixed starting point: the fence only compares times.
const steady::time_point t0 = steady::time_point{} + 1000h;

etcd_key_value key_value(std::string key, std::string value) {
  etcd_key_value kv;
  kv.key = std::move(key);
  kv.value = std::move(value);
  return kv;
}

} // namespace

TEST_CASE("member keys are /postconn/members/<node>, and a read of them gives node -> address") {
  CHECK(member_key("node-b") == "/postconn/members/node-b");
  etcd_range range;
  range.keys = {key_value("/postconn/members/a", "10.0.0.1:4200"),
                key_value("/postconn/members/b", "10.0.0.2:4200"),
                key_value("/postconn/members/Not_A_Node", "10.0.0.9:4200"),
                key_value("/postconn/members/", "10.0.0.8:4200"),
                key_value("/postconn/other/c", "10.0.0.3:4200")};
  CHECK(members_of(range)
        == std::map<std::string, std::string>{{"a", "10.0.0.1:4200"}, {"b", "10.0.0.2:4200"}});
  CHECK(members_of(etcd_range{}).empty());
}

TEST_CASE("the fence: valid until the time read before the round plus the ttl less a fifth") {
  CHECK(fence_margin(10s) == 2000ms);
  CHECK(fence_margin(2s) == 400ms);
  CHECK(round_interval(3s) == 1000ms);
  lease_fence fence;
  CHECK_FALSE(fence.valid_at(t0));
  CHECK(fence.renewed(t0, 10s) == t0 + 8s);
  CHECK(fence.valid_at(t0 + 7999ms));
  CHECK_FALSE(fence.valid_at(t0 + 8s));
  // Each round counts from when it was asked, not from when it returned.
  CHECK(fence.renewed(t0 + 3s, 10s) == t0 + 11s);
  // A report that comes late (its round asked earlier) never shortens it.
  CHECK(fence.renewed(t0 + 1s, 10s) == t0 + 11s);
  // etcd raised the TTL: the margin is a fifth of the granted one.
  CHECK(fence.renewed(t0 + 4s, 15s) == t0 + 16s);
}

TEST_CASE("the fence: a node owns nothing until a ttl after its member key was written") {
  lease_fence fence;
  fence.renewed(t0, 10s);
  CHECK(fence.valid_at(t0 + 1s));
  CHECK_FALSE(fence.owns_at(t0 + 1s)); // never registered
  fence.registered(t0 + 100ms, 10s);
  CHECK(fence.owns_from() == t0 + 10100ms);
  fence.renewed(t0 + 9s, 10s);
  CHECK_FALSE(fence.owns_at(t0 + 10s));
  CHECK(fence.owns_at(t0 + 10100ms));
  CHECK_FALSE(fence.owns_at(t0 + 17s)); // valid until t0 + 17s
}

TEST_CASE("the fence: a lost lease ends everything until a new one is granted and registered") {
  lease_fence fence;
  fence.registered(t0, 10s);
  fence.renewed(t0 + 9s, 10s);
  REQUIRE(fence.owns_at(t0 + 12s));
  fence.lost();
  CHECK_FALSE(fence.valid_at(t0 + 12s));
  CHECK_FALSE(fence.owns_at(t0 + 12s));
  fence.renewed(t0 + 13s, 10s);
  fence.registered(t0 + 13100ms, 10s);
  CHECK(fence.valid_at(t0 + 14s));
  CHECK_FALSE(fence.owns_at(t0 + 14s));
  fence.renewed(t0 + 20s, 10s);
  CHECK_FALSE(fence.owns_at(t0 + 23s));
  CHECK(fence.owns_at(t0 + 23100ms));
}

TEST_CASE("no overlap: a joiner owns only after every view read before its put has expired") {
  // b read the members at t0 + 2s (its keepalive asked at t0 + 1.9s), before
  // a's put returned at t0 + 2.5s, so b's view lacks a.
  lease_fence b;
  auto b_stops = b.renewed(t0 + 1900ms, 10s);
  lease_fence a;
  a.renewed(t0 + 2400ms, 10s);
  a.registered(t0 + 2500ms, 10s);
  CHECK(b_stops < a.owns_from());
  CHECK_FALSE(a.owns_at(b_stops));
}

TEST_CASE("ownership from etcd's members: nobody while fenced or joining, then rendezvous") {
  std::map<std::string, std::string> members{
    {"a", "127.0.0.1:4200"}, {"b", "127.0.0.1:4201"}, {"c", "127.0.0.1:4202"}};
  lease_fence fence;
  CHECK(owning_nodes(members, "a", fence, t0).empty());
  fence.renewed(t0, 2s);
  fence.registered(t0, 2s);
  CHECK(owning_nodes(members, "a", fence, t0 + 1s).empty()); // joining
  auto owners_now = owning_nodes(members, "a", fence, t0 + 2s);
  CHECK(owners_now.empty()); // valid until t0 + 1.6 s: fenced
  fence.renewed(t0 + 1s, 2s);
  auto live = owning_nodes(members, "a", fence, t0 + 2s);
  CHECK(live == std::vector<std::string>{"a", "b", "c"});
  // Every node computes the same owners from the same members.
  auto owners = owners_of({{"po1", ""}, {"po2", ""}, {"po3", "c"}}, live);
  CHECK(owners.at("po3") == "c");
  CHECK(owners == owners_of({{"po1", ""}, {"po2", ""}, {"po3", "c"}}, {"c", "b", "a"}));
  // A node whose own key is not among the members read owns nothing.
  members.erase("a");
  CHECK(owning_nodes(members, "a", fence, t0 + 2s).empty());
  // Owners among no nodes: none ("").
  CHECK(owners_of({{"po1", ""}}, {}).at("po1").empty());
}
