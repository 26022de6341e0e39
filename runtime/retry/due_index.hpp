// NAME
//   due_index -- which idle deliveries need the supervisor, and when.
//
// DESCRIPTION
//   The supervisor's ledger may hold a million deliveries, and it looks for
//   work after every outcome; a pass over the whole ledger each time made a
//   storm of outcomes quadratic. The index keeps, for each idle delivery (no
//   attempt, ledger write or NDR under way, not held), two times:
//   - its attempt time, in a queue per postoffice; each postoffice with a
//     non-empty queue is ordered by the earliest attempt in it;
//   - its limit time (delay warning or end of lifetime), in one queue.
//   So a pass costs what is due, not what is queued. The supervisor puts a
//   delivery again whenever its ledger entry, its postoffice's policy or its
//   busy state changes; the index holds no ledger data of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace postconn {

class due_index {
public:
  /// "Never" for a limit time.
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

  /// Adds the delivery, or moves it if it is indexed already.
  void put(std::int64_t delivery_id, const std::string& postoffice, std::int64_t attempt_at,
           std::int64_t limit_at);

  /// Takes the delivery out (nothing when it is not indexed).
  void remove(std::int64_t delivery_id);

  void clear();

  std::size_t size() const { return keys_.size(); }

  /// Deliveries whose limit time is at or before `now`, earliest first.
  std::vector<std::int64_t> limits_due(std::int64_t now) const;

  /// Postoffices with an attempt due at or before `now`, earliest first.
  std::vector<std::string> postoffices_due(std::int64_t now) const;

  /// At most `max` deliveries of `postoffice` due at or before `now`,
  /// earliest first.
  std::vector<std::int64_t> attempts_due(const std::string& postoffice, std::int64_t now,
                                         std::size_t max) const;

  /// The earliest limit time and attempt time, leaving out the attempts of
  /// postoffices for which `skip` says yes; `never` when nothing is left.
  std::int64_t
  earliest(const std::function<bool(const std::string& postoffice, std::int64_t at)>& skip)
    const;

private:
  using timed_id = std::pair<std::int64_t, std::int64_t>;

  struct postoffice_queue {
    std::string name;
    std::set<timed_id> attempts;
  };

  struct keys {
    std::uint32_t postoffice;
    std::int64_t attempt_at;
    std::int64_t limit_at;
  };

  std::uint32_t postoffice_number(const std::string& name);
  void insert_attempt(std::uint32_t postoffice, timed_id attempt);
  void erase_attempt(std::uint32_t postoffice, timed_id attempt);

  std::unordered_map<std::int64_t, keys> keys_;
  std::vector<postoffice_queue> postoffices_;
  std::map<std::string, std::uint32_t, std::less<>> numbers_;
  /// (earliest attempt, postoffice number) of every non-empty queue.
  std::set<std::pair<std::int64_t, std::uint32_t>> fronts_;
  std::set<timed_id> limits_;
};

} // namespace postconn
