// Tests runtime/mail/smtp_data.cpp: DATA un-stuffing, the terminator, limits and smuggling.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "runtime/mail/smtp_data.hpp"

using namespace postconn;

namespace {

constexpr std::uint64_t no_practical_limit = 1u << 30;

struct decoded {
  std::size_t consumed = 0;
  bool finished = false;
  /// "accepted", or the rejection as "code status".
  std::string verdict;
  std::string content;
};

// Feeds `wire` cut at the given offsets (ascending) and collects the result.
decoded decode(std::string_view wire, const std::vector<std::size_t>& cuts = {},
               std::uint64_t max_size = no_practical_limit) {
  smtp_data_decoder decoder{max_size};
  decoded result;
  std::size_t start = 0;
  auto feed_up_to = [&](std::size_t end) {
    auto chunk = wire.substr(start, end - start);
    auto consumed = decoder.feed(chunk);
    CHECK((consumed == chunk.size() || decoder.finished()));
    result.consumed += consumed;
    start = end;
  };
  for (auto cut : cuts)
    feed_up_to(cut);
  feed_up_to(wire.size());
  result.finished = decoder.finished();
  if (!result.finished)
    result.verdict = "unfinished";
  else if (decoder.rejection())
    result.verdict = std::to_string(decoder.rejection()->code) + " "
                     + decoder.rejection()->status;
  else
    result.verdict = "accepted";
  result.content = decoder.take_content();
  return result;
}

} // namespace

TEST_CASE("a message ends at CRLF.CRLF and keeps its CRLF line endings") {
  auto result = decode("Subject: hi\r\n\r\nHello\r\n.\r\n");
  CHECK(result.verdict == "accepted");
  CHECK(result.content == "Subject: hi\r\n\r\nHello\r\n");
  CHECK(result.consumed == 25);
}

TEST_CASE("'.' as the very first line ends an empty message") {
  auto result = decode(".\r\nQUIT\r\n");
  CHECK(result.verdict == "accepted");
  CHECK(result.content.empty());
  CHECK(result.consumed == 3);
}

TEST_CASE("consumption stops right after the terminator, leaving pipelined commands") {
  std::string message = "a\r\n.\r\n";
  auto result = decode(message + "MAIL FROM:<x@y.test>\r\nRCPT TO:<z@y.test>\r\n");
  CHECK(result.consumed == message.size());
  CHECK(result.content == "a\r\n");
}

TEST_CASE("feeding after the end consumes nothing") {
  smtp_data_decoder decoder{no_practical_limit};
  CHECK(decoder.feed("x\r\n.\r\n") == 6);
  CHECK(decoder.finished());
  CHECK(decoder.feed("more\r\n.\r\n") == 0);
  CHECK(decoder.take_content() == "x\r\n");
}

TEST_CASE("nothing fed, nothing finished") {
  smtp_data_decoder decoder{no_practical_limit};
  CHECK(decoder.feed("") == 0);
  CHECK(decoder.feed("partial\r\n.") == 10);
  CHECK_FALSE(decoder.finished());
  CHECK(decoder.feed("\r") == 1);
  CHECK_FALSE(decoder.finished());
  CHECK(decoder.feed("\n") == 1);
  CHECK(decoder.finished());
}

TEST_CASE("a leading dot is removed from every line that has one") {
  auto result = decode("..leading\r\n.x\r\n...\r\n..\r\nmid.dle\r\n.\r\n");
  CHECK(result.verdict == "accepted");
  CHECK(result.content == ".leading\r\nx\r\n..\r\n.\r\nmid.dle\r\n");
  CHECK(decode("..\r\n.\r\n").content == ".\r\n");
}

TEST_CASE("a dot not at a line start is data") {
  auto result = decode("a.\r\n.\r\n");
  CHECK(result.content == "a.\r\n");
  CHECK(result.consumed == 7);
  CHECK(decode("a\r\n .\r\n").verdict == "unfinished");
}

