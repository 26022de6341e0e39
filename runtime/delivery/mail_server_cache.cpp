// NAME
//   mail_server_cache -- SMTP/LMTP connections kept between batches (see
//   mail_server_cache.hpp).
#include "runtime/delivery/mail_server_cache.hpp"

#include <algorithm>

namespace postconn {

mail_server_cache::mail_server_cache(kept_connection_limits limits) : limits_{limits} {
}

mail_server_cache::~mail_server_cache() {
  for (auto& [key, entries] : kept_)
    for (auto& entry : entries)
      entry.connection->finish();
}

std::string mail_server_cache::key_of(const mail_server_job& job) {
  return job.server + (job.lmtp ? " lmtp " : " smtp ") + job.helo_name + " tls "
         + std::to_string(static_cast<int>(job.tls)) + " " + job.tls_ca_file;
}

std::unique_ptr<mail_server_connection> mail_server_cache::take(const std::string& key,
                                                                clock::time_point now) {
  std::unique_ptr<mail_server_connection> taken;
  std::vector<std::unique_ptr<mail_server_connection>> expired;
  {
    std::lock_guard lock{mutex_};
    auto found = kept_.find(key);
    if (found == kept_.end())
      return nullptr;
    auto& entries = found->second;
    while (!entries.empty() && !taken) {
      auto entry = std::move(entries.back());
      entries.pop_back();
      if (entry.expires > now)
        taken = std::move(entry.connection);
      else
        expired.push_back(std::move(entry.connection));
    }
    if (entries.empty())
      kept_.erase(found);
  }
  for (auto& connection : expired)
    connection->finish();
  return taken;
}

void mail_server_cache::park(const std::string& key,
                             std::unique_ptr<mail_server_connection> connection,
                             clock::time_point now) {
  auto expires = std::min(now + limits_.idle, connection->opened_at() + limits_.age);
  if (expires <= now) {
    connection->finish();
    return;
  }
  std::unique_ptr<mail_server_connection> surplus;
  {
    std::lock_guard lock{mutex_};
    auto& entries = kept_[key];
    entries.push_back({std::move(connection), expires});
    if (entries.size() > limits_.per_key) {
      surplus = std::move(entries.front().connection);
      entries.erase(entries.begin());
    }
  }
  if (surplus)
    surplus->finish();
}

std::optional<mail_server_cache::clock::time_point>
mail_server_cache::close_expired(clock::time_point now) {
  std::vector<std::unique_ptr<mail_server_connection>> expired;
  std::optional<clock::time_point> next;
  {
    std::lock_guard lock{mutex_};
    for (auto kept = kept_.begin(); kept != kept_.end();) {
      auto& entries = kept->second;
      for (auto entry = entries.begin(); entry != entries.end();) {
        if (entry->expires <= now) {
          expired.push_back(std::move(entry->connection));
          entry = entries.erase(entry);
          continue;
        }
        next = next ? std::min(*next, entry->expires) : entry->expires;
        ++entry;
      }
      kept = entries.empty() ? kept_.erase(kept) : std::next(kept);
    }
  }
  for (auto& connection : expired)
    connection->finish();
  return next;
}

std::size_t mail_server_cache::size() const {
  std::lock_guard lock{mutex_};
  std::size_t count = 0;
  for (const auto& [key, entries] : kept_)
    count += entries.size();
  return count;
}

} // namespace postconn
