// Tests actors/smtp_session.cpp, each session forked by the real listener
// on CAF's test multiplexer (tests/actors/smtp_fixture.hpp), with a fake
// store. Covers the greeting and the EHLO extensions, a pipelined
// transaction answered 250 only once the store answered, 451 4.3.0 when the
// store fails or does not answer by data_timeout, 550 5.1.2 for a domain no
// postoffice takes, 503 for commands out of order, QUIT, and 421 4.4.2
// after idle_timeout (checked on the listener's once-a-second tick).
#include <doctest/doctest.h>

#include "tests/actors/smtp_fixture.hpp"

using namespace postconn;
using namespace postconn::test;
using namespace std::chrono_literals;

namespace {

const std::string ehlo_reply = "250-mx.example.test\r\n"
                               "250-PIPELINING\r\n"
                               "250-SIZE 10000000\r\n"
                               "250-8BITMIME\r\n"
                               "250 ENHANCEDSTATUSCODES\r\n";

const std::string envelope = "EHLO client.example.test\r\n"
                             "MAIL FROM:<ann@support.example.test>\r\n"
                             "RCPT TO:<bob@sales.example.test>\r\n"
                             "RCPT TO:<carol@sales.example.test>\r\n"
                             "DATA\r\n";

const std::string envelope_replies = ehlo_reply
                                     + "250 2.1.0 Ok\r\n"
                                       "250 2.1.5 Ok\r\n"
                                       "250 2.1.5 Ok\r\n"
                                       "354 End data with <CR><LF>.<CR><LF>\r\n";

const std::string message = "Subject: quarterly report\r\n\r\nnumbers\r\n..dot-stuffed\r\n.\r\n";

} // namespace

TEST_CASE_FIXTURE(smtp_fixture, "the session greets with 220 and answers EHLO with its extensions, HELO with its name") {
  CHECK(connect() == "220 mx.example.test ESMTP postconn\r\n");
  CHECK(say("EHLO client.example.test\r\n") == ehlo_reply); // no STARTTLS: no certificate
  CHECK(say("HELO client.example.test\r\n") == "250 mx.example.test\r\n");
  CHECK(say("EHLO\r\n") == "501 5.5.4 Syntax: EHLO domain\r\n");
  CHECK(say("NOOP\r\n") == "250 2.0.0 Ok\r\n");
  CHECK_FALSE(closed());
}

TEST_CASE_FIXTURE(smtp_fixture, "a pipelined transaction is answered 250 only once the store has committed it") {
  store().mode = store_mode::hold;
  connect();
  CHECK(say(envelope) == envelope_replies);
  CHECK(say(message) == ""); // the store has not answered
  REQUIRE(store().accepted.size() == 1);
  // Commands pipelined meanwhile wait for the answer.
  CHECK(say("NOOP\r\n") == "");
  caf::anon_send(store_impl, release_atom::value);
  run();
  CHECK(take_output() == "250 2.0.0 Ok: queued as " + queue_id + "\r\n250 2.0.0 Ok\r\n");
  const auto& msg = store().accepted.front();
  CHECK(msg.sender == "ann@support.example.test");
  REQUIRE(msg.deliveries.size() == 1);
  CHECK(msg.deliveries[0].postoffice == "sales");
  CHECK(msg.deliveries[0].recipients
        == std::vector<std::string>{"bob@sales.example.test", "carol@sales.example.test"});
  CHECK(msg.content.rfind("Received: from client.example.test ([test])\r\n\tby mx.example.test "
                          "(postconn) with ESMTP; ", 0)
        == 0);
  auto body_at = msg.content.find("Subject: quarterly report\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(msg.content.substr(body_at)
        == "Subject: quarterly report\r\n\r\nnumbers\r\n.dot-stuffed\r\n");
  // The transaction is over: a new one may start.
  CHECK(say("MAIL FROM:<>\r\n") == "250 2.1.0 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "a store that fails the commit gets the client 451 4.3.0, and the transaction is reset") {
  store().mode = store_mode::fail;
  connect();
  say(envelope);
  CHECK(say(message) == "451 4.3.0 Temporary failure: queue not available, try again later\r\n");
  CHECK(store().accepted.size() == 1);
  CHECK_FALSE(closed());
  // The transaction was reset: RCPT needs a new MAIL.
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  store().mode = store_mode::answer;
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\nRCPT TO:<bob@sales.example.test>\r\n"
            "DATA\r\n" + message)
        == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
           "250 2.0.0 Ok: queued as " + queue_id + "\r\n");
  CHECK(store().accepted.size() == 2);
}

