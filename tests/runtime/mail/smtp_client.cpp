// Tests runtime/mail/smtp_client.cpp: SMTP/LMTP client dialogues, their bytes and outcomes.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/mail/smtp_client.hpp"

using namespace postconn;

namespace {

const std::string ehlo_all = "250-mx.test greets client.test\r\n"
                             "250-PIPELINING\r\n"
                             "250-SIZE 10240000\r\n"
                             "250-8BITMIME\r\n"
                             "250 ENHANCEDSTATUSCODES\r\n";

const std::string ehlo_none = "250 mx.test\r\n";

const std::vector<std::string> two = {"b@mx.test", "c@mx.test"};
const std::vector<std::string> three = {"b@mx.test", "c@mx.test", "d@mx.test"};

outgoing_message message(std::int64_t id, std::string sender,
                         std::vector<std::string> recipients, std::string content) {
  return {id, std::move(sender), std::move(recipients), std::move(content)};
}

/// Feeds the server's bytes; returns what the client sends in answer.
std::string answer(smtp_client_session& session, std::string_view server_bytes) {
  session.feed(server_bytes);
  return session.take_output();
}

/// A session past the greeting and EHLO/LHLO, nothing of the batch read yet.
smtp_client_session open_session(mail_protocol protocol,
                                 std::vector<outgoing_message> batch,
                                 const std::string& ehlo) {
  smtp_client_session session{protocol, "client.test", std::move(batch)};
  auto verb = protocol == mail_protocol::smtp ? "EHLO" : "LHLO";
  REQUIRE(session.take_output().empty());
  REQUIRE(answer(session, "220 mx.test ESMTP\r\n")
          == verb + std::string{" client.test\r\n"});
  session.feed(ehlo);
  REQUIRE(session.opened());
  return session;
}

/// "delivered 2.0.0 250 2.0.0 Ok" ("[not a reply]" added when the text is not one).
std::string summary(const recipient_outcome& outcome) {
  const char* results[] = {"delivered", "temporary", "permanent"};
  return std::string{results[static_cast<int>(outcome.result)]} + " " + outcome.status
         + " " + outcome.text + (outcome.text_is_reply ? "" : " [not a reply]");
}

std::string summary(const std::vector<delivery_outcome>& outcomes) {
  std::string text;
  for (const auto& outcome : outcomes) {
    text += std::to_string(outcome.delivery_id) + ": ";
    if (!outcome.opened)
      text += "open failed " + outcome.status + " " + outcome.text + "\n";
    for (const auto& recipient : outcome.recipients)
      text += recipient.address + " " + summary(recipient) + "\n";
  }
  return text;
}

// -- a recorded pipelined dialogue of two messages ------------------------------

std::vector<outgoing_message> two_messages() {
  return {message(7, "alice@client.test", {"bob@mx.test", "carol@mx.test"},
                  "Subject: caf\xc3\xa9\r\n\r\n.hidden\r\nmiddle .dot\r\n..two\r\n.\r\n"),
          message(8, "", {"dave@mx.test"}, "Subject: bounce\r\n\r\nno final CRLF")};
}

const std::string greeting = "220 mx.test ESMTP\r\n";

const std::string server_side = greeting + ehlo_all
                                + "250 2.1.0 Ok\r\n"
                                  "250 2.1.5 Ok\r\n"
                                  "250 2.1.5 Ok\r\n"
                                  "354 End data with <CR><LF>.<CR><LF>\r\n"
                                  "250-2.0.0 Ok: queued\r\n"
                                  "250 2.0.0 as 4F1A\r\n"
                                  "250 2.1.0 Ok\r\n"
                                  "250 2.1.5 Ok\r\n"
                                  "354 go ahead\r\n"
                                  "250 2.6.0 queued as 4F1B\r\n"
                                  "221 2.0.0 Bye\r\n";

const std::string client_side = "EHLO client.test\r\n"
                                "MAIL FROM:<alice@client.test> SIZE=50 BODY=8BITMIME\r\n"
                                "RCPT TO:<bob@mx.test>\r\n"
                                "RCPT TO:<carol@mx.test>\r\n"
                                "DATA\r\n"
                                "Subject: caf\xc3\xa9\r\n\r\n..hidden\r\nmiddle .dot\r\n"
                                "...two\r\n..\r\n.\r\n"
                                "MAIL FROM:<> SIZE=34\r\n"
                                "RCPT TO:<dave@mx.test>\r\n"
                                "DATA\r\n"
                                "Subject: bounce\r\n\r\nno final CRLF\r\n.\r\n"
                                "QUIT\r\n";

const std::string two_messages_delivered = "7: bob@mx.test delivered 2.0.0 250 2.0.0 Ok: "
                                           "queued as 4F1A\n"
                                           "carol@mx.test delivered 2.0.0 250 2.0.0 Ok: "
                                           "queued as 4F1A\n"
                                           "8: dave@mx.test delivered 2.6.0 250 2.6.0 "
                                           "queued as 4F1B\n";

} // namespace

