// NAME
//   actors -- the typed interfaces of every postconn actor, in one place.
//
// DESCRIPTION
//   Actors talk only through these interfaces; one comment line per handler.
//   Handlers an actor sends to itself are listed too (CAF needs them in the
//   interface) and are marked "internal".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/vocabulary.hpp"

namespace postconn {

/// The durable queue: messages, deliveries (retry ledgers), attempt log.
/// Writes are group-committed; a reply means the data is on disk.
using store_actor = caf::typed_actor<
  // Commits a message and its deliveries; replies with its queue id.
  caf::replies_to<accept_atom, incoming_message>::with<std::string>,
  // Persists a ledger entry's new values with the attempt that changed it.
  caf::replies_to<record_atom, ledger_entry, attempt_record>::with<bool>,
  // Lists every delivery that is not finished (delivered or bounced).
  caf::replies_to<load_atom>::with<std::vector<ledger_entry>>,
  // Reads one message by queue id.
  caf::replies_to<fetch_atom, std::string>::with<stored_message>,
  // Reports the store's counters.
  caf::replies_to<status_atom>::with<store_status>,
  // Internal: commits the writes received so far in one transaction.
  caf::reacts_to<commit_atom>>;

} // namespace postconn
