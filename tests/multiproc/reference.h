// Inputs whose reductions are exact in every datatype, and the expected results computed
// independently of Braid's kernels (in 64-bit integers or doubles, then stored in the type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "braid/braid.h"

namespace braid::testing {

// Every datatype and every reduction operation of the C API: the matrix the suites cover.
inline constexpr braidDataType_t kTypes[] = {braidInt8,    braidUint8,  braidInt32,   braidUint32,
                                             braidInt64,   braidUint64, braidFloat16, braidBfloat16,
                                             braidFloat32, braidFloat64};
inline constexpr braidRedOp_t kOps[] = {braidSum, braidProd, braidMax, braidMin, braidAvg};

size_t TypeSize(braidDataType_t type);
// Stores `value` (an exact small number) as element `index` of a typed buffer.
void Store(void* buffer, size_t index, braidDataType_t type, double value);
// Rank `rank`'s input element `index` for `op`, chosen so every result below is exact.
double InputValue(braidRedOp_t op, int rank, int nranks, size_t index);
// Expected reduction of all ranks' inputs at `input_index`, stored as element `index`.
void StoreExpected(void* buffer, size_t index, braidDataType_t type, braidRedOp_t op, int nranks,
                   size_t input_index);
inline void StoreExpected(void* buffer, size_t index, braidDataType_t type, braidRedOp_t op,
                          int nranks) {
  StoreExpected(buffer, index, type, op, nranks, index);
}
// Fills `count` elements of `type` with InputValue(op, rank, ...).
std::vector<std::byte> MakeInput(braidDataType_t type, braidRedOp_t op, int rank, int nranks,
                                 size_t count);
// Index of the first element that differs, or -1.
long long FirstMismatch(const void* got, const void* want, size_t count, braidDataType_t type);

}  // namespace braid::testing
