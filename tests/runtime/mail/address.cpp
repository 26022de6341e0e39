// Tests runtime/mail/address.cpp: address syntax, domain checks and maildir mailbox names.
#include <doctest/doctest.h>

#include <string>

#include "runtime/mail/address.hpp"

using namespace postconn;

TEST_CASE("an address splits at its last '@' and its domain is lower-cased") {
  auto plain = parse_address("John.Doe@Sales.Example.TEST");
  REQUIRE(plain);
  CHECK(plain->local_part == "John.Doe");
  CHECK(plain->domain == "sales.example.test");
  auto quoted = parse_address("\"a@b\"@example.test");
  REQUIRE(quoted);
  CHECK(quoted->local_part == "\"a@b\"");
  CHECK(quoted->domain == "example.test");
  auto literal = parse_address("x@[192.0.2.1]");
  REQUIRE(literal);
  CHECK(literal->domain == "[192.0.2.1]");
}

TEST_CASE("malformed addresses are refused") {
  CHECK_FALSE(parse_address("no-at-sign"));
  CHECK_FALSE(parse_address("@example.test"));
  CHECK_FALSE(parse_address("user@"));
  CHECK_FALSE(parse_address("a..b@example.test"));
  CHECK_FALSE(parse_address(".a@example.test"));
  CHECK_FALSE(parse_address("a.@example.test"));
  CHECK_FALSE(parse_address("a b@example.test"));
  CHECK_FALSE(parse_address("a\r\n@example.test"));
  CHECK_FALSE(parse_address(std::string{"a\0b@example.test", 16}));
  CHECK_FALSE(parse_address("\"a\rb\"@example.test"));
  CHECK_FALSE(parse_address("\"unterminated@example.test"));
  CHECK_FALSE(parse_address("\"a\"b\"@example.test"));
  CHECK_FALSE(parse_address("j\xc3\xb6rg@example.test"));
  CHECK_FALSE(parse_address("user@exa_mple.test"));
}

TEST_CASE("quoted local parts allow spaces and escaped quotes") {
  CHECK(parse_address("\"john doe\"@example.test"));
  CHECK(parse_address("\"a\\\"b\"@example.test"));
  CHECK_FALSE(parse_address("\"a\\\"@example.test"));
}

TEST_CASE("local part at most 64 octets, address at most 254") {
  std::string local64(64, 'a');
  CHECK(parse_address(local64 + "@example.test"));
  CHECK_FALSE(parse_address(local64 + "a@example.test"));
  // A 252-octet domain: with "a@" the address has 254 octets, with "ab@" 255.
  std::string label(63, 'd');
  std::string domain = label + "." + label + "." + label + "." + std::string(60, 'd');
  REQUIRE(domain.size() == 252);
  CHECK(parse_address("a@" + domain));
  CHECK_FALSE(parse_address("ab@" + domain));
}

TEST_CASE("domains are letters, digits and hyphens in dot-separated labels") {
  CHECK(is_domain("example.test"));
  CHECK(is_domain("localhost"));
  CHECK(is_domain("a-b.x1"));
  CHECK(is_domain(std::string(63, 'a') + ".test"));
  CHECK_FALSE(is_domain(std::string(64, 'a') + ".test"));
  CHECK_FALSE(is_domain(""));
  CHECK_FALSE(is_domain("example..test"));
  CHECK_FALSE(is_domain(".example.test"));
  CHECK_FALSE(is_domain("example.test."));
  CHECK_FALSE(is_domain("-example.test"));
  CHECK_FALSE(is_domain("example-.test"));
  CHECK_FALSE(is_domain("exa mple.test"));
  CHECK_FALSE(is_domain("[192.0.2.1]"));
}

TEST_CASE("address literals hold a valid IPv4 or tagged IPv6 address") {
  CHECK(is_address_literal("[192.0.2.1]"));
  CHECK(is_address_literal("[IPv6:2001:db8::1]"));
  CHECK(is_address_literal("[ipv6:::1]"));
  CHECK_FALSE(is_address_literal("[2001:db8::1]"));
  CHECK_FALSE(is_address_literal("[192.0.2.256]"));
  CHECK_FALSE(is_address_literal("[192.0.2]"));
  CHECK_FALSE(is_address_literal("192.0.2.1"));
  CHECK_FALSE(is_address_literal(std::string{"[192.0.2.1\0x]", 13}));
  CHECK_FALSE(is_address_literal("[x-tag:stuff]"));
}

TEST_CASE("a mailbox name is the lower-cased local part of allowed characters") {
  CHECK(maildir_mailbox_name("John.Doe") == "john.doe");
  CHECK(maildir_mailbox_name("a+tag_x-1") == "a+tag_x-1");
  CHECK(maildir_mailbox_name(std::string(64, 'A')) == std::string(64, 'a'));
  CHECK(maildir_mailbox_name("inner..dots") == "inner..dots");
}

TEST_CASE("a trailing dot names no mailbox: an SMB share would drop it") {
  CHECK_FALSE(maildir_mailbox_name("bob."));
  CHECK_FALSE(maildir_mailbox_name("bob.."));
}

TEST_CASE("local parts that could name another path are no mailbox") {
  for (std::string bad : {"", ".", "..", "../x", ".hidden", "a/b", "a\\b", "%2e%2e",
                          "\"quoted\"", "a b", "a:b", "a*", "j\xc3\xb6rg", "\xff"})
    CHECK_MESSAGE(!maildir_mailbox_name(bad), bad);
  CHECK_FALSE(maildir_mailbox_name(std::string{"a\0b", 3}));
  CHECK_FALSE(maildir_mailbox_name(std::string(65, 'a')));
}

TEST_CASE("lower-casing touches ASCII letters only") {
  CHECK(lower_cased("MiXeD-42.Example") == "mixed-42.example");
  CHECK(lower_cased("\xc3\x96") == "\xc3\x96");
}