TEST_CASE("a pipelined batch of two messages: the exact bytes and the outcomes") {
  smtp_client_session session{mail_protocol::smtp, "client.test", two_messages()};
  CHECK(session.waiting_for() == "greeting");
  std::string sent = answer(session, greeting);
  CHECK(sent == "EHLO client.test\r\n");
  CHECK(session.waiting_for() == "EHLO reply");
  sent += answer(session, ehlo_all);
  CHECK(session.extensions().pipelining);
  CHECK(session.extensions().max_size == 10240000);
  CHECK(session.waiting_for() == "MAIL reply");
  sent += answer(session, server_side.substr(greeting.size() + ehlo_all.size()));
  CHECK(sent == client_side);
  CHECK(session.finished());
  CHECK(session.waiting_for().empty());
  CHECK(summary(session.outcomes()) == two_messages_delivered);
  CHECK(session.outcomes()[0].recipients[0].text_is_reply);
}

TEST_CASE("every split point of the recorded dialogue: the same bytes and outcomes") {
  for (std::size_t split = 0; split <= server_side.size(); ++split) {
    smtp_client_session session{mail_protocol::smtp, "client.test", two_messages()};
    std::string sent = answer(session, std::string_view{server_side}.substr(0, split));
    sent += answer(session, std::string_view{server_side}.substr(split));
    INFO("split at ", split);
    CHECK(sent == client_side);
    CHECK(session.finished());
    CHECK(summary(session.outcomes()) == two_messages_delivered);
  }
}

TEST_CASE("one byte at a time gives the same bytes and outcomes") {
  smtp_client_session session{mail_protocol::smtp, "client.test", two_messages()};
  std::string sent;
  for (char c : server_side)
    sent += answer(session, std::string_view{&c, 1});
  CHECK(sent == client_side);
  CHECK(summary(session.outcomes()) == two_messages_delivered);
}

TEST_CASE("without PIPELINING every command waits for the reply to the one before") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "a@client.test", {"b@mx.test", "c@mx.test"},
                                       "8-bit \xff but no 8BITMIME offered\r\n")},
                              ehlo_none);
  CHECK(session.take_output() == "MAIL FROM:<a@client.test>\r\n");
  CHECK(answer(session, "250 sender ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  CHECK(session.waiting_for() == "RCPT reply");
  CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<c@mx.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "DATA\r\n");
  CHECK(session.waiting_for() == "DATA reply");
  CHECK(answer(session, "354 go\r\n") == "8-bit \xff but no 8BITMIME offered\r\n.\r\n");
  CHECK(session.waiting_for() == "end-of-data reply");
  CHECK(answer(session, "250 2.6.0 queued (status not offered)\r\n") == "QUIT\r\n");
  CHECK_FALSE(session.finished());
  session.feed("221 bye\r\n");
  CHECK(session.finished());
  CHECK(summary(session.outcomes())
        == "1: b@mx.test delivered 2.6.0 250 2.6.0 queued (status not offered)\n"
           "c@mx.test delivered 2.6.0 250 2.6.0 queued (status not offered)\n");
}

TEST_CASE("a reply's enhanced status counts only when its class matches the reply code") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "a@client.test", {"b@mx.test", "c@mx.test"}, "Hi\r\n")},
                              ehlo_none);
  CHECK(session.take_output() == "MAIL FROM:<a@client.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  CHECK(answer(session, "550 2.1.5 confused server\r\n") == "RCPT TO:<c@mx.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "DATA\r\n");
  CHECK(answer(session, "354 go\r\n") == "Hi\r\n.\r\n");
  CHECK(answer(session, "250 5.0.0 queued\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "1: b@mx.test permanent 5.0.0 550 2.1.5 confused server\n"
           "c@mx.test delivered 2.0.0 250 5.0.0 queued\n");
}