TEST_CASE("only CRLF.CRLF ends DATA: smuggling attempts are data, and rejected") {
  const std::string real_end = "\r\n.\r\n";
  for (std::string fake : {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\n.\n\r\n", "\r.\r\n",
                           "\r\n.\r\r\n", "\r\n.\rX\r\n", "\r\n.\r.\r\n"}) {
    INFO("fake terminator: ", fake);
    std::string wire = "x" + fake + "MAIL FROM:<evil@x.test>" + real_end;
    CHECK(decode("x" + fake).verdict == "unfinished");
    auto result = decode(wire + "QUIT\r\n");
    CHECK(result.verdict == "550 5.6.0");
    CHECK(result.consumed == wire.size());
    CHECK(result.content.empty());
  }
}

TEST_CASE("a bare LF or CR as the first line does not end DATA") {
  CHECK(decode(".\n").verdict == "unfinished");
  CHECK(decode(".\r").verdict == "unfinished");
  CHECK(decode(".\n.\r\n").verdict == "unfinished");
  auto result = decode(".\n\r\n.\r\n");
  CHECK(result.verdict == "550 5.6.0");
  CHECK(result.consumed == 7);
}

TEST_CASE("a bare CR or LF anywhere rejects the message with 550 5.6.0") {
  CHECK(decode("a\nb\r\n.\r\n").verdict == "550 5.6.0");
  CHECK(decode("a\rb\r\n.\r\n").verdict == "550 5.6.0");
  CHECK(decode("a\r\r\n.\r\n").verdict == "550 5.6.0");
  CHECK(decode("\n\r\n.\r\n").verdict == "550 5.6.0");
  CHECK(decode("a\r\n\r\r\n.\r\n").verdict == "550 5.6.0");
  CHECK(decode("a\r\n\r\n\r\n.\r\n").verdict == "accepted");
}

TEST_CASE("text lines may have 1000 octets with CRLF, no more") {
  std::string longest(998, 'x');
  CHECK(decode(longest + "\r\n.\r\n").verdict == "accepted");
  CHECK(decode(longest + "x\r\n.\r\n").verdict == "500 5.5.2");
  CHECK(decode("." + longest + "\r\n.\r\n").verdict == "accepted");
  CHECK(decode(".." + longest + "\r\n.\r\n").verdict == "500 5.5.2");
  CHECK(decode("ok\r\n" + longest + "\r\nok\r\n.\r\n").verdict == "accepted");
  auto split = decode(longest + "x\r\n.\r\n", {500, 999});
  CHECK(split.verdict == "500 5.5.2");
  CHECK(split.consumed == 1004);
}

TEST_CASE("content over the size limit gets 552 5.3.4 at the end") {
  CHECK(decode("12345678\r\n.\r\n", {}, 10).verdict == "accepted");
  CHECK(decode("12345678\r\n.\r\n", {}, 10).content == "12345678\r\n");
  CHECK(decode("..2345678\r\n.\r\n", {}, 10).verdict == "accepted");
  CHECK(decode("123456789\r\n.\r\n", {}, 10).verdict == "552 5.3.4");
  CHECK(decode(".\r\n", {}, 0).verdict == "accepted");
  CHECK(decode("\r\n.\r\n", {}, 0).verdict == "552 5.3.4");
}

TEST_CASE("past the size limit nothing is stored, but the end is still found") {
  smtp_data_decoder decoder{100};
  std::string line(98, 'x');
  line += "\r\n";
  for (int i = 0; i < 10000; ++i)
    REQUIRE(decoder.feed(line) == line.size());
  CHECK_FALSE(decoder.finished());
  CHECK(decoder.size() == 1000000);
  CHECK(decoder.feed(".\r\nQUIT\r\n") == 3);
  REQUIRE(decoder.rejection());
  CHECK(decoder.rejection()->code == 552);
  CHECK(decoder.rejection()->status == "5.3.4");
  auto content = decoder.take_content();
  CHECK(content.empty());
  CHECK(content.capacity() <= 100);
}

