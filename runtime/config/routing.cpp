// NAME
//   routing -- which postoffice takes a recipient (see routing.hpp).
#include "runtime/config/routing.hpp"

#include "runtime/mail/address.hpp"

namespace postconn {

namespace {

route_result refusal(int code, const char* status, std::string text) {
  route_result result;
  result.error = smtp_reply{code, status, std::move(text)};
  return result;
}

std::optional<mail_address> recipient_address(std::string_view recipient,
                                              const std::string& hostname) {
  if (lower_cased(recipient) == "postmaster")
    return mail_address{std::string{recipient}, hostname};
  return parse_address(recipient);
}

} // namespace

routing_table::routing_table(const config& cfg)
  : hostname_{lower_cased(cfg.server.hostname)} {
  for (const auto& postoffice : cfg.postoffices) {
    auto index = postoffices_.size();
    postoffices_.push_back(
      {postoffice.name, postoffice.transport == transport_kind::maildir});
    for (const auto& domain : postoffice.domains)
      by_domain_.emplace(lower_cased(domain), index);
    if (postoffice.is_default && !default_postoffice_)
      default_postoffice_ = index;
  }
}

route_result routing_table::route(std::string_view recipient) const {
  auto address = recipient_address(recipient, hostname_);
  if (!address)
    return refusal(501, "5.1.3", "Bad recipient address syntax");
  if (is_address_literal(address->domain))
    return refusal(550, "5.1.2", "No postoffice takes address literals");
  if (auto found = by_domain_.find(address->domain); found != by_domain_.end())
    return route_to(found->second, false, address->local_part);
  if (default_postoffice_)
    return route_to(*default_postoffice_, true, address->local_part);
  return refusal(550, "5.1.2", "No postoffice takes domain " + address->domain);
}

route_result routing_table::route_to(std::size_t index, bool by_default,
                                     std::string_view local_part) const {
  const auto& postoffice = postoffices_[index];
  if (postoffice.is_maildir && !maildir_mailbox_name(local_part))
    return refusal(553, "5.1.3", "Mailbox name not allowed");
  route_result result;
  result.postoffice = index;
  result.postoffice_name = postoffice.name;
  result.by_default = by_default;
  return result;
}

} // namespace postconn