TEST_CASE("LMTP: one reply per accepted recipient after DATA, in RCPT order") {
  auto session = open_session(mail_protocol::lmtp,
                              {message(3, "a@client.test", three, "Hi\r\n")},
                              "250-mx.test\r\n250-PIPELINING\r\n"
                              "250 ENHANCEDSTATUSCODES\r\n");
  CHECK(session.take_output()
        == "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mx.test>\r\nRCPT TO:<c@mx.test>\r\n"
           "RCPT TO:<d@mx.test>\r\nDATA\r\n");
  CHECK(answer(session, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
                        "354 go\r\n")
        == "Hi\r\n.\r\n");
  CHECK(answer(session, "250 2.0.0 b ok\r\n552 5.2.2 c over quota\r\n").empty());
  CHECK(session.waiting_for() == "end-of-data reply");
  CHECK(answer(session, "250 2.0.0 d ok\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "3: b@mx.test delivered 2.0.0 250 2.0.0 b ok\n"
           "c@mx.test permanent 5.2.2 552 5.2.2 c over quota\n"
           "d@mx.test delivered 2.0.0 250 2.0.0 d ok\n");
}

TEST_CASE("LMTP: a refused RCPT gets no reply after DATA") {
  auto session = open_session(mail_protocol::lmtp,
                              {message(3, "", {"b@mx.test", "c@mx.test"}, "Hi\r\n")},
                              "250-mx.test\r\n250 PIPELINING\r\n");
  session.take_output();
  CHECK(answer(session, "250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n")
        == "Hi\r\n.\r\n");
  CHECK(answer(session, "250 c ok\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "3: b@mx.test permanent 5.0.0 550 no such user\n"
           "c@mx.test delivered 2.0.0 250 c ok\n");
}

TEST_CASE("a 4xx greeting is an open failure for every message") {
  smtp_client_session session{mail_protocol::smtp, "client.test", two_messages()};
  CHECK(answer(session, "421 4.3.2 mx.test busy, try later\r\n").empty());
  CHECK(session.finished());
  CHECK_FALSE(session.opened());
  CHECK(summary(session.outcomes())
        == "7: open failed 4.3.2 421 4.3.2 mx.test busy, try later\n"
           "8: open failed 4.3.2 421 4.3.2 mx.test busy, try later\n");
}

TEST_CASE("a 5xx greeting is an open failure too, followed by QUIT") {
  smtp_client_session session{mail_protocol::smtp, "client.test", two_messages()};
  CHECK(answer(session, "554 5.7.1 no service for you\r\n") == "QUIT\r\n");
  CHECK_FALSE(session.finished());
  session.feed("221 bye\r\n");
  CHECK(session.finished());
  CHECK(summary(session.outcomes())
        == "7: open failed 5.7.1 554 5.7.1 no service for you\n"
           "8: open failed 5.7.1 554 5.7.1 no service for you\n");
}

TEST_CASE("a 5xx to EHLO falls back to HELO, without extensions") {
  smtp_client_session session{mail_protocol::smtp, "client.test",
                              {message(1, "a@client.test", {"b@mx.test"}, "\xe9\r\n")}};
  session.feed("220 mx.test\r\n");
  CHECK(session.take_output() == "EHLO client.test\r\n");
  CHECK(answer(session, "502 5.5.2 command not recognized\r\n")
        == "HELO client.test\r\n");
  CHECK(session.waiting_for() == "HELO reply");
  CHECK_FALSE(session.opened());
  CHECK(answer(session, "250 mx.test\r\n") == "MAIL FROM:<a@client.test>\r\n");
  CHECK(session.opened());
}

TEST_CASE("a 4xx to EHLO and a 5xx to LHLO are open failures, without HELO") {
  smtp_client_session smtp{mail_protocol::smtp, "client.test", two_messages()};
  smtp.feed("220 mx.test\r\n");
  smtp.take_output();
  CHECK(answer(smtp, "451 4.3.0 try later\r\n") == "QUIT\r\n");
  CHECK(smtp.outcomes()[0].text == "451 4.3.0 try later");
  CHECK_FALSE(smtp.outcomes()[0].opened);
  smtp_client_session lmtp{mail_protocol::lmtp, "client.test", two_messages()};
  lmtp.feed("220 mx.test\r\n");
  lmtp.take_output();
  CHECK(answer(lmtp, "500 5.5.1 what\r\n") == "QUIT\r\n");
  CHECK(lmtp.outcomes()[1].status == "5.5.1");
  CHECK_FALSE(lmtp.outcomes()[1].opened);
}

TEST_CASE("a 5xx to one RCPT of three refuses that recipient only") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "a@client.test", three, "Hi\r\n")},
                              ehlo_all);
  session.take_output();
  CHECK(answer(session, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
                        "550 5.1.1 <c@mx.test>: Recipient address rejected\r\n"
                        "250 2.1.5 ok\r\n354 go\r\n")
        == "Hi\r\n.\r\n");
  CHECK(answer(session, "250 2.0.0 queued\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "1: b@mx.test delivered 2.0.0 250 2.0.0 queued\n"
           "c@mx.test permanent 5.1.1 550 5.1.1 <c@mx.test>: Recipient address rejected\n"
           "d@mx.test delivered 2.0.0 250 2.0.0 queued\n");
}

