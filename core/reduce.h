// Reduction kernels: dst[i] = op(dst[i], src[i]) for every datatype and operation, written so
// the compiler vectorizes them. Collectives call these on cache-resident chunks.
#pragma once

#include <cstddef>

#include "core/datatype.h"

namespace braid {

// dst[i] = op(a[i], b[i]) for i < count. `dst` may alias `a` or `b`. For kAvg this computes the
// sum; callers finish an average with ScaleForAverage once all contributions are summed.
void Reduce(void* dst, const void* a, const void* b, size_t count, DataType type, RedOp op);

// dst[i] /= divisor (integers: truncating division, as NCCL does for ncclAvg on integers).
void ScaleForAverage(void* dst, size_t count, DataType type, int divisor);

}  // namespace braid
