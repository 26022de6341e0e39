// Fuzzes runtime/config/config.cpp (and the TOML reader under it): any text gives
// a config or at least one problem, never both.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/check.hpp"
#include "runtime/config/config.hpp"

using namespace postconn;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto result = parse_config(text, "fuzz.toml");
  FUZZ_CHECK(result.value.has_value() == result.problems.empty());
  for (const auto& problem : result.problems)
    FUZZ_CHECK(!problem.empty());
  return 0;
}
