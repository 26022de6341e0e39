// A pure layer that reaches up: three forbidden includes, one allowed.
#pragma once
#include "messages/vocabulary.hpp"
#include "actors/store.hpp"
#include "messages/actors.hpp"
#include <caf/scheduled_actor.hpp>
