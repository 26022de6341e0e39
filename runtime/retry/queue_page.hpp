// NAME
//   queue_page -- the ledger as the admin API shows it: one page of the
//   deliveries a filter selects, and their ages per postoffice.
//
// DESCRIPTION
//   The ledger may hold a million deliveries while an administrator lists
//   the first hundred: only the keys of the selected deliveries are sorted
//   (queued time, then delivery id), and only the page is copied. A page
//   can start after a delivery already listed (a cursor) instead of at an
//   offset, so reading a whole queue page by page misses nothing while
//   deliveries leave it. The shape counts the selected deliveries of each
//   postoffice in Postfix qshape's age buckets, in one pass.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "messages/vocabulary.hpp"

namespace postconn {

/// The deliveries of `ledger` that `query` selects (`busy`: those with an
/// attempt or ledger write under way, shown in_flight): how many, and the
/// page from query.offset (after the cursor, if any) of at most
/// query.limit, oldest first.
queue_page select_page(const std::map<std::int64_t, ledger_entry>& ledger,
                       const std::set<std::int64_t>& busy, const queue_query& query);

/// The ages at Unix time `now` of the deliveries `filter` selects, per
/// postoffice with any, by name.
std::vector<queue_shape> shape_of(const std::map<std::int64_t, ledger_entry>& ledger,
                                  const std::set<std::int64_t>& busy,
                                  const delivery_filter& filter, std::int64_t now);

} // namespace postconn