TEST_CASE("a 4xx to DATA fails the accepted recipients, RSET before the next message") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "a@client.test", two, "1\r\n"),
                               message(2, "a@client.test", {"d@mx.test"}, "2\r\n")},
                              ehlo_none);
  session.take_output();
  CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  CHECK(answer(session, "550 5.7.1 relay denied\r\n") == "RCPT TO:<c@mx.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "DATA\r\n");
  CHECK(answer(session, "451 4.3.0 queue file write error\r\n") == "RSET\r\n");
  CHECK(session.waiting_for() == "RSET reply");
  CHECK(answer(session, "250 reset\r\n") == "MAIL FROM:<a@client.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<d@mx.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "DATA\r\n");
  CHECK(answer(session, "354 go\r\n") == "2\r\n.\r\n");
  CHECK(answer(session, "250 ok\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "1: b@mx.test permanent 5.7.1 550 5.7.1 relay denied\n"
           "c@mx.test temporary 4.3.0 451 4.3.0 queue file write error\n"
           "2: d@mx.test delivered 2.0.0 250 ok\n");
}

TEST_CASE("every RCPT refused: no content, RSET instead (lock-step and pipelined)") {
  auto lock_step = open_session(mail_protocol::smtp,
                                {message(1, "", {"b@mx.test"}, "1\r\n"),
                                 message(2, "", {"c@mx.test"}, "2\r\n")},
                                ehlo_none);
  lock_step.take_output();
  CHECK(answer(lock_step, "250 ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  CHECK(answer(lock_step, "450 4.2.0 greylisted\r\n") == "RSET\r\n");
  CHECK(answer(lock_step, "250 ok\r\n") == "MAIL FROM:<>\r\n");

  auto pipelined = open_session(mail_protocol::smtp,
                                {message(1, "", {"b@mx.test"}, "1\r\n"),
                                 message(2, "", {"c@mx.test"}, "2\r\n")},
                                ehlo_all);
  pipelined.take_output();
  CHECK(answer(pipelined, "250 2.1.0 ok\r\n450 4.2.0 greylisted\r\n"
                          "554 5.5.1 Error: no valid recipients\r\n")
        == "RSET\r\n");
  CHECK(answer(pipelined, "250 2.0.0 ok\r\n").substr(0, 16) == "MAIL FROM:<> SIZ");
  CHECK(summary(pipelined.outcomes()[0].recipients[0])
        == "temporary 4.2.0 450 4.2.0 greylisted");
}

TEST_CASE("a refused MAIL applies to every recipient, the last message needs no RSET") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "a@client.test", two, "1\r\n")},
                              ehlo_all);
  session.take_output();
  CHECK(answer(session, "553 5.1.8 sender domain unknown\r\n503 5.5.1 need MAIL\r\n"
                        "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n")
        == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "1: b@mx.test permanent 5.1.8 553 5.1.8 sender domain unknown\n"
           "c@mx.test permanent 5.1.8 553 5.1.8 sender domain unknown\n");
}

