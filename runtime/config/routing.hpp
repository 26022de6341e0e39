// NAME
//   routing -- which postoffice takes a recipient.
//
// DESCRIPTION
//   A routing_table is built once from the config. route() looks up the
//   recipient's domain (case-insensitive): the postoffice that lists it,
//   else the postoffice with `default = true` (by_default set in the
//   result, so the session can keep that relaying for relay clients), else
//   none. A bare <postmaster> is routed as postmaster@server.hostname. An
//   address literal ("user@[192.0.2.1]") names no postoffice, not even the
//   default one.
//   For a maildir postoffice the local part must be a valid mailbox name
//   (address.hpp). Replies for RCPT when there is no route:
//     501 5.1.3  not an address at all
//     550 5.1.2  no postoffice takes the domain
//     553 5.1.3  maildir postoffice, local part not a mailbox name
//   If two postoffices list one domain (the config check should refuse
//   that), the first one in the config takes it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/config/config.hpp"
#include "runtime/mail/smtp_command.hpp"

namespace postconn {

/// The postoffice a recipient goes to, or the reply refusing it.
struct route_result {
  /// Index into config::postoffices; empty when refused.
  std::optional<std::size_t> postoffice;
  /// That postoffice's name.
  std::string postoffice_name;
  /// Routed by the default postoffice, not by a domain it names: only
  /// relay clients may send there.
  bool by_default = false;
  /// Set when `postoffice` is empty.
  smtp_reply error;
};

class routing_table {
public:
  explicit routing_table(const config& cfg);

  /// Routes a RCPT path (as parse_smtp_command() gives it).
  route_result route(std::string_view recipient) const;

private:
  struct postoffice_entry {
    std::string name;
    bool is_maildir;
  };

  route_result route_to(std::size_t index, bool by_default,
                        std::string_view local_part) const;

  /// Every postoffice, in config order.
  std::vector<postoffice_entry> postoffices_;
  /// Lower-cased domain -> index into postoffices_.
  std::unordered_map<std::string, std::size_t> by_domain_;
  /// The `default = true` postoffice, if any.
  std::optional<std::size_t> default_postoffice_;
  /// Lower-cased server.hostname, the domain of a bare <postmaster>.
  std::string hostname_;
};

} // namespace postconn
