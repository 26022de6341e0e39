// NAME
//   address -- mail addresses: RFC 5321 syntax, local part and domain, and
//   the maildir mailbox a local part names.
//
// DESCRIPTION
//   parse_address() checks a path as it appears between SMTP's angle
//   brackets (source route already removed): a Dot-string or Quoted-string
//   local part of at most 64 octets, '@', a domain or an address literal,
//   254 octets in all, printable ASCII only (so never CR, LF or NUL). The
//   domain comes back lower-cased; the local part as written.
//
//   maildir_mailbox_name() is the only way a local part becomes a folder
//   name: lower-cased, [a-z0-9._+-] only, no leading or trailing dot, 1 to
//   64 characters. Everything else ("../x", "a/b", "%2e%2e", ".", non-ASCII)
//   is refused, so a recipient can never name a path outside the postoffice,
//   nor another mailbox on an SMB share, which drops trailing dots ("bob."
//   would be "bob").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace postconn {

/// RFC 5321 4.5.3.1: longest local part, longest address (a path less <>).
constexpr std::size_t max_local_part_length = 64;
constexpr std::size_t max_address_length = 254;

struct mail_address {
  /// As written, quotes included ("John.Doe", "\"john doe\"").
  std::string local_part;
  /// Lower-cased domain name, or an address literal such as "[192.0.2.1]".
  std::string domain;
};

/// Splits "local@domain" at the last '@' and checks both parts. Empty
/// optional when the syntax or a length limit is violated.
std::optional<mail_address> parse_address(std::string_view address);

/// True for a local part of RFC 5321 syntax within the length limit.
bool is_local_part(std::string_view text);

/// True for a domain name: dot-separated labels of letters, digits and
/// hyphens, no label empty, longer than 63 or starting or ending with '-'.
bool is_domain(std::string_view text);

/// True for "[a.b.c.d]" or "[IPv6:...]" holding a valid address.
bool is_address_literal(std::string_view text);

/// ASCII letters lower-cased, every other byte kept (domains compare so).
std::string lower_cased(std::string_view text);

/// The maildir mailbox folder a local part names, or empty when the local
/// part may not name one (see DESCRIPTION).
std::optional<std::string> maildir_mailbox_name(std::string_view local_part);

} // namespace postconn
