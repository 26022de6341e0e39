// NAME
//   smtp_data -- the DATA decoder: network bytes after the 354 reply in, the
//   message content (or the reply refusing it) out. No I/O.
//
// DESCRIPTION
//   feed() takes bytes in chunks split anywhere and consumes them up to and
//   including the terminating <CRLF>.<CRLF>, never further: bytes after it
//   are the next pipelined command. The first line counts as preceded by
//   CRLF, so ".\r\n" right away is an empty message. Only that exact
//   sequence ends DATA; "\n.\n", "\r.\r", "\n.\r\n" and the like are data
//   (no SMTP smuggling).
//
//   A line starting with '.' loses that dot (RFC 5321 4.5.2: "..x" -> ".x",
//   ".x" -> "x"). The content keeps CRLF line endings as received; the
//   terminator's ".\r\n" is not part of it, the CRLF before it is.
//
//   Problems are collected while reading and reported once the terminator
//   has arrived; the first one found wins:
//     550 5.6.0  a bare CR or bare LF (not part of a CRLF) anywhere
//     500 5.5.2  a text line over 1000 octets, CRLF included, the removed
//                dot not counted (RFC 5321 4.5.3.1.6; 500 as in 4.5.3.1.10)
//     552 5.3.4  content over max_message_size octets (RFC 1870 counting:
//                CRLFs in, stuffing dots and terminator out)
//   From the first problem on nothing more is stored, so memory stays below
//   max_message_size whatever the client sends; scanning for the terminator
//   goes on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/mail/smtp_command.hpp"

namespace postconn {

/// Longest text line in DATA, CRLF included (RFC 5321 4.5.3.1.6).
constexpr std::size_t max_text_line_length = 1000;

class smtp_data_decoder {
public:
  /// `max_message_size` as in smtp.max_message_size (bytes).
  explicit smtp_data_decoder(std::uint64_t max_message_size);

  /// Consumes bytes up to the end of the terminator; returns how many.
  /// Less than bytes.size() only when the terminator came before the end;
  /// 0 once finished().
  std::size_t feed(std::string_view bytes);

  /// True once the terminating <CRLF>.<CRLF> has been consumed.
  bool finished() const;

  /// Content octets seen so far, stored or not.
  std::uint64_t size() const;

  /// Once finished(): the reply refusing the message, empty when accepted.
  const std::optional<smtp_reply>& rejection() const;

  /// Once finished() and not rejected: the content, moved out.
  std::string take_content();

private:
  enum class position { line_start, after_dot, after_dot_cr, in_line, after_cr, done };

  std::size_t consume_text(std::string_view bytes);
  void step(char c);
  void step_in_line(char c);
  void keep(std::string_view bytes);
  void reject(int code, const char* status, std::string text);

  /// Content over this many octets is refused.
  std::uint64_t max_message_size_;
  /// Where the next byte falls.
  position position_ = position::line_start;
  /// Content octets so far, counted even when no longer stored.
  std::uint64_t size_ = 0;
  /// Octets of the current line so far.
  std::size_t line_length_ = 0;
  /// The first problem found, if any.
  std::optional<smtp_reply> rejection_;
  /// The decoded content, while no problem has been found.
  std::string content_;
};

} // namespace postconn
