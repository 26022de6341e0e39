// NAME
//   smtp_data -- the DATA decoder (see smtp_data.hpp).
//
// DESCRIPTION
//   A byte-at-a-time state machine over the line structure, with a fast path
//   that copies runs of ordinary text inside a line in one go. The states:
//     line_start    the previous bytes were CRLF (or nothing yet)
//     after_dot     a line started with '.', held back
//     after_dot_cr  ".\r" at a line start: LF next ends DATA
//     in_line       inside a line
//     after_cr      a CR inside a line, stored: LF next ends the line
#include "runtime/mail/smtp_data.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace postconn {

smtp_data_decoder::smtp_data_decoder(std::uint64_t max_message_size)
  : max_message_size_{max_message_size} {
}

std::size_t smtp_data_decoder::feed(std::string_view bytes) {
  std::size_t consumed = 0;
  while (consumed < bytes.size() && position_ != position::done) {
    if (position_ == position::in_line)
      consumed += consume_text(bytes.substr(consumed));
    else
      step(bytes[consumed++]);
  }
  return consumed;
}

bool smtp_data_decoder::finished() const {
  return position_ == position::done;
}

std::uint64_t smtp_data_decoder::size() const {
  return size_;
}

const std::optional<smtp_reply>& smtp_data_decoder::rejection() const {
  return rejection_;
}

std::string smtp_data_decoder::take_content() {
  return std::move(content_);
}

namespace {

/// Where the first CR or LF is in `bytes` (its size when there is none).
/// Two memchr scans instead of find_first_of, which tests every byte
/// against each character of the set: half the decoder's instructions.
std::size_t line_break(std::string_view bytes) {
  const auto* begin = bytes.data();
  const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', bytes.size()));
  auto before_cr = cr ? static_cast<std::size_t>(cr - begin) : bytes.size();
  const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', before_cr));
  return lf ? static_cast<std::size_t>(lf - begin) : before_cr;
}

} // namespace

// Inside a line: keeps the text up to the next CR or LF in one go.
std::size_t smtp_data_decoder::consume_text(std::string_view bytes) {
  auto text = bytes.substr(0, line_break(bytes));
  if (text.empty()) {
    step(bytes.front());
    return 1;
  }
  keep(text);
  return text.size();
}

void smtp_data_decoder::step(char c) {
  switch (position_) {
    case position::line_start:
      if (c == '.')
        position_ = position::after_dot;
      else
        step_in_line(c);
      break;
    case position::after_dot: // the dot is dropped either way
      if (c == '\r')
        position_ = position::after_dot_cr;
      else
        step_in_line(c);
      break;
    case position::after_dot_cr:
      if (c == '\n') {
        position_ = position::done;
        break;
      }
      keep("\r");
      position_ = position::after_cr;
      step(c);
      break;
    case position::after_cr:
      if (c == '\n') {
        keep("\n");
        line_length_ = 0;
        position_ = position::line_start;
        break;
      }
      reject(550, "5.6.0", "Bare CR in message; lines must end with CRLF");
      step_in_line(c);
      break;
    case position::in_line:
      step_in_line(c);
      break;
    case position::done:
      break;
  }
}

void smtp_data_decoder::step_in_line(char c) {
  if (c == '\n')
    reject(550, "5.6.0", "Bare LF in message; lines must end with CRLF");
  keep(std::string_view{&c, 1});
  position_ = c == '\r' ? position::after_cr : position::in_line;
}

void smtp_data_decoder::keep(std::string_view bytes) {
  // When one run of bytes passes both limits, the one its earlier byte
  // passes is the first problem, as if the bytes had come one by one.
  auto line_room = max_text_line_length - std::min(line_length_, max_text_line_length);
  auto size_room = max_message_size_ - std::min(size_, max_message_size_);
  size_ += bytes.size();
  line_length_ += bytes.size();
  bool line_passed = line_length_ > max_text_line_length;
  bool size_passed = size_ > max_message_size_;
  if (line_passed && (!size_passed || line_room <= size_room))
    reject(500, "5.5.2", "Line too long; text lines are limited to 1000 octets");
  if (size_passed)
    reject(552, "5.3.4", "Message too big; the limit is "
                           + std::to_string(max_message_size_) + " octets");
  if (!rejection_)
    content_.append(bytes);
}

void smtp_data_decoder::reject(int code, const char* status, std::string text) {
  if (rejection_)
    return;
  rejection_ = smtp_reply{code, status, std::move(text)};
  std::string{}.swap(content_);
}

} // namespace postconn
