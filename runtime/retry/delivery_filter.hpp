// NAME
//   delivery_filter -- which unfinished deliveries a filter selects.
//
// DESCRIPTION
//   One filter (messages/vocabulary.hpp) serves the queue listing, the
//   queue shape and every operator's verb, so `postconn queue --state
//   deferred` lists exactly what `postconn hold --state deferred` holds.
//   A delivery's state is matched as the operator is shown it: held, else
//   in_flight while an attempt (or a ledger write) is under way, else its
//   ledger state -- so a deferred delivery being attempted right now is not
//   "deferred", as a Postfix message in the active queue is not in the
//   deferred one.
#pragma once

#include <optional>
#include <string>
#include <unordered_set>

#include "messages/vocabulary.hpp"

namespace postconn {

/// The state a delivery is shown in; `busy`: an attempt or a ledger write
/// is under way.
delivery_state shown_state(const ledger_entry& entry, bool busy);

/// Tells which deliveries a filter selects; made once for a pass over the
/// ledger (it looks message ids up in a hash set, not in the list).
class delivery_selector {
public:
  explicit delivery_selector(const delivery_filter& filter);

  bool operator()(const ledger_entry& entry, bool busy) const;

private:
  std::string postoffice_;
  /// Nothing when any state will do.
  std::optional<delivery_state> state_;
  /// A state that is none: nothing is selected.
  bool unknown_state_ = false;
  bool only_messages_ = false;
  std::unordered_set<std::string> messages_;
  /// The recipient text, lower case.
  std::string recipient_;
  std::int64_t queued_before_ = 0;
};

} // namespace postconn
