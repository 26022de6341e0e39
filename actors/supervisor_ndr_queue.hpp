// NAME
//   supervisor_ndr_queue -- the bounces and delay warnings waiting for an
//   NDR generator, and the generators at work.
//
// DESCRIPTION
//   Part of the supervisor's state. Each decision that bounces recipients
//   (or warns of their delay) gets an NDR generator of its own, at most
//   `max_generators` at once: each has two store requests, so in an NDR
//   storm this bounds the store's queue, and new mail is committed without
//   waiting behind all of them. The others wait, oldest first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include <caf/actor_addr.hpp>

#include "runtime/retry/ledger_rules.hpp"

namespace postconn {

class ndr_queue {
public:
  explicit ndr_queue(std::size_t max_generators = 256) : max_generators_(max_generators) {}

  /// Queues a decision for a generator.
  void push(ledger_decision decision) {
    waiting_.push_back(std::move(decision));
  }

  /// The next decision to hand to a generator, while fewer than the
  /// maximum are at work; call started() with the generator.
  std::optional<ledger_decision> next();

  /// `generator` works on the delivery now.
  void started(const caf::actor_addr& generator, std::int64_t delivery_id) {
    at_work_.emplace(generator, delivery_id);
  }

  /// `actor` ended: the delivery it worked on when it was a generator.
  std::optional<std::int64_t> ended(const caf::actor_addr& actor);

  /// Generators at work, and decisions waiting for one.
  std::size_t at_work() const {
    return at_work_.size();
  }
  std::size_t waiting() const {
    return waiting_.size();
  }

private:
  std::size_t max_generators_;
  std::deque<ledger_decision> waiting_;
  /// Generators at work, with the delivery each bounces.
  std::map<caf::actor_addr, std::int64_t> at_work_;
};

} // namespace postconn
