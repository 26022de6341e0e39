// NAME
//   smtp_command -- the SMTP command parser and reply formatter: one command
//   line in, one command or one error reply out. No I/O.
//
// DESCRIPTION
//   parse_smtp_command() takes one line without its CRLF. Verbs are matched
//   case-insensitively. MAIL FROM:<path> and RCPT TO:<path> are parsed into
//   the path and its ESMTP parameters; spaces after the colon are tolerated,
//   a source route (<@a,@b:user@c>) is dropped (RFC 5321 C), the null sender
//   <> is allowed for MAIL only and <postmaster> (no domain) for RCPT only.
//   Addresses follow address.hpp: printable ASCII, local part <= 64 octets,
//   address <= 254 octets.
//
//   Anything else gives the reply to send instead of a command:
//     500 5.5.2  empty line, or longer than 510 octets (512 with CRLF)
//     502 5.5.1  unknown or unimplemented verb
//     501 5.5.4  syntax error in the arguments (bad parameter value included)
//     501 5.1.7  bad sender address
//     501 5.1.3  bad recipient address
//     555 5.5.4  unknown MAIL parameter, or any RCPT parameter
//   Limits that need the config (SIZE= above max_message_size -> 552 5.3.4)
//   are the session's to check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postconn {

/// Longest command line, CRLF not included (RFC 5321 4.5.3.1.4: 512 with).
constexpr std::size_t max_command_line_length = 510;

/// One reply: code, enhanced status code ("5.5.4", empty for none), text.
struct smtp_reply {
  int code = 0;
  std::string status;
  std::string text;
};

enum class smtp_verb { ehlo, helo, mail, rcpt, data, rset, noop, quit, vrfy, starttls };

/// The verb as written on the wire, upper-cased ("EHLO", ...).
std::string_view to_string(smtp_verb verb);

/// The verb a command line's first word names, in any case; nullopt for
/// none.
std::optional<smtp_verb> smtp_verb_named(std::string_view word);

/// MAIL's BODY= parameter (RFC 6152).
enum class body_type { unspecified, seven_bit, eight_bit_mime };

struct smtp_command {
  smtp_verb verb = smtp_verb::noop;
  /// Everything after the verb, surrounding spaces removed (EHLO's domain,
  /// VRFY's string).
  std::string argument;
  /// MAIL / RCPT: the address between < and >, source route removed; empty
  /// for the null sender.
  std::string path;
  /// MAIL SIZE=: the size the client declares.
  std::optional<std::uint64_t> size;
  /// MAIL BODY=.
  body_type body = body_type::unspecified;
};

/// A parsed command, or the reply to send when the line is not one.
struct smtp_command_result {
  std::optional<smtp_command> command;
  /// Set when `command` is empty.
  smtp_reply error;
};

/// Parses one command line given without its CRLF.
smtp_command_result parse_smtp_command(std::string_view line);

/// "250 2.1.0 Ok\r\n" (no status when it is empty).
std::string format_reply(const smtp_reply& reply);

/// A multi-line reply: "250-first\r\n250-...\r\n250 last\r\n", every line
/// with the status when it is not empty. No lines formats one empty line.
/// Control characters in the text become '?', so a reply stays one reply.
std::string format_reply(int code, std::string_view status,
                         const std::vector<std::string>& lines);

} // namespace postconn
