// Test helpers for the config tests: a config that must load.
#pragma once

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "runtime/config/config.hpp"

namespace postconn::test {

/// Every problem on a line of its own.
inline std::string all_of(const std::vector<std::string>& problems) {
  std::string text;
  for (const auto& p : problems)
    text += p + "\n";
  return text;
}

/// A config that must load; its problems and text are shown when it does not.
inline config loaded(const std::string& text) {
  auto result = parse_config(text, "test.toml");
  INFO(all_of(result.problems));
  INFO(text);
  REQUIRE(result.value);
  return *result.value;
}

} // namespace postconn::test
