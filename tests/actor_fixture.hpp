// NAME
//   actor_fixture -- a deterministic actor system for actor tests.
//
// DESCRIPTION
//   CAF's test_coordinator runs every actor on the test thread: nothing
//   happens until the test calls run(), and time moves only through
//   advance_time(). The destructor cancels pending timers, which would
//   otherwise keep actors (and ~actor_system) alive after a failed check.
#pragma once

#include <chrono>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include "messages/registry.hpp"

namespace postconn::test {

struct actor_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;

  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    register_types(c);
    return c;
  }

  actor_fixture()
    : sys(configure(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
  }

  ~actor_fixture() {
    sched.clock().cancel_all();
    sched.run();
  }

  /// The state of a stateful typed actor, for white-box checks.
  template <class State, class Handle>
  State& state_of(const Handle& handle) {
    using impl = typename Handle::template stateful_base<State>;
    return dynamic_cast<impl&>(*caf::actor_cast<caf::abstract_actor*>(handle))
      .state;
  }
};

} // namespace postconn::test
