#include "tools/health/schedule.h"

#include <algorithm>

namespace braid::health {

std::vector<std::vector<HostPair>> PairRounds(int hosts) {
  std::vector<std::vector<HostPair>> rounds;
  if (hosts < 2) return rounds;
  // With an odd count, a phantom host (index == hosts) makes the circle even; whoever meets it
  // rests that round.
  const int slots = hosts % 2 == 0 ? hosts : hosts + 1;
  std::vector<int> circle(static_cast<size_t>(slots));
  for (int i = 0; i < slots; ++i) circle[static_cast<size_t>(i)] = i;
  for (int round = 0; round < slots - 1; ++round) {
    std::vector<HostPair> pairs;
    for (int i = 0; i < slots / 2; ++i) {
      int a = circle[static_cast<size_t>(i)];
      int b = circle[static_cast<size_t>(slots - 1 - i)];
      if (a >= hosts || b >= hosts) continue;
      pairs.emplace_back(std::min(a, b), std::max(a, b));
    }
    std::sort(pairs.begin(), pairs.end());
    rounds.push_back(std::move(pairs));
    // Keep position 0 fixed and rotate the rest by one.
    std::rotate(circle.begin() + 1, circle.end() - 1, circle.end());
  }
  return rounds;
}

}  // namespace braid::health
