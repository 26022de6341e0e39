#pragma once
#include "messages/vocabulary.hpp"
