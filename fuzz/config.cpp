// NAME
//   config -- fuzzes the config loader (runtime/config/config.cpp, the TOML
//   reader under it) and the config writer.
//
// DESCRIPTION
//   Any text gives a config or at least one problem, never both. A config
//   written back out (config_to_toml) reads back without problems to a
//   config equal to the first. On a broken round trip the written text and
//   the problems are printed before the abort.
//
//   Few mutations of a whole config file leave it valid, and fewer hold odd
//   strings, so the input is also read as the inside of a multi-line
//   string: the path of the one postoffice of an otherwise valid config.
//   Any UTF-8 without a bad escape then makes a valid config, with quotes,
//   backslashes, escaped control characters and line breaks in its path
//   for the writer to escape; an input that closes the string can add keys
//   and tables after it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz/check.hpp"
#include "runtime/config/config.hpp"
#include "runtime/config/config_writer.hpp"

using namespace postconn;

namespace {

constexpr std::string_view path_opened = "[[postoffice]]\n"
                                         "name = \"p\"\n"
                                         "domains = [\"p.example.test\"]\n"
                                         "transport = \"maildir\"\n"
                                         "path = \"\"\"";
constexpr std::string_view path_closed = "\"\"\"\n";

void check_config(std::string_view text) {
  auto result = parse_config(text, "fuzz.toml");
  FUZZ_CHECK(result.value.has_value() == result.problems.empty());
  for (const auto& problem : result.problems)
    FUZZ_CHECK(!problem.empty());
  if (!result.value)
    return;
  auto written = config_to_toml(*result.value);
  auto again = parse_config(written, "written.toml");
  if (!again.value || !(*again.value == *result.value)) {
    std::fprintf(stderr, "read:\n%.*s\nwritten:\n%s\n", static_cast<int>(text.size()),
                 text.data(), written.c_str());
    for (const auto& problem : again.problems)
      std::fprintf(stderr, "problem: %s\n", problem.c_str());
  }
  FUZZ_CHECK(again.value && *again.value == *result.value);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check_config(text);
  check_config(std::string{path_opened}.append(text).append(path_closed));
  return 0;
}
