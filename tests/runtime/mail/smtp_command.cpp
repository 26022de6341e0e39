// Tests runtime/mail/smtp_command.cpp: command parsing, its error replies, reply formatting.
#include <doctest/doctest.h>

#include <string>

#include "runtime/mail/smtp_command.hpp"

using namespace postconn;

namespace {

smtp_command parsed(std::string_view line) {
  auto result = parse_smtp_command(line);
  INFO("line: ", std::string{line}, " -> ", result.error.code, " ", result.error.text);
  REQUIRE(result.command);
  return *result.command;
}

// The refusal as "code status", e.g. "501 5.5.4".
std::string refusal(std::string_view line) {
  auto result = parse_smtp_command(line);
  if (result.command)
    return "accepted";
  return std::to_string(result.error.code) + " " + result.error.status;
}

} // namespace

TEST_CASE("verbs are matched case-insensitively") {
  CHECK(parsed("EHLO client.example.test").verb == smtp_verb::ehlo);
  CHECK(parsed("ehlo client.example.test").argument == "client.example.test");
  CHECK(parsed("Helo client").verb == smtp_verb::helo);
  CHECK(parsed("data").verb == smtp_verb::data);
  CHECK(parsed("RsEt").verb == smtp_verb::rset);
  CHECK(parsed("quit").verb == smtp_verb::quit);
  CHECK(parsed("NOOP").verb == smtp_verb::noop);
  CHECK(parsed("NOOP anything goes").argument == "anything goes");
  CHECK(parsed("VRFY someone").verb == smtp_verb::vrfy);
  CHECK(parsed("starttls").verb == smtp_verb::starttls);
  CHECK(refusal("STARTTLS now") == "501 5.5.4");
  CHECK(to_string(smtp_verb::rcpt) == "RCPT");
}

TEST_CASE("unknown and unimplemented verbs get 502 5.5.1") {
  CHECK(refusal("HELP") == "502 5.5.1");
  CHECK(refusal("EXPN list") == "502 5.5.1");
  CHECK(refusal("BDAT 10 LAST") == "502 5.5.1");
  CHECK(refusal("MAILFROM:<a@b.test>") == "502 5.5.1");
  CHECK(refusal(" MAIL FROM:<a@b.test>") == "502 5.5.1");
  CHECK(refusal("EHLO\tclient") == "502 5.5.1");
}

TEST_CASE("empty, overlong and control-character lines get 500 5.5.2") {
  CHECK(refusal("") == "500 5.5.2");
  std::string noop510 = "NOOP " + std::string(505, 'x');
  REQUIRE(noop510.size() == 510);
  CHECK(refusal(noop510) == "accepted");
  CHECK(refusal(noop510 + "x") == "500 5.5.2");
  CHECK(refusal("NOOP a\rb") == "500 5.5.2");
  CHECK(refusal("NOOP a\nb") == "500 5.5.2");
  CHECK(refusal(std::string{"NOOP a\0b", 8}) == "500 5.5.2");
}

TEST_CASE("greetings and VRFY need an argument, DATA, RSET, QUIT take none") {
  CHECK(refusal("EHLO") == "501 5.5.4");
  CHECK(refusal("HELO   ") == "501 5.5.4");
  CHECK(refusal("VRFY") == "501 5.5.4");
  CHECK(refusal("DATA now") == "501 5.5.4");
  CHECK(refusal("RSET x") == "501 5.5.4");
  CHECK(refusal("QUIT bye") == "501 5.5.4");
  CHECK(refusal("DATA  ") == "accepted");
  CHECK(parsed("EHLO  [192.0.2.1]  ").argument == "[192.0.2.1]");
}

TEST_CASE("MAIL FROM parses the reverse path") {
  auto mail = parsed("MAIL FROM:<Alice@Example.TEST>");
  CHECK(mail.verb == smtp_verb::mail);
  CHECK(mail.path == "Alice@Example.TEST");
  CHECK_FALSE(mail.size);
  CHECK(mail.body == body_type::unspecified);
  CHECK(parsed("mail from:<a@b.test>").path == "a@b.test");
  CHECK(parsed("MAIL FROM: <a@b.test>").path == "a@b.test");
  CHECK(parsed("MAIL FROM:<\"john doe\"@b.test>").path == "\"john doe\"@b.test");
  CHECK(parsed("MAIL FROM:<\"a>b\"@b.test>").path == "\"a>b\"@b.test");
  CHECK(parsed("MAIL FROM:<a@[192.0.2.1]>").path == "a@[192.0.2.1]");
}

TEST_CASE("MAIL FROM:<> is the null sender") {
  auto mail = parsed("MAIL FROM:<>");
  CHECK(mail.path.empty());
  CHECK(parsed("MAIL FROM:<> SIZE=10").size == 10u);
}

