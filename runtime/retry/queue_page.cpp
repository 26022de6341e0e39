// NAME
//   queue_page -- one page of the ledger for the admin API's /queue (see
//   queue_page.hpp).
#include "runtime/retry/queue_page.hpp"

#include <algorithm>
#include <unordered_set>
#include <utility>
#include <vector>

namespace postconn {

queue_page select_page(const std::map<std::int64_t, ledger_entry>& ledger,
                       const queue_query& query) {
  std::unordered_set<std::string> messages(query.message_ids.begin(),
                                           query.message_ids.end());
  // (queued at, delivery id) of every selected delivery.
  std::vector<std::pair<std::int64_t, std::int64_t>> keys;
  for (const auto& [id, entry] : ledger)
    if ((query.postoffice.empty() || entry.postoffice == query.postoffice)
        && (query.state.empty() || query.state == to_string(entry.state))
        && (!query.only_messages || messages.count(entry.message_id))
        && entry.queued_at <= query.queued_before)
      keys.emplace_back(entry.queued_at, id);
  queue_page page;
  page.total = keys.size();
  auto first = std::min<std::uint64_t>(query.offset, keys.size());
  auto last = first + std::min<std::uint64_t>(query.limit, keys.size() - first);
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(last),
                    keys.end());
  for (auto i = first; i < last; ++i)
    page.deliveries.push_back(ledger.at(keys[i].second));
  return page;
}

} // namespace postconn
