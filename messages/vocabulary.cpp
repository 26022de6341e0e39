// NAME
//   vocabulary -- conversions for the message structs (see vocabulary.hpp).
#include "messages/vocabulary.hpp"

#include <caf/make_message.hpp>

namespace postconn {

namespace {

constexpr const char* state_names[] = {
  "queued", "in_flight", "deferred", "delivered", "bounced", "held",
};

constexpr const char* reachability_names[] = {"unknown", "up", "down"};

} // namespace

const char* to_string(delivery_state state) {
  return state_names[static_cast<std::size_t>(state)];
}

bool from_string(const std::string& name, delivery_state& state) {
  for (std::size_t i = 0; i < std::size(state_names); ++i) {
    if (name == state_names[i]) {
      state = static_cast<delivery_state>(i);
      return true;
    }
  }
  return false;
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

caf::error make_error(store_errc code, std::string detail) {
  return caf::error{static_cast<std::uint8_t>(code), caf::atom("store"),
                    caf::make_message(std::move(detail))};
}

bool is_store_error(const caf::error& err, store_errc code) {
  return err.category() == caf::atom("store") && err.code() == static_cast<std::uint8_t>(code);
}

} // namespace postconn