TEST_CASE("a source route is dropped") {
  CHECK(parsed("MAIL FROM:<@relay.test,@other.test:a@b.test>").path == "a@b.test");
  CHECK(parsed("RCPT TO:<@relay.test:c@d.test>").path == "c@d.test");
  CHECK(refusal("MAIL FROM:<@relay.test:>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<@relay.test,:a@b.test>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<@bad_host:a@b.test>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<@relay.test a@b.test>") == "501 5.1.7");
}

TEST_CASE("MAIL syntax errors get 501 5.5.4, bad senders 501 5.1.7") {
  CHECK(refusal("MAIL") == "501 5.5.4");
  CHECK(refusal("MAIL TO:<a@b.test>") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:a@b.test") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test>SIZE=1") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<\"a>@b.test") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<postmaster>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<a@b..test>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<a b@c.test>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<" + std::string(65, 'a') + "@b.test>") == "501 5.1.7");
  CHECK(refusal("MAIL FROM:<j\xc3\xb6rg@b.test>") == "501 5.1.7");
}

TEST_CASE("MAIL takes SIZE and BODY, refuses other parameters with 555") {
  auto mail = parsed("MAIL FROM:<a@b.test> size=35882577  BODY=8bitmime");
  CHECK(mail.size == 35882577u);
  CHECK(mail.body == body_type::eight_bit_mime);
  CHECK(parsed("MAIL FROM:<a@b.test> BODY=7BIT").body == body_type::seven_bit);
  CHECK(parsed("MAIL FROM:<a@b.test> SIZE=0").size == 0u);
  CHECK(parsed("MAIL FROM:<a@b.test> SIZE=9999999999999999999").size
        == 9999999999999999999u);
  CHECK(refusal("MAIL FROM:<a@b.test> SIZE=99999999999999999999") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> SIZE=") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> SIZE") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> SIZE=-1") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> SIZE=1 SIZE=2") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> BODY=BINARYMIME") == "501 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> SMTPUTF8") == "555 5.5.4");
  CHECK(refusal("MAIL FROM:<a@b.test> RET=HDRS") == "555 5.5.4");
  auto unknown = parse_smtp_command("MAIL FROM:<a@b.test> AUTH=<>");
  CHECK(unknown.error.text == "Unsupported parameter AUTH");
}

TEST_CASE("RCPT TO parses the forward path") {
  auto rcpt = parsed("RCPT TO:<bob@sales.example.test>");
  CHECK(rcpt.verb == smtp_verb::rcpt);
  CHECK(rcpt.path == "bob@sales.example.test");
  CHECK(parsed("rcpt to: <bob@x.test>").path == "bob@x.test");
  CHECK(parsed("RCPT TO:<postmaster>").path == "postmaster");
  CHECK(parsed("RCPT TO:<PostMaster>").path == "PostMaster");
}

TEST_CASE("RCPT errors: syntax 501 5.5.4, bad recipient 501 5.1.3, parameters 555") {
  CHECK(refusal("RCPT") == "501 5.5.4");
  CHECK(refusal("RCPT FROM:<a@b.test>") == "501 5.5.4");
  CHECK(refusal("RCPT TO:bob@x.test") == "501 5.5.4");
  CHECK(refusal("RCPT TO:<>") == "501 5.1.3");
  CHECK(refusal("RCPT TO:<bob>") == "501 5.1.3");
  CHECK(refusal("RCPT TO:<../x@b.test>") == "501 5.1.3");
  CHECK(refusal("RCPT TO:<bob@x.test> NOTIFY=NEVER") == "555 5.5.4");
}

TEST_CASE("addresses longer than 254 octets are refused") {
  std::string label(63, 'd');
  std::string domain = label + "." + label + "." + label + "." + std::string(60, 'd');
  CHECK(refusal("RCPT TO:<a@" + domain + ">") == "accepted");
  CHECK(refusal("RCPT TO:<ab@" + domain + ">") == "501 5.1.3");
  CHECK(refusal("MAIL FROM:<ab@" + domain + ">") == "501 5.1.7");
}

TEST_CASE("a single-line reply is code, status, text and CRLF") {
  CHECK(format_reply({250, "2.1.0", "Ok"}) == "250 2.1.0 Ok\r\n");
  CHECK(format_reply({220, "", "connector ESMTP"}) == "220 connector ESMTP\r\n");
  CHECK(format_reply({354, "", ""}) == "354\r\n");
}

TEST_CASE("a multi-line reply continues with '-' and ends with ' '") {
  CHECK(format_reply(250, "", {"host.test", "PIPELINING", "SIZE 35882577"})
        == "250-host.test\r\n250-PIPELINING\r\n250 SIZE 35882577\r\n");
  CHECK(format_reply(550, "5.1.1", {"first", "second"})
        == "550-5.1.1 first\r\n550 5.1.1 second\r\n");
  CHECK(format_reply(250, "", {"", "last"}) == "250-\r\n250 last\r\n");
  CHECK(format_reply(250, "2.0.0", {}) == "250 2.0.0\r\n");
}

TEST_CASE("control characters in reply text cannot start another reply") {
  CHECK(format_reply({250, "2.0.0", "a\r\n250 b"}) == "250 2.0.0 a??250 b\r\n");
}
