// NAME
//   message_id -- queue ids for accepted messages (see message_id.hpp).
#include "runtime/store/message_id.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace postconn {

namespace {

constexpr std::size_t id_length = 16;

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

} // namespace

message_id_generator::message_id_generator(std::string_view last_issued) {
  last_ = parse_message_id(last_issued).value_or(0);
}

std::string message_id_generator::next(std::uint64_t now_micros) {
  last_ = std::max(now_micros, last_ + 1);
  return format_message_id(last_);
}

std::string message_id_generator::next() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return next(static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(now).count()));
}

bool is_message_id(std::string_view text) {
  return text.size() == id_length
         && std::all_of(text.begin(), text.end(), is_lower_hex);
}

std::optional<std::uint64_t> parse_message_id(std::string_view text) {
  if (!is_message_id(text))
    return std::nullopt;
  return std::stoull(std::string{text}, nullptr, 16);
}

std::string format_message_id(std::uint64_t number) {
  char text[id_length + 1];
  std::snprintf(text, sizeof text, "%016llx",
                static_cast<unsigned long long>(number));
  return text;
}

} // namespace postconn
