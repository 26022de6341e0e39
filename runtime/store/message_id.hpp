// NAME
//   message_id -- queue ids for accepted messages.
//
// DESCRIPTION
//   A queue id is 16 lower-case hex digits of a microsecond timestamp, so ids
//   sort in arrival order and stay readable in logs ("queued as
//   0005f3a2b1c4d5e6"). The generator never repeats or goes backwards, even
//   when the clock does: it continues from the greatest id already issued or
//   found in the queue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace postconn {

class message_id_generator {
public:
  /// Continues after `last_issued` (an id from the queue, or "" for none).
  explicit message_id_generator(std::string_view last_issued = {});

  /// The next id, at least `now_micros` and greater than every earlier one.
  std::string next(std::uint64_t now_micros);

  /// The next id at the system clock's current time.
  std::string next();

private:
  std::uint64_t last_ = 0;
};

/// True for a well-formed queue id (16 lower-case hex digits).
bool is_message_id(std::string_view text);

/// The number a queue id stands for (the queue stores ids as integers), or
/// nothing when `text` is not a well-formed id.
std::optional<std::uint64_t> parse_message_id(std::string_view text);

/// The queue id of a number: 16 lower-case hex digits.
std::string format_message_id(std::uint64_t number);

} // namespace postconn
