// Random collectives checked exactly against the reference, for the fault-injection and soak
// tests: every rank draws the same sequence from the same seed, so all ranks agree on it.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "braid/braid.h"

namespace braid::testing {

struct RandomOpLimits {
  size_t max_count = 5000;  // elements per rank (sizes are skewed towards small).
};

// Runs one random collective on `comm`. Returns "" on success; otherwise what failed. `rc`
// gets the call's result (braidSuccess when the data was merely wrong).
std::string RunRandomCollective(std::mt19937_64& rng, int rank, int nranks, braidComm_t comm,
                                const RandomOpLimits& limits, braidResult_t* rc);

}  // namespace braid::testing