TEST_CASE("the connection lost mid-DATA: unfinished recipients fail temporarily") {
  auto session = open_session(mail_protocol::smtp, two_messages(), ehlo_all);
  session.take_output();
  session.feed("250 2.1.0 ok\r\n550 5.1.1 no bob\r\n250 2.1.5 ok\r\n354 go\r\n");
  CHECK_FALSE(session.take_output().empty());
  session.connection_lost();
  CHECK(session.finished());
  CHECK(summary(session.outcomes())
        == "7: bob@mx.test permanent 5.1.1 550 5.1.1 no bob\n"
           "carol@mx.test temporary 4.4.2 connection lost while waiting for the "
           "end-of-data reply [not a reply]\n"
           "8: dave@mx.test temporary 4.4.2 connection lost while waiting for the "
           "end-of-data reply [not a reply]\n");
  session.feed("250 2.0.0 too late\r\n");
  CHECK(session.outcomes()[0].recipients[1].status == "4.4.2");
}

TEST_CASE("LMTP: a recipient delivered before the loss stays delivered") {
  auto session = open_session(mail_protocol::lmtp,
                              {message(3, "", {"b@mx.test", "c@mx.test"}, "Hi\r\n")},
                              "250-mx.test\r\n250 PIPELINING\r\n");
  session.feed("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 b ok\r\n");
  session.connection_lost();
  CHECK(summary(session.outcomes())
        == "3: b@mx.test delivered 2.0.0 250 b ok\n"
           "c@mx.test temporary 4.4.2 connection lost while waiting for the "
           "end-of-data reply [not a reply]\n");
}

TEST_CASE("the connection lost or a timeout before the open completed: open failures") {
  smtp_client_session lost{mail_protocol::smtp, "client.test", two_messages()};
  lost.connection_lost();
  CHECK(summary(lost.outcomes())
        == "7: open failed 4.4.2 connection lost while waiting for the greeting\n"
           "8: open failed 4.4.2 connection lost while waiting for the greeting\n");
  smtp_client_session slow{mail_protocol::lmtp, "client.test", two_messages()};
  slow.feed("220 mx.test\r\n");
  slow.timed_out();
  CHECK(slow.finished());
  CHECK(slow.take_output().empty());
  CHECK(slow.outcomes()[1].text == "timeout waiting for the LHLO reply");
}

TEST_CASE("a timeout after the open names the step") {
  auto session = open_session(mail_protocol::smtp, two_messages(), ehlo_all);
  session.feed("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  session.timed_out();
  CHECK(session.outcomes()[0].opened);
  CHECK(session.outcomes()[0].recipients[0].text == "timeout waiting for the RCPT reply");
  CHECK(session.outcomes()[1].recipients[0].status == "4.4.2");
}

TEST_CASE("a malformed reply ends the session") {
  const char* bad_lines[] = {"25O ok\r\n", "250ok\r\n", "2\r\n", "\r\n",
                             "250-ok\r\n251 ok\r\n"};
  for (const char* bad : bad_lines) {
    INFO("reply: ", bad);
    auto session = open_session(mail_protocol::smtp, two_messages(), ehlo_all);
    session.take_output();
    session.feed(bad);
    CHECK(session.finished());
    CHECK(session.take_output().empty());
    auto text = session.outcomes()[1].recipients[0].text;
    CHECK(text.rfind("malformed reply while waiting for the MAIL reply: ", 0) == 0);
    CHECK(session.outcomes()[1].recipients[0].status == "4.5.0");
  }
}

TEST_CASE("a reply line over 2048 octets is malformed, even before its LF") {
  auto longest = "250 " + std::string(max_reply_line_length - 4, 'x');
  auto fine = open_session(mail_protocol::smtp, two_messages(), ehlo_none);
  fine.feed(longest + "\r");
  fine.feed("\n");
  CHECK_FALSE(fine.finished());
  CHECK(fine.waiting_for() == "RCPT reply");
  auto too_long = open_session(mail_protocol::smtp, two_messages(), ehlo_none);
  too_long.feed(longest + "yy");
  CHECK(too_long.finished());
  CHECK(too_long.outcomes()[0].recipients[0].text
        == "malformed reply while waiting for the MAIL reply: 250 "
             + std::string(76, 'x'));
}

TEST_CASE("multi-line replies become one line, repeated status dropped, controls as ?") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "", {"b@mx.test"}, "1\r\n")}, ehlo_all);
  session.take_output();
  session.feed("250 2.1.0 ok\r\n"
               "550-5.1.1 The account you tried\r\n"
               "550-5.1.1 to reach does not exist.\r\n"
               "550-\r\n"
               "550 5.1.1 See\tthe help \x80page.\r\n"
               "554 5.5.1 no valid recipients\r\n");
  CHECK(summary(session.outcomes()[0].recipients[0])
        == "permanent 5.1.1 550 5.1.1 The account you tried to reach does not exist. "
           "See?the help ?page.");
  CHECK(session.take_output() == "QUIT\r\n");
}

