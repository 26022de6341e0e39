// NAME
//   due_index -- which idle deliveries need the supervisor (see due_index.hpp).
#include "runtime/retry/due_index.hpp"

namespace postconn {

std::uint32_t due_index::postoffice_number(const std::string& name) {
  auto [found, added] =
    numbers_.try_emplace(name, static_cast<std::uint32_t>(postoffices_.size()));
  if (added)
    postoffices_.push_back({name, {}});
  return found->second;
}

void due_index::insert_attempt(std::uint32_t postoffice, timed_id attempt) {
  auto& queue = postoffices_[postoffice].attempts;
  if (!queue.empty() && queue.begin()->first <= attempt.first) {
    queue.insert(attempt);
    return;
  }
  if (!queue.empty())
    fronts_.erase({queue.begin()->first, postoffice});
  queue.insert(attempt);
  fronts_.insert({attempt.first, postoffice});
}

void due_index::erase_attempt(std::uint32_t postoffice, timed_id attempt) {
  auto& queue = postoffices_[postoffice].attempts;
  auto front = queue.begin()->first;
  queue.erase(attempt);
  if (!queue.empty() && queue.begin()->first == front)
    return;
  fronts_.erase({front, postoffice});
  if (!queue.empty())
    fronts_.insert({queue.begin()->first, postoffice});
}

void due_index::put(std::int64_t delivery_id, const std::string& postoffice,
                    std::int64_t attempt_at, std::int64_t limit_at) {
  remove(delivery_id);
  auto number = postoffice_number(postoffice);
  keys_.emplace(delivery_id, keys{number, attempt_at, limit_at});
  insert_attempt(number, {attempt_at, delivery_id});
  if (limit_at != never)
    limits_.insert({limit_at, delivery_id});
}

void due_index::remove(std::int64_t delivery_id) {
  auto found = keys_.find(delivery_id);
  if (found == keys_.end())
    return;
  const auto& key = found->second;
  erase_attempt(key.postoffice, {key.attempt_at, delivery_id});
  if (key.limit_at != never)
    limits_.erase({key.limit_at, delivery_id});
  keys_.erase(found);
}

void due_index::clear() {
  keys_.clear();
  postoffices_.clear();
  numbers_.clear();
  fronts_.clear();
  limits_.clear();
}

std::vector<std::int64_t> due_index::limits_due(std::int64_t now) const {
  std::vector<std::int64_t> due;
  for (auto it = limits_.begin(); it != limits_.end() && it->first <= now; ++it)
    due.push_back(it->second);
  return due;
}

std::vector<std::string> due_index::postoffices_due(std::int64_t now) const {
  std::vector<std::string> due;
  for (auto it = fronts_.begin(); it != fronts_.end() && it->first <= now; ++it)
    due.push_back(postoffices_[it->second].name);
  return due;
}

std::vector<std::int64_t> due_index::attempts_due(const std::string& postoffice,
                                                  std::int64_t now, std::size_t max) const {
  std::vector<std::int64_t> due;
  auto number = numbers_.find(postoffice);
  if (number == numbers_.end())
    return due;
  const auto& queue = postoffices_[number->second].attempts;
  for (auto it = queue.begin(); it != queue.end() && it->first <= now && due.size() < max;
       ++it)
    due.push_back(it->second);
  return due;
}

std::int64_t due_index::earliest(
  const std::function<bool(const std::string& postoffice, std::int64_t at)>& skip) const {
  auto first = limits_.empty() ? never : limits_.begin()->first;
  for (const auto& [at, number] : fronts_) {
    if (at >= first)
      break;
    if (!skip(postoffices_[number].name, at))
      return at;
  }
  return first;
}

} // namespace postconn
