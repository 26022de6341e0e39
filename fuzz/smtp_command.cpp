// Fuzzes runtime/mail/smtp_command.cpp: any line gives a command or a refusal,
// a parsed path is a valid address and parses again the same, and a reply
// stays one reply whatever its text holds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include "runtime/mail/address.hpp"
#include "runtime/mail/smtp_command.hpp"

using namespace postconn;

namespace {

bool is_valid_path(const smtp_command& command) {
  if (command.verb == smtp_verb::mail)
    return command.path.empty() || parse_address(command.path).has_value();
  return lower_cased(command.path) == "postmaster"
         || parse_address(command.path).has_value();
}

/// Every CR is part of a CRLF that ends one of `lines` reply lines.
void check_reply_lines(const std::string& reply, std::size_t lines) {
  std::size_t crlfs = 0;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    if (reply[i] == '\r') {
      FUZZ_CHECK(i + 1 < reply.size() && reply[i + 1] == '\n');
      ++crlfs;
      ++i;
    } else {
      FUZZ_CHECK(reply[i] != '\n' && reply[i] != '\0');
    }
  }
  FUZZ_CHECK(crlfs == lines);
  FUZZ_CHECK(reply.size() >= 2 && reply.compare(reply.size() - 2, 2, "\r\n") == 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line{reinterpret_cast<const char*>(data), size};
  auto result = parse_smtp_command(line);
  if (result.command) {
    const auto& command = *result.command;
    if (command.verb == smtp_verb::mail || command.verb == smtp_verb::rcpt) {
      FUZZ_CHECK(is_valid_path(command));
      auto again = std::string{to_string(command.verb)}
                   + (command.verb == smtp_verb::mail ? " FROM:<" : " TO:<")
                   + command.path + ">";
      auto reparsed = parse_smtp_command(again);
      FUZZ_CHECK(reparsed.command && reparsed.command->path == command.path);
    }
  } else {
    auto code = result.error.code;
    FUZZ_CHECK(code == 500 || code == 501 || code == 502 || code == 555);
    check_reply_lines(format_reply(result.error), 1);
  }
  std::vector<std::string> lines;
  for (std::size_t start = 0; start <= line.size();) {
    auto end = std::min(line.find('\n', start), line.size());
    lines.emplace_back(line.substr(start, end - start));
    start = end + 1;
  }
  check_reply_lines(format_reply(250, "2.0.0", lines), lines.size());
  return 0;
}
