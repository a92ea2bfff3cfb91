#include "collectives/tree.h"

namespace braid {

TreeLinks TreeOf(int n, int rank, int shift) {
  auto to_rank = [&](int position) { return (position + shift) % n; };
  const int position = ((rank - shift) % n + n) % n;
  TreeLinks links;
  int lo = 0, hi = n;
  while (true) {
    int mid = lo + (hi - lo) / 2;
    if (position == mid) break;
    links.parent = to_rank(mid);
    ++links.depth;
    if (position < mid) hi = mid;
    else lo = mid + 1;
  }
  int mid = lo + (hi - lo) / 2;
  if (lo < mid) links.children[links.nchildren++] = to_rank(lo + (mid - lo) / 2);
  if (mid + 1 < hi) links.children[links.nchildren++] = to_rank(mid + 1 + (hi - mid - 1) / 2);
  return links;
}

int ShiftForRoot(int n, int root) { return ((root - n / 2) % n + n) % n; }

}  // namespace braid
