// NAME
//   fault_injector -- the fault-injecting transport's decisions (see
//   fault_injector.hpp).
#include "runtime/delivery/fault_injector.hpp"

#include <algorithm>

namespace postconn {

fault_injector::fault_injector(fault_config cfg, clock::time_point since)
  : cfg_(std::move(cfg)), since_(since) {
  if (cfg_.probability > 0.0 && cfg_.probability < 1.0)
    random_ = std::make_unique<std::mt19937_64>(cfg_.seed);
}

std::string fault_injector::refused_open(clock::time_point now) {
  if (cfg_.mode == fault_mode::unreachable && hit())
    return "unreachable (fault injection)";
  if (cfg_.mode == fault_mode::flap) {
    auto period = cfg_.up + cfg_.down;
    if (period.count() > 0) {
      auto into = std::chrono::duration_cast<std::chrono::seconds>(now - since_) % period;
      if (into >= cfg_.up)
        return "in a down window (fault injection: flap)";
    }
  }
  return {};
}

io_fault fault_injector::open_call() {
  if (cfg_.mode == fault_mode::hang && hit())
    return {latency_ms(), true, false};
  if (cfg_.mode == fault_mode::slow && hit())
    return {latency_ms(), false, false};
  if (cfg_.mode == fault_mode::drop && hit())
    return {0, false, true};
  return {};
}

io_fault fault_injector::transfer_call() {
  if (cfg_.mode == fault_mode::slow && hit())
    return {latency_ms(), false, false};
  if (cfg_.mode == fault_mode::drop && hit())
    return {0, false, true};
  return {};
}

bool fault_injector::fails_transfer() {
  return cfg_.mode == fault_mode::tempfail && hit();
}

bool fault_injector::refuses(const std::string& recipient) {
  if (cfg_.mode != fault_mode::permfail)
    return false;
  auto chosen = cfg_.recipients.empty()
                || std::find(cfg_.recipients.begin(), cfg_.recipients.end(), recipient)
                     != cfg_.recipients.end();
  return chosen && hit();
}

bool fault_injector::hit() {
  if (cfg_.probability >= 1.0)
    return true;
  if (cfg_.probability <= 0.0)
    return false;
  return std::uniform_real_distribution<double>{0.0, 1.0}(*random_) < cfg_.probability;
}

std::int64_t fault_injector::latency_ms() const {
  auto latency = cfg_.latency;
  if (cfg_.mode == fault_mode::hang && latency.count() == 0)
    latency = default_hang_latency;
  return std::chrono::duration_cast<std::chrono::milliseconds>(latency).count();
}

} // namespace postconn
