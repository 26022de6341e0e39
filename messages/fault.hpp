// NAME
//   fault -- the faults a postoffice can be made to suffer, as words:
//   the mode, its settings, and what a share call is told to do.
//
// DESCRIPTION
//   The modes and their meaning are in runtime/delivery/fault_injector.hpp,
//   which decides operation by operation which fault hits.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace postconn {

enum class fault_mode : std::uint8_t {
  none,
  unreachable,
  hang,
  tempfail,
  permfail,
  slow,
  flap,
  drop,
};

/// The mode's name as written in the config ("unreachable", ...).
std::string_view to_string(fault_mode mode);

/// The mode named `name`, if there is one.
std::optional<fault_mode> parse_fault_mode(std::string_view name);

/// Every mode name but "none", for error messages: "unreachable, hang, ...".
std::string fault_mode_names();

struct fault_config {
  fault_mode mode = fault_mode::none;
  /// Each operation the mode applies to is hit with this probability.
  double probability = 1.0;
  /// Seeds the generator drawn against `probability`.
  std::uint64_t seed = 1;
  /// permfail: the recipients refused (lower-cased); empty: every one.
  std::vector<std::string> recipients;
  /// slow: added to each share call. hang: how long a hung call takes to fail.
  std::chrono::seconds latency{0};
  /// flap: the length of the up and of the down windows.
  std::chrono::seconds up{0};
  std::chrono::seconds down{0};
};

/// A hung call fails after this long unless `latency` says otherwise.
constexpr std::chrono::seconds default_hang_latency{3600};

/// What the share worker does to one call.
struct io_fault {
  /// Start the call this much later (slow), or with `hang` fail after it.
  std::int64_t delay_ms = 0;
  /// Do not make the call: fail it once `delay_ms` has passed.
  bool hang = false;
  /// Cut the transfer off in the middle of the data.
  bool drop = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fault_config& x) {
  return f(caf::meta::type_name("fault_config"), x.mode, x.probability, x.seed,
           x.recipients, x.latency, x.up, x.down);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, io_fault& x) {
  return f(caf::meta::type_name("io_fault"), x.delay_ms, x.hang, x.drop);
}

/// The texts of injected failures, so logs and NDRs say what they were.
constexpr const char* injected_tempfail_reply = "451 4.3.0 transfer failed (fault injection: tempfail)";
constexpr const char* injected_permfail_reply = "550 5.1.1 recipient refused (fault injection: permfail)";

} // namespace postconn
