// NAME
//   address -- mail address syntax and maildir mailbox names (see
//   address.hpp).
#include "runtime/mail/address.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

namespace postconn {

namespace {

constexpr std::size_t max_domain_length = 255;
constexpr std::size_t max_label_length = 63;
constexpr std::size_t max_mailbox_length = 64;

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 5322 atext: letters, digits and !#$%&'*+-/=?^_`{|}~.
bool is_atext(char c) {
  return is_alpha(c) || is_digit(c)
         || std::string_view{"!#$%&'*+-/=?^_`{|}~"}.find(c) != std::string_view::npos;
}

// Dot-string = Atom *("." Atom)
bool is_dot_string(std::string_view text) {
  bool atom_expected = true;
  for (char c : text) {
    if (c == '.' && atom_expected)
      return false;
    if (c != '.' && !is_atext(c))
      return false;
    atom_expected = c == '.';
  }
  return !atom_expected;
}

// Quoted-string: printable ASCII between quotes; '"' only as a quoted pair.
bool is_quoted_string(std::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"')
    return false;
  auto content = text.substr(1, text.size() - 2);
  for (std::size_t i = 0; i < content.size(); ++i) {
    char c = content[i];
    if (c == '"')
      return false;
    if (c == '\\')
      c = ++i < content.size() ? content[i] : '\0';
    if (c < 32 || c > 126)
      return false;
  }
  return true;
}

bool is_label(std::string_view label) {
  return !label.empty() && label.size() <= max_label_length && label.front() != '-'
         && label.back() != '-'
         && std::all_of(label.begin(), label.end(),
                        [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; });
}

bool is_ip_address(int family, std::string_view text) {
  unsigned char binary[sizeof(in6_addr)];
  return text.find('\0') == std::string_view::npos
         && inet_pton(family, std::string{text}.c_str(), binary) == 1;
}

bool is_mailbox_char(char c) {
  return (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' || c == '+'
         || c == '-';
}

} // namespace

std::optional<mail_address> parse_address(std::string_view address) {
  auto at = address.rfind('@');
  if (address.size() > max_address_length || at == std::string_view::npos)
    return std::nullopt;
  auto local_part = address.substr(0, at);
  auto domain = address.substr(at + 1);
  if (!is_local_part(local_part) || !(is_domain(domain) || is_address_literal(domain)))
    return std::nullopt;
  return mail_address{std::string{local_part}, lower_cased(domain)};
}

bool is_local_part(std::string_view text) {
  return text.size() <= max_local_part_length
         && (is_dot_string(text) || is_quoted_string(text));
}

bool is_domain(std::string_view text) {
  if (text.empty() || text.size() > max_domain_length)
    return false;
  for (std::size_t start = 0;;) {
    auto dot = text.find('.', start);
    if (!is_label(text.substr(start, dot - start)))
      return false;
    if (dot == std::string_view::npos)
      return true;
    start = dot + 1;
  }
}

bool is_address_literal(std::string_view text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']')
    return false;
  auto inner = text.substr(1, text.size() - 2);
  constexpr std::string_view v6_tag = "ipv6:";
  if (inner.size() > v6_tag.size()
      && lower_cased(inner.substr(0, v6_tag.size())) == v6_tag)
    return is_ip_address(AF_INET6, inner.substr(v6_tag.size()));
  return is_ip_address(AF_INET, inner);
}

std::string lower_cased(std::string_view text) {
  std::string result{text};
  std::transform(result.begin(), result.end(), result.begin(), to_lower);
  return result;
}

std::optional<std::string> maildir_mailbox_name(std::string_view local_part) {
  auto name = lower_cased(local_part);
  if (name.empty() || name.size() > max_mailbox_length || name.front() == '.'
      || name.back() == '.'
      || !std::all_of(name.begin(), name.end(), is_mailbox_char))
    return std::nullopt;
  return name;
}

} // namespace postconn
