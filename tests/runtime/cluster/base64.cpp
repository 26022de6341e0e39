// Tests runtime/cluster/base64.cpp: RFC 4648's vectors both ways, every byte
// value, and text that is not padded base64 refused.
#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "runtime/cluster/base64.hpp"

using namespace postconn;

TEST_CASE("base64 encodes and decodes RFC 4648's test vectors") {
  const std::pair<const char*, const char*> vectors[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},       {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    INFO(bytes);
    CHECK(base64_encode(bytes) == text);
    CHECK(base64_decode(text) == std::optional<std::string>{bytes});
  }
}

TEST_CASE("base64 carries every byte value both ways") {
  std::string bytes;
  for (int c = 255; c >= 0; --c)
    bytes += static_cast<char>(c);
  for (std::size_t length = 0; length <= bytes.size(); length += 37) {
    auto part = bytes.substr(0, length);
    CHECK(base64_decode(base64_encode(part)) == part);
  }
  CHECK(base64_encode(std::string{"\xfb\xff", 2}) == "+/8=");
}

TEST_CASE("base64 decoding refuses what is not padded base64") {
  for (const char* bad : {"Zg", "Zg=", "Zm9vY", "Zg=a", "Z===", "=Zm9", "Zm8=Zm8=", "Zm9v!A==",
                          "Zm9v YQ==", "Zh==", "Zm9=", "Zm-_"}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad));
  }
}
