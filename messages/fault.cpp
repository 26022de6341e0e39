// NAME
//   fault -- the names of the fault modes (see fault.hpp).
#include "messages/fault.hpp"

namespace postconn {

namespace {

constexpr fault_mode all_modes[] = {
  fault_mode::none,     fault_mode::unreachable, fault_mode::hang, fault_mode::tempfail,
  fault_mode::permfail, fault_mode::slow,        fault_mode::flap, fault_mode::drop,
};

} // namespace

std::string_view to_string(fault_mode mode) {
  switch (mode) {
    case fault_mode::none:
      return "none";
    case fault_mode::unreachable:
      return "unreachable";
    case fault_mode::hang:
      return "hang";
    case fault_mode::tempfail:
      return "tempfail";
    case fault_mode::permfail:
      return "permfail";
    case fault_mode::slow:
      return "slow";
    case fault_mode::flap:
      return "flap";
    case fault_mode::drop:
      return "drop";
  }
  return "none";
}

std::optional<fault_mode> parse_fault_mode(std::string_view name) {
  for (auto mode : all_modes)
    if (to_string(mode) == name)
      return mode;
  return std::nullopt;
}

std::string fault_mode_names() {
  std::string names;
  for (auto mode : all_modes) {
    if (mode == fault_mode::none)
      continue;
    if (!names.empty())
      names += ", ";
    names += to_string(mode);
  }
  return names;
}

} // namespace postconn
