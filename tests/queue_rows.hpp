// NAME
//   queue_rows -- messages committed straight into a queue database, with
//   deliveries already in a given state, for tests of what reads the queue.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/store/message_id.hpp"
#include "runtime/store/queue_db.hpp"

namespace postconn::test {

/// A delivery's final (or current) state and the time of its last
/// attempt; 0: no attempt.
struct delivery_spec {
  delivery_state state;
  std::int64_t attempt_at;
};

/// Commits a message received at `received` (Unix seconds) with one
/// delivery per spec, each moved to its state by an attempt at its time;
/// returns the queue id.
inline std::string put_message(queue_db& db, std::int64_t received,
                               std::vector<delivery_spec> specs) {
  auto id = format_message_id(static_cast<std::uint64_t>(received) * 1000000);
  incoming_message msg;
  msg.sender = "ann@example.org";
  msg.content = "Subject: purge\r\n\r\nbody\r\n";
  msg.received_at = received;
  for (std::size_t i = 0; i < specs.size(); ++i)
    msg.deliveries.push_back(
      {"po" + std::to_string(i), {"rcpt@po" + std::to_string(i) + ".example.test"}});
  db.begin();
  auto entries = db.insert_message(id, msg);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    entries[i].state = specs[i].state;
    db.update_delivery(entries[i]);
    if (specs[i].attempt_at != 0)
      db.insert_attempt({entries[i].delivery_id, specs[i].attempt_at,
                         to_string(specs[i].state), "", ""});
  }
  db.commit();
  return id;
}

} // namespace postconn::test
