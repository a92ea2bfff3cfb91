// Which hosts measure each other when: every pair of hosts meets exactly once, and a host is in
// at most one pair per round, so a measurement never shares a host's link with another.
#pragma once

#include <utility>
#include <vector>

namespace braid::health {

using HostPair = std::pair<int, int>;  // (lower host index, higher host index)

// The circle method: n-1 rounds for an even number of hosts, n rounds for an odd number (one
// host rests each round). Pairs inside a round are ordered by their lower host.
std::vector<std::vector<HostPair>> PairRounds(int hosts);

}  // namespace braid::health