TEST_CASE("the first problem found is the one reported") {
  CHECK(decode("a\nb" + std::string(2000, 'x') + "\r\n.\r\n", {}, 10).verdict
        == "550 5.6.0");
  CHECK(decode(std::string(2000, 'x') + "\nb\r\n.\r\n").verdict == "500 5.5.2");
  CHECK(decode("0123456789ab\n\r\n.\r\n", {}, 10).verdict == "552 5.3.4");
}

// Found by fuzz/smtp_data.cpp: a run of text passing both limits at once
// reported the line limit even when it had passed the size limit first.
TEST_CASE("the first limit passed is reported whatever the chunking") {
  const std::string long_line = std::string(1100, 'a') + "\r\n.\r\n";
  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < long_line.size(); ++i)
    every_byte.push_back(i);
  for (const auto& cuts : {std::vector<std::size_t>{}, every_byte}) {
    CHECK(decode(long_line, cuts, 256).verdict == "552 5.3.4");
    CHECK(decode(long_line, cuts, 1050).verdict == "500 5.5.2");
    CHECK(decode(long_line, cuts, 1000).verdict == "500 5.5.2");
  }
}

TEST_CASE("every split point of a clean message decodes the same") {
  const std::string wire = "..a\r\n\r\n.b\r\nc.\r\n.\r\nNOOP\r\n";
  const std::string expected = ".a\r\n\r\nb\r\nc.\r\n";
  const std::size_t end = wire.size() - 6;
  for (std::size_t i = 0; i <= wire.size(); ++i)
    for (std::size_t j = i; j <= wire.size(); ++j) {
      INFO("cuts at ", i, " and ", j);
      auto result = decode(wire, {i, j});
      CHECK(result.verdict == "accepted");
      CHECK(result.content == expected);
      CHECK(result.consumed == end);
    }
}

TEST_CASE("every split point of a smuggling message decodes the same") {
  const std::string wire = "a\r\n.\rb\n.\n.\r\r\n..\r\n.\r\nRSET\r\n";
  const std::size_t end = wire.size() - 6;
  for (std::size_t i = 0; i <= wire.size(); ++i)
    for (std::size_t j = i; j <= wire.size(); ++j) {
      INFO("cuts at ", i, " and ", j);
      auto result = decode(wire, {i, j});
      CHECK(result.verdict == "550 5.6.0");
      CHECK(result.consumed == end);
    }
}

TEST_CASE("byte-by-byte feeding equals feeding at once") {
  const std::string wire = "From: a@b.test\r\n\r\n..x\r\n.\r\nQUIT\r\n";
  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < wire.size(); ++i)
    every_byte.push_back(i);
  auto whole = decode(wire);
  auto bytewise = decode(wire, every_byte);
  CHECK(bytewise.verdict == "accepted");
  CHECK(bytewise.content == "From: a@b.test\r\n\r\n.x\r\n");
  CHECK(bytewise.content == whole.content);
  CHECK(bytewise.consumed == whole.consumed);
  CHECK(bytewise.consumed == wire.size() - 6);
}

TEST_CASE("random messages decode the same whatever the chunking") {
  std::mt19937 random{20240601};
  const std::string alphabet = "\r\n.a";
  for (int round = 0; round < 2000; ++round) {
    std::string wire;
    for (auto length = random() % 24; wire.size() < length;)
      wire += alphabet[random() % alphabet.size()];
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < wire.size(); at += 1 + random() % 4)
      cuts.push_back(at);
    INFO("wire: ", wire);
    auto whole = decode(wire, {}, 12);
    auto chunked = decode(wire, cuts, 12);
    CHECK(chunked.verdict == whole.verdict);
    CHECK(chunked.content == whole.content);
    CHECK(chunked.consumed == whole.consumed);
    // The end is the first CRLF.CRLF, counting the start as preceded by CRLF.
    auto terminator = ("\r\n" + wire).find("\r\n.\r\n");
    CHECK(whole.finished == (terminator != std::string::npos));
    if (whole.finished)
      CHECK(whole.consumed == terminator + 3);
  }
}
