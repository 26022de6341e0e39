// NAME
//   base64 -- bytes as RFC 4648 base64 text and back.
//
// DESCRIPTION
//   etcd's JSON gateway carries keys and values as base64 (the standard
//   alphabet, '=' padding). Decoding is strict: a length that is not a
//   multiple of four, a character outside the alphabet, padding anywhere
//   but at the end, or bits left over in the last character are refused,
//   so a reply that is not base64 is noticed rather than half read.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postconn {

/// `bytes` in base64 with padding.
std::string base64_encode(std::string_view bytes);

/// The bytes of padded base64 `text`; nullopt when it is not that.
std::optional<std::string> base64_decode(std::string_view text);

} // namespace postconn
