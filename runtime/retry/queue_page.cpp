// NAME
//   queue_page -- the ledger as the admin API shows it (see queue_page.hpp).
#include "runtime/retry/queue_page.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "runtime/retry/delivery_filter.hpp"

namespace postconn {

queue_page select_page(const std::map<std::int64_t, ledger_entry>& ledger,
                       const std::set<std::int64_t>& busy, const queue_query& query) {
  delivery_selector selects{query.filter};
  // (queued at, delivery id) of every selected delivery.
  using key = std::pair<std::int64_t, std::int64_t>;
  std::vector<key> keys;
  const key cursor{query.after_queued_at, query.after_delivery};
  std::uint64_t before_cursor = 0;
  for (const auto& [id, entry] : ledger) {
    if (!selects(entry, busy.count(id) > 0))
      continue;
    if (query.after_delivery != 0 && key{entry.queued_at, id} <= cursor)
      ++before_cursor;
    else
      keys.emplace_back(entry.queued_at, id);
  }
  queue_page page;
  page.total = keys.size() + before_cursor;
  auto first = std::min<std::uint64_t>(query.offset, keys.size());
  auto last = first + std::min<std::uint64_t>(query.limit, keys.size() - first);
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(last),
                    keys.end());
  for (auto i = first; i < last; ++i) {
    auto id = keys[i].second;
    page.deliveries.push_back(ledger.at(id));
    page.deliveries.back().state = shown_state(page.deliveries.back(), busy.count(id) > 0);
  }
  page.more = last < keys.size();
  return page;
}

std::vector<queue_shape> shape_of(const std::map<std::int64_t, ledger_entry>& ledger,
                                  const std::set<std::int64_t>& busy,
                                  const delivery_filter& filter, std::int64_t now) {
  delivery_selector selects{filter};
  std::map<std::string, queue_shape> shapes;
  for (const auto& [id, entry] : ledger) {
    if (!selects(entry, busy.count(id) > 0))
      continue;
    auto& shape = shapes[entry.postoffice];
    if (shape.ages.empty()) {
      shape.postoffice = entry.postoffice;
      shape.ages.resize(std::size(queue_age_bounds) + 1);
      shape.oldest_queued_at = entry.queued_at;
    }
    auto age = now - entry.queued_at;
    auto bucket = std::lower_bound(std::begin(queue_age_bounds), std::end(queue_age_bounds), age)
                  - std::begin(queue_age_bounds);
    ++shape.ages[static_cast<std::size_t>(bucket)];
    shape.oldest_queued_at = std::min(shape.oldest_queued_at, entry.queued_at);
  }
  std::vector<queue_shape> all;
  for (auto& [name, shape] : shapes)
    all.push_back(std::move(shape));
  return all;
}

} // namespace postconn
