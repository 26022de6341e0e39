// NAME
//   unix_clock -- the one place that reads the wall clock (see unix_clock.hpp).
#include "messages/unix_clock.hpp"

namespace postconn {

unix_time_origin unix_time_origin::now() {
  auto wall = std::chrono::system_clock::now().time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wall);
  return {seconds.count(), std::chrono::duration_cast<std::chrono::nanoseconds>(wall - seconds)};
}

} // namespace postconn
