// Fuzzes runtime/mail/address.cpp: a parsed address is printable ASCII within
// the length limits, and a mailbox name is one plain folder name
// ([a-z0-9._+-], no leading dot, 1 to 64 octets) whatever the local part.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include "runtime/mail/address.hpp"

using namespace postconn;

namespace {

bool is_printable_ascii(char c) {
  return c >= 32 && c < 127;
}

void check_mailbox_name(std::string_view local_part) {
  auto name = maildir_mailbox_name(local_part);
  if (!name)
    return;
  FUZZ_CHECK(!name->empty() && name->size() <= 64 && name->front() != '.');
  FUZZ_CHECK(std::all_of(name->begin(), name->end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'
           || c == '+' || c == '-';
  }));
  FUZZ_CHECK(*name == lower_cased(local_part));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check_mailbox_name(text);
  FUZZ_CHECK(lower_cased(text).size() == text.size());
  if (auto address = parse_address(text)) {
    FUZZ_CHECK(text.size() <= max_address_length);
    FUZZ_CHECK(std::all_of(text.begin(), text.end(), is_printable_ascii));
    FUZZ_CHECK(address->local_part.size() <= max_local_part_length);
    FUZZ_CHECK(is_local_part(address->local_part));
    FUZZ_CHECK(address->domain == lower_cased(address->domain));
    FUZZ_CHECK(is_domain(address->domain) || is_address_literal(address->domain));
    auto joined = address->local_part + "@" + address->domain;
    FUZZ_CHECK(lower_cased(joined) == lower_cased(text));
    check_mailbox_name(address->local_part);
  }
  if (is_domain(text))
    FUZZ_CHECK(std::all_of(text.begin(), text.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
             || c == '-' || c == '.';
    }));
  return 0;
}
