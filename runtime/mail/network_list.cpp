// NAME
//   network_list -- relay control by client address (see network_list.hpp).
#include "runtime/mail/network_list.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>

namespace postconn {

namespace {

using ip_bytes = std::array<std::uint8_t, 16>;

/// Bits an IPv4 address is shifted by in its IPv4-mapped IPv6 form.
constexpr int ipv4_mapped_offset = 96;

struct parsed_ip {
  ip_bytes bytes;
  bool is_ipv4;
};

std::optional<parsed_ip> parse_ip(std::string_view text) {
  if (text.find('\0') != std::string_view::npos)
    return std::nullopt;
  std::string terminated{text};
  parsed_ip ip{{}, true};
  in_addr v4;
  if (inet_pton(AF_INET, terminated.c_str(), &v4) == 1) {
    ip.bytes[10] = ip.bytes[11] = 0xff;
    std::memcpy(&ip.bytes[12], &v4, sizeof v4);
    return ip;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, terminated.c_str(), &v6) != 1)
    return std::nullopt;
  std::memcpy(ip.bytes.data(), &v6, sizeof v6);
  ip.is_ipv4 = false;
  return ip;
}

std::optional<int> parse_prefix_length(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3
      || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  int length = std::stoi(std::string{digits});
  return length <= max ? std::optional<int>{length} : std::nullopt;
}

// The mask of byte `index` for a prefix of `prefix_length` bits.
std::uint8_t prefix_mask(std::size_t index, int prefix_length) {
  int bits = prefix_length - static_cast<int>(index) * 8;
  if (bits >= 8)
    return 0xff;
  return bits <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - bits));
}

std::optional<ip_network> parse_network(std::string_view cidr) {
  auto slash = cidr.find('/');
  auto ip = parse_ip(cidr.substr(0, slash));
  if (!ip)
    return std::nullopt;
  int max = ip->is_ipv4 ? 32 : 128;
  auto length = slash == std::string_view::npos
                  ? std::optional<int>{max}
                  : parse_prefix_length(cidr.substr(slash + 1), max);
  if (!length)
    return std::nullopt;
  ip_network network{ip->bytes, *length + (ip->is_ipv4 ? ipv4_mapped_offset : 0)};
  for (std::size_t i = 0; i < network.address.size(); ++i)
    network.address[i] &= prefix_mask(i, network.prefix_length);
  return network;
}

bool is_in(const ip_bytes& address, const ip_network& network) {
  for (std::size_t i = 0; i < address.size(); ++i)
    if ((address[i] & prefix_mask(i, network.prefix_length)) != network.address[i])
      return false;
  return true;
}

} // namespace

network_list_result network_list::parse(const std::vector<std::string>& cidrs) {
  network_list_result result;
  network_list list;
  for (std::size_t i = 0; i < cidrs.size(); ++i) {
    if (auto network = parse_network(cidrs[i]))
      list.networks_.push_back(*network);
    else
      result.problems.push_back("smtp.relay_networks[" + std::to_string(i)
                                + "]: not an IP network: \"" + cidrs[i] + "\"");
  }
  if (result.problems.empty())
    result.value = std::move(list);
  return result;
}

bool network_list::contains(std::string_view ip) const {
  auto parsed = parse_ip(ip);
  if (!parsed)
    return false;
  for (const auto& network : networks_)
    if (is_in(parsed->bytes, network))
      return true;
  return false;
}

} // namespace postconn
