// NAME
//   vocabulary -- conversions for the message structs (see vocabulary.hpp).
#include "messages/vocabulary.hpp"

#include <caf/make_message.hpp>

namespace postconn {

namespace {

constexpr const char* state_names[] = {
  "queued", "in_flight", "deferred", "delivered", "bounced", "held",
};

constexpr const char* recipient_state_names[] = {"delivered", "deferred", "bounced"};

/// Finds `name` in `names`: the enum value at its index.
template <class Enum, std::size_t N>
bool parse_name(const std::string& name, const char* const (&names)[N], Enum& value) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) {
      value = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

constexpr const char* reachability_names[] = {"unknown", "up", "down"};

} // namespace

const char* to_string(delivery_state state) {
  return state_names[static_cast<std::size_t>(state)];
}

bool from_string(const std::string& name, delivery_state& state) {
  return parse_name(name, state_names, state);
}

const char* to_string(recipient_state state) {
  return recipient_state_names[static_cast<std::size_t>(state)];
}

bool from_string(const std::string& name, recipient_state& state) {
  return parse_name(name, recipient_state_names, state);
}

const char* to_string(reachability state) {
  return reachability_names[static_cast<std::size_t>(state)];
}

std::string delivery_key(const ledger_entry& entry, const std::string& node) {
  if (!entry.origin.empty())
    return entry.origin;
  auto local = entry.message_id + "." + std::to_string(entry.delivery_id);
  return node.empty() ? local : node + "." + local;
}

delivery_filter message_filter(const std::string& message_id) {
  delivery_filter filter;
  filter.message_ids = {message_id};
  filter.only_messages = true;
  return filter;
}

bool selects_everything(const delivery_filter& filter) {
  return filter.postoffice.empty() && filter.state.empty() && !filter.only_messages
         && filter.recipient.empty() && filter.queued_before == 0;
}

caf::error make_error(store_errc code, std::string detail) {
  return caf::error{static_cast<std::uint8_t>(code), caf::atom("store"),
                    caf::make_message(std::move(detail))};
}

bool is_store_error(const caf::error& err, store_errc code) {
  return err.category() == caf::atom("store") && err.code() == static_cast<std::uint8_t>(code);
}

} // namespace postconn
