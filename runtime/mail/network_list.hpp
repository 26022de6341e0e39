// NAME
//   network_list -- relay control: the networks of smtp.relay_networks, and
//   whether a client address falls in one of them.
//
// DESCRIPTION
//   Entries are IPv4 or IPv6 CIDR networks ("127.0.0.0/8", "::1/128") or
//   bare addresses (a /32 or /128). Host bits beyond the prefix are ignored
//   ("10.1.2.3/8" is 10.0.0.0/8). Every address is kept as IPv6, IPv4 ones
//   mapped to ::ffff:a.b.c.d, so a client seen as ::ffff:127.0.0.1 (an
//   IPv4 peer on a dual-stack socket) matches 127.0.0.0/8. A client address
//   that does not parse (a zone id such as "fe80::1%eth0", a host name) is
//   in no network.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postconn {

/// One network, IPv4 kept as IPv4-mapped IPv6.
struct ip_network {
  /// IPv6 address, host bits cleared.
  std::array<std::uint8_t, 16> address;
  /// Prefix length over the 128-bit form (IPv4 /8 is /104).
  int prefix_length;
};

struct network_list_result;

class network_list {
public:
  /// Parses smtp.relay_networks; problems name the entry
  /// ("smtp.relay_networks[1]: ...").
  static network_list_result parse(const std::vector<std::string>& cidrs);

  /// True when `ip` (dotted IPv4 or textual IPv6) is in one of the networks.
  bool contains(std::string_view ip) const;

private:
  std::vector<ip_network> networks_;
};

/// A parsed list, or the problems that kept it from being one.
struct network_list_result {
  std::optional<network_list> value;
  std::vector<std::string> problems;
};

} // namespace postconn
