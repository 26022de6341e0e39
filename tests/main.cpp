// The doctest runner shared by every unit and actor test.
//
// CTest runs each test case in a process of its own, selected by name. A
// name that selects nothing (a name CTest split at a ';', say) would pass
// without running anything, so a run that selected no test case fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

int test_cases_started = 0;

/// Counts the test cases that start; reports nothing else.
struct test_case_counter : doctest::IReporter {
  explicit test_case_counter(const doctest::ContextOptions&) {
  }
  void report_query(const doctest::QueryData&) override {
  }
  void test_run_start() override {
  }
  void test_run_end(const doctest::TestRunStats&) override {
  }
  void test_case_start(const doctest::TestCaseData&) override {
    ++test_cases_started;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {
  }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
  }
  void test_case_exception(const doctest::TestCaseException&) override {
  }
  void subcase_start(const doctest::SubcaseSignature&) override {
  }
  void subcase_end() override {
  }
  void log_assert(const doctest::AssertData&) override {
  }
  void log_message(const doctest::MessageData&) override {
  }
  void test_case_skipped(const doctest::TestCaseData&) override {
  }
};

} // namespace

REGISTER_LISTENER("test_case_counter", 1, test_case_counter);

int main(int argc, char** argv) {
  doctest::Context context{argc, argv};
  auto result = context.run();
  if (context.shouldExit())
    return result;
  if (result == 0 && test_cases_started == 0) {
    std::fprintf(stderr, "no test case matched the selection\n");
    return 1;
  }
  return result;
}
