// Tests runtime/config/routing.cpp: recipient to postoffice by domain, default, mailbox names.
#include <doctest/doctest.h>

#include <string>

#include "runtime/config/routing.hpp"

using namespace postconn;

namespace {

postoffice_config postoffice(std::string name, std::vector<std::string> domains,
                             transport_kind transport = transport_kind::maildir) {
  postoffice_config result;
  result.name = std::move(name);
  result.domains = std::move(domains);
  result.transport = transport;
  return result;
}

config two_postoffices() {
  config cfg;
  cfg.server.hostname = "Connector.Example.TEST";
  cfg.postoffices.push_back(postoffice("sales", {"sales.example.test"}));
  cfg.postoffices.push_back(
    postoffice("hq", {"hq.example.test", "Example.TEST"}, transport_kind::smtp));
  return cfg;
}

// "name#index" ("name#index default" when by default), or the refusal as
// "code status".
std::string routed(const routing_table& table, std::string_view recipient) {
  auto result = table.route(recipient);
  if (!result.postoffice)
    return std::to_string(result.error.code) + " " + result.error.status;
  return result.postoffice_name + "#" + std::to_string(*result.postoffice)
         + (result.by_default ? " default" : "");
}

} // namespace

TEST_CASE("a recipient goes to the postoffice listing its domain, any case") {
  routing_table table{two_postoffices()};
  CHECK(routed(table, "bob@sales.example.test") == "sales#0");
  CHECK(routed(table, "Bob@SALES.Example.Test") == "sales#0");
  CHECK(routed(table, "ceo@hq.example.test") == "hq#1");
  CHECK(routed(table, "ceo@example.test") == "hq#1");
}

TEST_CASE("an unclaimed domain gets 550 5.1.2 without a default postoffice") {
  routing_table table{two_postoffices()};
  CHECK(routed(table, "bob@other.test") == "550 5.1.2");
  CHECK(routed(table, "bob@sub.sales.example.test") == "550 5.1.2");
  CHECK(table.route("bob@other.test").error.text
        == "No postoffice takes domain other.test");
}

TEST_CASE("the default postoffice takes every unclaimed domain") {
  auto cfg = two_postoffices();
  cfg.postoffices.push_back(postoffice("catchall", {}, transport_kind::lmtp));
  cfg.postoffices.back().is_default = true;
  routing_table table{cfg};
  CHECK(routed(table, "bob@other.test") == "catchall#2 default");
  CHECK(routed(table, "bob@sales.example.test") == "sales#0");
}

TEST_CASE("a default postoffice's own domains are not routed by default") {
  auto cfg = two_postoffices();
  cfg.postoffices[1].is_default = true;
  routing_table table{cfg};
  CHECK(routed(table, "ceo@hq.example.test") == "hq#1");
  CHECK(routed(table, "ceo@elsewhere.test") == "hq#1 default");
  CHECK(routed(table, "\"j d\"@elsewhere.test") == "hq#1 default");
}

TEST_CASE("address literals name no postoffice, not even the default") {
  auto cfg = two_postoffices();
  cfg.postoffices[1].is_default = true;
  routing_table table{cfg};
  CHECK(routed(table, "bob@[192.0.2.1]") == "550 5.1.2");
  CHECK(routed(table, "bob@[IPv6:2001:db8::1]") == "550 5.1.2");
}

TEST_CASE("a bare postmaster is postmaster at the server's hostname") {
  auto cfg = two_postoffices();
  routing_table without{cfg};
  CHECK(routed(without, "postmaster") == "550 5.1.2");
  cfg.postoffices[0].domains.push_back("connector.example.test");
  routing_table with{cfg};
  CHECK(routed(with, "Postmaster") == "sales#0");
}

TEST_CASE("a maildir postoffice refuses local parts that are no mailbox: 553 5.1.3") {
  routing_table table{two_postoffices()};
  CHECK(routed(table, "\"../etc\"@sales.example.test") == "553 5.1.3");
  CHECK(routed(table, "\"a/b\"@sales.example.test") == "553 5.1.3");
  CHECK(routed(table, "\"john doe\"@sales.example.test") == "553 5.1.3");
  CHECK(routed(table, "%2e%2e@sales.example.test") == "553 5.1.3");
  CHECK(routed(table, "a*b@sales.example.test") == "553 5.1.3");
  CHECK(routed(table, "John.Doe+tag@sales.example.test") == "sales#0");
}

TEST_CASE("an smtp postoffice takes any local part") {
  routing_table table{two_postoffices()};
  CHECK(routed(table, "\"john doe\"@hq.example.test") == "hq#1");
  CHECK(routed(table, "a*b@hq.example.test") == "hq#1");
}

TEST_CASE("what is no address at all gets 501 5.1.3") {
  routing_table table{two_postoffices()};
  CHECK(routed(table, "") == "501 5.1.3");
  CHECK(routed(table, "bob") == "501 5.1.3");
  CHECK(routed(table, "bob@sales..example.test") == "501 5.1.3");
}

TEST_CASE("a domain listed twice goes to the first postoffice listing it") {
  auto cfg = two_postoffices();
  cfg.postoffices.push_back(postoffice("late", {"sales.example.test"}));
  routing_table table{cfg};
  CHECK(routed(table, "bob@sales.example.test") == "sales#0");
}

TEST_CASE("no postoffices at all routes nothing") {
  routing_table table{config{}};
  CHECK(routed(table, "bob@example.test") == "550 5.1.2");
}