TEST_CASE_FIXTURE(smtp_fixture, "a store that has not answered by data_timeout gets the client 451 and a closed connection, and the session waits for its answer") {
  store().mode = store_mode::hold;
  connect();
  say(envelope);
  CHECK(say(message) == "");
  CHECK(advance(599s) == "");
  CHECK_FALSE(closed());
  CHECK(advance(1s) == "451 4.3.0 Temporary failure: queue not available, try again later\r\n");
  CHECK(closed());
  CHECK(open_sessions() == 1); // it waits for the store's answer
  caf::anon_send(store_impl, release_atom::value);
  run();
  CHECK(take_output() == "");
  CHECK(open_sessions() == 0);
}

TEST_CASE_FIXTURE(smtp_fixture, "a recipient in a domain no postoffice takes gets 550 5.1.2, the others are taken") {
  connect();
  CHECK(say("EHLO client.example.test\r\nMAIL FROM:<ann@support.example.test>\r\n"
            "RCPT TO:<dave@elsewhere.example.test>\r\n")
        == ehlo_reply + "250 2.1.0 Ok\r\n"
                        "550 5.1.2 No postoffice takes domain elsewhere.example.test\r\n");
  CHECK(say("DATA\r\n") == "554 5.5.1 Error: no valid recipients\r\n");
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "250 2.1.5 Ok\r\n");
}

TEST_CASE_FIXTURE(smtp_fixture, "commands out of order get 503 5.5.1") {
  connect();
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n")
        == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  say("EHLO client.example.test\r\n");
  CHECK(say("RCPT TO:<bob@sales.example.test>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(say("DATA\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(say("MAIL FROM:<ann@support.example.test>\r\n")
        == "503 5.5.1 Error: nested MAIL command\r\n");
  // RSET ends the transaction: RCPT needs MAIL again.
  CHECK(say("RSET\r\nRCPT TO:<bob@sales.example.test>\r\n")
        == "250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n");
  CHECK(store().accepted.empty());
}

TEST_CASE_FIXTURE(smtp_fixture, "QUIT is answered 221 and closes the connection") {
  connect();
  CHECK(say("QUIT\r\n") == "221 2.0.0 Bye\r\n");
  CHECK(closed());
  CHECK(open_sessions() == 0);
}

TEST_CASE_FIXTURE(smtp_fixture, "a client silent for idle_timeout gets 421 4.4.2 and is disconnected") {
  connect();
  say("EHLO client.example.test\r\n");
  CHECK(advance(299s) == "");
  CHECK_FALSE(closed());
  // Activity starts the wait over.
  CHECK(say("NOOP\r\n") == "250 2.0.0 Ok\r\n");
  CHECK(advance(299s) == "");
  CHECK(advance(1s) == "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
  CHECK(closed());
  CHECK(open_sessions() == 0);
}

TEST_CASE_FIXTURE(smtp_fixture, "a command line trickling in for longer than idle_timeout gets 421 4.4.2") {
  connect();
  CHECK(say("EH") == "");
  for (int i = 0; i < 4; ++i) {
    CHECK(advance(60s) == "");
    CHECK(say("L") == ""); // one byte a minute is never silent...
  }
  // ...but the line began 300 s ago.
  CHECK(advance(60s) == "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
  CHECK(closed());
}
