// NAME
//   supervisor_reports -- what the supervisor's ledger says and the recent
//   bounces, for the admin API and the metrics (see supervisor.hpp).
#include "actors/supervisor_steps.hpp"

#include <map>
#include <utility>

#include "runtime/retry/delivery_filter.hpp"
#include "runtime/retry/queue_page.hpp"

namespace postconn {

std::vector<ledger_entry> whole_ledger(const supervisor_state& st) {
  std::vector<ledger_entry> entries;
  entries.reserve(st.ledger.size());
  for (const auto& [id, entry] : st.ledger)
    entries.push_back(entry);
  return entries;
}

std::vector<ledger_entry> ledger_of(const supervisor_state& st, const std::string& message_id) {
  std::vector<ledger_entry> entries;
  for (const auto& [id, entry] : st.ledger)
    if (entry.message_id == message_id)
      entries.push_back(entry);
  return entries;
}

std::vector<queue_depth> queue_depths(const supervisor_state& st) {
  std::map<std::pair<std::string, delivery_state>, std::uint64_t> depth;
  for (const auto& [id, entry] : st.ledger)
    ++depth[{entry.postoffice, shown_state(entry, st.busy.count(id) > 0)}];
  std::vector<queue_depth> counts;
  for (const auto& [key, count] : depth)
    counts.push_back({key.first, key.second, count});
  return counts;
}

queue_page queue_page_of(const supervisor_state& st, const queue_query& query) {
  return select_page(st.ledger, st.busy, query);
}

std::vector<queue_shape> queue_shapes(const supervisor_state& st, const delivery_filter& filter,
                                      std::int64_t now) {
  return shape_of(st.ledger, st.busy, filter, now);
}

std::vector<outcome_count> outcome_counts(const supervisor_state& st) {
  std::vector<outcome_count> counts;
  for (const auto& [key, count] : st.outcomes)
    counts.push_back({key.first, key.second, count});
  return counts;
}

void remember_bounces(supervisor_state& st, const ledger_decision& decision) {
  const auto& entry = decision.entry;
  for (const auto& rcpt : decision.bounced) {
    st.recent_bounces.push_back({decision.attempt.at, entry.message_id, entry.postoffice,
                                 rcpt.address, rcpt.status, rcpt.diagnostic});
    if (st.recent_bounces.size() > supervisor_state::recent_bounces_kept)
      st.recent_bounces.pop_front();
  }
}

std::vector<bounce_report> recent_bounces(const supervisor_state& st) {
  return {st.recent_bounces.rbegin(), st.recent_bounces.rend()};
}

} // namespace postconn
