// Binary trees over the ranks for the tree collectives: a balanced in-order tree (each node is
// the middle of its interval), rotated by `shift` so two trees can be made complementary.
#pragma once

namespace braid {

struct TreeLinks {
  int parent = -1;            // -1 at the root.
  int children[2] = {-1, -1};
  int nchildren = 0;
  int depth = 0;              // 0 at the root.
};

// This rank's links in the tree whose position p holds rank (p + shift) % n. The root is the
// rank at position n / 2; ceil(log2(n + 1)) levels.
TreeLinks TreeOf(int n, int rank, int shift);
// The shift that puts `root` at the root of the tree.
int ShiftForRoot(int n, int root);

}  // namespace braid
