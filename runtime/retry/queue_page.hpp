// NAME
//   queue_page -- one page of the ledger for the admin API's /queue.
//
// DESCRIPTION
//   The ledger may hold a million deliveries while an administrator lists
//   the first hundred: only the keys of the selected deliveries are sorted
//   (queued time, then delivery id), and only the page is copied.
#pragma once

#include <cstdint>
#include <map>

#include "messages/vocabulary.hpp"

namespace postconn {

/// The deliveries of `ledger` that `query` selects: how many, and the page
/// from query.offset of at most query.limit, oldest first.
queue_page select_page(const std::map<std::int64_t, ledger_entry>& ledger,
                       const queue_query& query);

} // namespace postconn
