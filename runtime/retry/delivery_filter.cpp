// NAME
//   delivery_filter -- which unfinished deliveries a filter selects (see
//   delivery_filter.hpp).
#include "runtime/retry/delivery_filter.hpp"

#include <algorithm>
#include <cctype>

namespace postconn {

namespace {

std::string lower_case(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

} // namespace

delivery_state shown_state(const ledger_entry& entry, bool busy) {
  if (entry.state == delivery_state::held)
    return delivery_state::held;
  return busy ? delivery_state::in_flight : entry.state;
}

delivery_selector::delivery_selector(const delivery_filter& filter)
  : postoffice_(filter.postoffice),
    only_messages_(filter.only_messages),
    messages_(filter.message_ids.begin(), filter.message_ids.end()),
    recipient_(lower_case(filter.recipient)),
    queued_before_(filter.queued_before) {
  delivery_state state;
  if (filter.state.empty())
    return;
  if (from_string(filter.state, state))
    state_ = state;
  else
    unknown_state_ = true;
}

bool delivery_selector::operator()(const ledger_entry& entry, bool busy) const {
  if (unknown_state_ || (!postoffice_.empty() && entry.postoffice != postoffice_)
      || (state_ && shown_state(entry, busy) != *state_)
      || (queued_before_ != 0 && entry.queued_at > queued_before_)
      || (only_messages_ && !messages_.count(entry.message_id)))
    return false;
  return recipient_.empty()
         || std::any_of(entry.recipients.begin(), entry.recipients.end(),
                        [&](const std::string& address) {
                          return lower_case(address).find(recipient_) != std::string::npos;
                        });
}

} // namespace postconn
