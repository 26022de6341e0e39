// NAME
//   check -- the fuzz targets' invariant check: a broken invariant prints
//   the condition and aborts, so libFuzzer keeps the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(...)                                                        \
  ((__VA_ARGS__) ? void()                                                      \
                 : (std::fprintf(stderr, "%s:%d: invariant broken: %s\n",     \
                                 __FILE__, __LINE__, #__VA_ARGS__),            \
                    std::abort()))
