// NAME
//   base64 -- bytes as RFC 4648 base64 text and back (see base64.hpp).
#include "runtime/cluster/base64.hpp"

#include <cstdint>

namespace postconn {

namespace {

constexpr std::string_view alphabet =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The six bits `c` stands for; -1 for a character outside the alphabet.
int sextet_of(char c) {
  auto at = alphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    auto remaining = bytes.size() - i;
    std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
    if (remaining > 1)
      group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (remaining > 2)
      group |= static_cast<unsigned char>(bytes[i + 2]);
    text += alphabet[group >> 18 & 0x3f];
    text += alphabet[group >> 12 & 0x3f];
    text += remaining > 1 ? alphabet[group >> 6 & 0x3f] : '=';
    text += remaining > 2 ? alphabet[group & 0x3f] : '=';
  }
  return text;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    auto last_group = i + 4 == text.size();
    auto padding = last_group ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (padding == 1 && text[i + 2] == '=')
      return std::nullopt; // "x=y=": padding in the middle
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4 - static_cast<std::size_t>(padding); ++j) {
      auto sextet = sextet_of(text[i + j]);
      if (sextet < 0)
        return std::nullopt;
      group |= static_cast<std::uint32_t>(sextet) << (18 - 6 * j);
    }
    // The bits the padding stands for must be zero: one encoding per input.
    if ((padding == 1 && (group & 0xff) != 0) || (padding == 2 && (group & 0xffff) != 0))
      return std::nullopt;
    bytes += static_cast<char>(group >> 16 & 0xff);
    if (padding < 2)
      bytes += static_cast<char>(group >> 8 & 0xff);
    if (padding < 1)
      bytes += static_cast<char>(group & 0xff);
  }
  return bytes;
}

} // namespace postconn
