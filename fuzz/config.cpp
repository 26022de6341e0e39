// NAME
//   config -- fuzzes the config loader (runtime/config/config.cpp, the TOML
//   reader under it) and the config writer.
//
// DESCRIPTION
//   Any text gives a config or at least one problem, never both. A config
//   written back out (config_to_toml) reads back without problems to a
//   config equal to the first. On a broken round trip the written text and
//   the problems are printed before the abort.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "fuzz/check.hpp"
#include "runtime/config/config.hpp"
#include "runtime/config/config_writer.hpp"

using namespace postconn;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto result = parse_config(text, "fuzz.toml");
  FUZZ_CHECK(result.value.has_value() == result.problems.empty());
  for (const auto& problem : result.problems)
    FUZZ_CHECK(!problem.empty());
  if (!result.value)
    return 0;
  auto written = config_to_toml(*result.value);
  auto again = parse_config(written, "written.toml");
  if (!again.value || !(*again.value == *result.value)) {
    std::fprintf(stderr, "written:\n%s\n", written.c_str());
    for (const auto& problem : again.problems)
      std::fprintf(stderr, "problem: %s\n", problem.c_str());
  }
  FUZZ_CHECK(again.value && *again.value == *result.value);
  return 0;
}
