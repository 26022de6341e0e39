// Tests runtime/mail/network_list.cpp: parsing relay_networks and matching client addresses.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "runtime/mail/network_list.hpp"

using namespace postconn;

namespace {

network_list parsed(const std::vector<std::string>& cidrs) {
  auto result = network_list::parse(cidrs);
  REQUIRE(result.problems.empty());
  REQUIRE(result.value);
  return *result.value;
}

} // namespace

TEST_CASE("the default relay networks take loopback clients only") {
  auto relay = parsed({"127.0.0.0/8", "::1/128"});
  CHECK(relay.contains("127.0.0.1"));
  CHECK(relay.contains("127.255.255.254"));
  CHECK(relay.contains("::1"));
  CHECK_FALSE(relay.contains("128.0.0.1"));
  CHECK_FALSE(relay.contains("126.255.255.255"));
  CHECK_FALSE(relay.contains("::2"));
  CHECK_FALSE(relay.contains("192.0.2.1"));
}

TEST_CASE("IPv4-mapped IPv6 clients match IPv4 networks") {
  auto relay = parsed({"127.0.0.0/8", "10.1.0.0/16"});
  CHECK(relay.contains("::ffff:127.0.0.1"));
  CHECK(relay.contains("::FFFF:10.1.200.3"));
  CHECK_FALSE(relay.contains("::ffff:10.2.0.1"));
  CHECK_FALSE(relay.contains("::127.0.0.1"));
  CHECK_FALSE(relay.contains("64:ff9b::127.0.0.1"));
}

TEST_CASE("prefix lengths that are not multiples of eight") {
  auto relay = parsed({"192.0.2.64/26", "2001:db8:8000::/33"});
  CHECK(relay.contains("192.0.2.64"));
  CHECK(relay.contains("192.0.2.127"));
  CHECK_FALSE(relay.contains("192.0.2.63"));
  CHECK_FALSE(relay.contains("192.0.2.128"));
  CHECK(relay.contains("2001:db8:8000::1"));
  CHECK(relay.contains("2001:db8:ffff:ffff::1"));
  CHECK_FALSE(relay.contains("2001:db8:7fff::1"));
}

TEST_CASE("bare addresses are single hosts, /0 is everything") {
  auto host = parsed({"192.0.2.7", "2001:db8::7"});
  CHECK(host.contains("192.0.2.7"));
  CHECK_FALSE(host.contains("192.0.2.8"));
  CHECK(host.contains("2001:db8::7"));
  CHECK_FALSE(host.contains("2001:db8::8"));
  auto all_v4 = parsed({"0.0.0.0/0"});
  CHECK(all_v4.contains("203.0.113.9"));
  CHECK(all_v4.contains("::ffff:203.0.113.9"));
  CHECK_FALSE(all_v4.contains("2001:db8::1"));
  auto all = parsed({"::/0"});
  CHECK(all.contains("2001:db8::1"));
  CHECK(all.contains("203.0.113.9"));
}

TEST_CASE("host bits beyond the prefix are ignored") {
  auto relay = parsed({"10.1.2.3/8"});
  CHECK(relay.contains("10.200.0.1"));
  CHECK_FALSE(relay.contains("11.1.2.3"));
}

TEST_CASE("an empty list relays for nobody") {
  auto relay = parsed({});
  CHECK_FALSE(relay.contains("127.0.0.1"));
}

TEST_CASE("client addresses that do not parse are in no network") {
  auto relay = parsed({"::/0"});
  CHECK_FALSE(relay.contains(""));
  CHECK_FALSE(relay.contains("localhost"));
  CHECK_FALSE(relay.contains("fe80::1%eth0"));
  CHECK_FALSE(relay.contains("[::1]"));
  CHECK_FALSE(relay.contains(std::string{"::1\0x", 5}));
}

TEST_CASE("malformed entries are problems naming the entry") {
  auto result = network_list::parse(
    {"127.0.0.0/8", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0/8", "net",
     "10.0.0.0/+8", "10.0.0.0/08x"});
  CHECK_FALSE(result.value);
  REQUIRE(result.problems.size() == 7);
  CHECK(result.problems[0]
        == "smtp.relay_networks[1]: not an IP network: \"10.0.0.0/33\"");
  CHECK(result.problems[6].rfind("smtp.relay_networks[7]: ", 0) == 0);
}