TEST_CASE("a 421 to any command ends the session with that reply") {
  auto session = open_session(mail_protocol::smtp, two_messages(), ehlo_all);
  session.take_output();
  session.feed("250 2.1.0 ok\r\n250 2.1.5 ok\r\n421 4.4.2 idle too long\r\n");
  CHECK(session.finished());
  CHECK(session.take_output().empty());
  CHECK(summary(session.outcomes())
        == "7: bob@mx.test temporary 4.4.2 421 4.4.2 idle too long\n"
           "carol@mx.test temporary 4.4.2 421 4.4.2 idle too long\n"
           "8: dave@mx.test temporary 4.4.2 421 4.4.2 idle too long\n");
}

TEST_CASE("a refused RSET fails the messages still to come, then QUIT") {
  auto session = open_session(mail_protocol::smtp, two_messages(), ehlo_none);
  session.take_output();
  CHECK(answer(session, "451 try later\r\n") == "RSET\r\n");
  CHECK(answer(session, "500 what\r\n") == "QUIT\r\n");
  CHECK(summary(session.outcomes())
        == "7: bob@mx.test temporary 4.0.0 451 try later\n"
           "carol@mx.test temporary 4.0.0 451 try later\n"
           "8: dave@mx.test temporary 4.5.0 RSET refused: 500 what [not a reply]\n");
}

TEST_CASE("a message without recipients is skipped") {
  auto session = open_session(mail_protocol::smtp,
                              {message(1, "", {}, "1\r\n"),
                               message(2, "", {"b@mx.test"}, "2\r\n")},
                              ehlo_none);
  CHECK(session.take_output() == "MAIL FROM:<>\r\n");
  CHECK(session.outcomes()[0].opened);
  CHECK(session.outcomes()[0].recipients.empty());
}

// -- STARTTLS ----------------------------------------------------------------------

namespace {

const std::string ehlo_starttls = "250-mx.test\r\n"
                                  "250-PIPELINING\r\n"
                                  "250 STARTTLS\r\n";

/// A session with one message to b@mx.test, past the greeting.
smtp_client_session greeted(tls_policy tls, mail_protocol protocol = mail_protocol::smtp) {
  smtp_client_session session{protocol, "client.test",
                              {message(1, "a@client.test", {"b@mx.test"}, "x\r\n")}, tls};
  session.feed("220 mx.test ESMTP\r\n");
  session.take_output();
  return session;
}

} // namespace

TEST_CASE("STARTTLS: offered and taken, then EHLO again and what was offered in plaintext is forgotten") {
  for (auto tls : {tls_policy::may, tls_policy::verify}) {
    auto session = greeted(tls);
    CHECK(answer(session, ehlo_starttls) == "STARTTLS\r\n");
    CHECK(session.waiting_for() == "STARTTLS reply");
    // Bytes after the 220 are the server's, not TLS: dropped.
    CHECK(answer(session, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n").empty());
    CHECK(session.tls_wanted());
    CHECK_FALSE(session.opened());
    session.tls_started();
    CHECK_FALSE(session.tls_wanted());
    CHECK(session.take_output() == "EHLO client.test\r\n");
    // No PIPELINING after TLS: one command per reply.
    CHECK(answer(session, ehlo_none) == "MAIL FROM:<a@client.test>\r\n");
    CHECK(session.opened());
    CHECK_FALSE(session.extensions().pipelining);
    CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  }
}

TEST_CASE("STARTTLS over LMTP: LHLO again after the handshake") {
  auto session = greeted(tls_policy::may, mail_protocol::lmtp);
  CHECK(answer(session, ehlo_starttls) == "STARTTLS\r\n");
  answer(session, "220 go ahead\r\n");
  session.tls_started();
  CHECK(session.take_output() == "LHLO client.test\r\n");
}

TEST_CASE("STARTTLS: none never asks, may goes on in plaintext without it or when refused") {
  auto none = greeted(tls_policy::none);
  CHECK(answer(none, ehlo_starttls).rfind("MAIL FROM:", 0) == 0);
  auto not_offered = greeted(tls_policy::may);
  CHECK(answer(not_offered, ehlo_all).rfind("MAIL FROM:", 0) == 0);
  CHECK(not_offered.opened());
  auto refused = greeted(tls_policy::may);
  CHECK(answer(refused, ehlo_starttls) == "STARTTLS\r\n");
  CHECK(answer(refused, "454 4.7.0 TLS not available\r\n").rfind("MAIL FROM:", 0) == 0);
  CHECK(refused.opened());
  CHECK_FALSE(refused.tls_wanted());
}

TEST_CASE("STARTTLS verify: not offered, refused, EHLO refused or a failed handshake fail the open") {
  auto not_offered = greeted(tls_policy::verify);
  CHECK(answer(not_offered, ehlo_all) == "QUIT\r\n");
  CHECK(summary(not_offered.outcomes())
        == "1: open failed 4.7.10 TLS required (tls = \"verify\") but the server does not "
           "offer STARTTLS\n");
  auto refused = greeted(tls_policy::verify);
  answer(refused, ehlo_starttls);
  CHECK(answer(refused, "454 4.7.0 TLS not available\r\n") == "QUIT\r\n");
  CHECK(summary(refused.outcomes()) == "1: open failed 4.7.0 454 4.7.0 TLS not available\n");
  auto no_ehlo = greeted(tls_policy::verify);
  CHECK(answer(no_ehlo, "502 5.5.1 no EHLO here\r\n") == "QUIT\r\n");
  CHECK_FALSE(no_ehlo.opened());
  auto broken = greeted(tls_policy::verify);
  answer(broken, ehlo_starttls);
  answer(broken, "220 go ahead\r\n");
  broken.tls_failed("certificate verification failed: hostname mismatch");
  CHECK(broken.finished());
  CHECK(broken.take_output().empty());
  CHECK(summary(broken.outcomes())
        == "1: open failed 4.7.5 TLS handshake failed: certificate verification failed: "
           "hostname mismatch\n");
}

TEST_CASE("a session whose batch comes once it is open: it waits after EHLO, then sends it") {
  smtp_client_session session{mail_protocol::smtp, "client.test", tls_policy::none};
  CHECK_FALSE(session.ready_for_batch());
  CHECK(answer(session, "220 mx.test ESMTP\r\n") == "EHLO client.test\r\n");
  CHECK(answer(session, ehlo_none).empty());
  CHECK(session.opened());
  CHECK(session.ready_for_batch());
  CHECK_FALSE(session.finished());
  session.send_batch({message(7, "a@client.test", {"b@mx.test"}, "Subject: x\r\n\r\nhi\r\n")});
  CHECK_FALSE(session.ready_for_batch());
  CHECK(session.take_output() == "MAIL FROM:<a@client.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "RCPT TO:<b@mx.test>\r\n");
  CHECK(answer(session, "250 ok\r\n") == "DATA\r\n");
  CHECK(answer(session, "354 go\r\n") == "Subject: x\r\n\r\nhi\r\n.\r\n");
  CHECK(answer(session, "250 2.0.0 queued\r\n") == "QUIT\r\n");
  session.feed("221 bye\r\n");
  CHECK(session.finished());
  CHECK(summary(session.outcomes()) == "7: b@mx.test delivered 2.0.0 250 2.0.0 queued\n");
}

TEST_CASE("a waiting session given an empty batch says QUIT, and one never opened waits for none") {
  smtp_client_session session{mail_protocol::lmtp, "client.test", tls_policy::none};
  answer(session, "220 mx.test LMTP\r\n");
  answer(session, ehlo_none);
  REQUIRE(session.ready_for_batch());
  session.send_batch({});
  CHECK(session.take_output() == "QUIT\r\n");
  session.feed("221 bye\r\n");
  CHECK(session.finished());
  CHECK(session.outcomes().empty());

  smtp_client_session refused{mail_protocol::smtp, "client.test", tls_policy::none};
  CHECK(answer(refused, "554 no\r\n") == "QUIT\r\n");
  CHECK_FALSE(refused.opened());
  CHECK_FALSE(refused.ready_for_batch());
}

TEST_CASE("a waiting session that lost its connection, or heard a 421, fails the batch it is given") {
  smtp_client_session lost{mail_protocol::smtp, "client.test", tls_policy::none};
  answer(lost, "220 mx.test ESMTP\r\n");
  answer(lost, ehlo_none);
  lost.connection_lost();
  CHECK(lost.finished());
  lost.send_batch({message(1, "a@client.test", {"b@mx.test"}, "x\r\n")});
  CHECK(lost.take_output().empty());
  REQUIRE(lost.outcomes().size() == 1);
  CHECK(lost.outcomes()[0].opened);
  CHECK(summary(lost.outcomes()[0].recipients[0])
        == "temporary 4.4.2 connection lost while waiting for the messages of the batch [not a reply]");

  smtp_client_session closing{mail_protocol::smtp, "client.test", tls_policy::none};
  answer(closing, "220 mx.test ESMTP\r\n");
  answer(closing, ehlo_none);
  closing.feed("421 4.4.2 idle too long\r\n");
  CHECK(closing.finished());
  closing.send_batch({message(2, "a@client.test", {"b@mx.test"}, "x\r\n")});
  CHECK(summary(closing.outcomes()[0].recipients[0])
        == "temporary 4.4.2 421 4.4.2 idle too long");
}

TEST_CASE("a session kept open after its batch waits, checks the server with RSET, and takes the next one") {
  smtp_client_session session{mail_protocol::smtp, "client.test", tls_policy::none};
  answer(session, "220 mx.test ESMTP\r\n");
  answer(session, ehlo_none);
  session.send_batch({message(7, "a@client.test", {"b@mx.test"}, "x\r\n")},
                     smtp_client_session::after_batch::stay_open);
  CHECK(session.take_output() == "MAIL FROM:<a@client.test>\r\n");
  answer(session, "250 ok\r\n");
  answer(session, "250 ok\r\n");
  CHECK(answer(session, "354 go\r\n") == "x\r\n.\r\n");
  CHECK(answer(session, "250 2.0.0 first\r\n").empty());
  CHECK(session.ready_for_batch());
  CHECK_FALSE(session.finished());
  CHECK(summary(session.outcomes()) == "7: b@mx.test delivered 2.0.0 250 2.0.0 first\n");

  session.check_alive();
  CHECK(session.take_output() == "RSET\r\n");
  CHECK_FALSE(session.ready_for_batch());
  CHECK(session.waiting_for() == "RSET reply");
  CHECK(answer(session, "250 2.0.0 reset\r\n").empty());
  CHECK(session.ready_for_batch());
  session.send_batch({message(8, "c@client.test", {"d@mx.test"}, "y\r\n")});
  CHECK(session.take_output() == "MAIL FROM:<c@client.test>\r\n");
  answer(session, "250 ok\r\n");
  answer(session, "250 ok\r\n");
  answer(session, "354 go\r\n");
  CHECK(answer(session, "250 2.0.0 second\r\n") == "QUIT\r\n");
  session.feed("221 bye\r\n");
  CHECK(session.finished());
  CHECK(summary(session.outcomes()) == "8: d@mx.test delivered 2.0.0 250 2.0.0 second\n");
}

TEST_CASE("a kept session whose server refused RSET, said 421 or went away is finished, with no batch failed") {
  auto kept = [] {
    smtp_client_session session{mail_protocol::smtp, "client.test", tls_policy::none};
    answer(session, "220 mx.test ESMTP\r\n");
    answer(session, ehlo_none);
    session.send_batch({}, smtp_client_session::after_batch::stay_open);
    REQUIRE(session.ready_for_batch());
    session.check_alive();
    REQUIRE(session.take_output() == "RSET\r\n");
    return session;
  };
  auto refused = kept();
  refused.feed("554 5.5.1 no\r\n");
  CHECK(refused.finished());
  CHECK_FALSE(refused.ready_for_batch());
  CHECK(refused.outcomes().empty());
  CHECK(refused.ended_early().text == "554 5.5.1 no");

  auto closing = kept();
  closing.feed("421 4.4.2 idle too long\r\n");
  CHECK(closing.finished());
  CHECK(closing.take_output().empty());

  auto lost = kept();
  lost.connection_lost();
  CHECK(lost.finished());
  CHECK(lost.ended_early().text == "connection lost while waiting for the RSET reply");
}
