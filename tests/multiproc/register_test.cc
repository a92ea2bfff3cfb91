// braidCommRegister / braidCommDeregister on real ranks: collectives on registered buffers give
// exact results, deregistration works once, and bad handles are errors, not crashes. Runs on
// the default transport here and on verbs in the soft-RoCE guest (tests/rxe/suite.sh).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

std::string RegisteredAllReduce(int rank, int n, braidComm_t comm) {
  // Large enough for rendezvous writes on verbs; an odd count so the tail is unaligned.
  const size_t count = (1u << 19) + 3;
  std::vector<int64_t> send(count), recv(count, -1);
  for (size_t i = 0; i < count; ++i) send[i] = static_cast<int64_t>(i * 31 + rank);
  void* send_handle = nullptr;
  void* recv_handle = nullptr;
  braidResult_t rc = braidCommRegister(comm, send.data(), count * 8, &send_handle);
  if (rc != braidSuccess) return "register send: " + ResultText(rc);
  rc = braidCommRegister(comm, recv.data(), count * 8, &recv_handle);
  if (rc != braidSuccess) return "register recv: " + ResultText(rc);
  for (int round = 0; round < 3; ++round) {
    rc = braidAllReduce(send.data(), recv.data(), count, braidInt64, braidSum, comm);
    if (rc != braidSuccess) return "AllReduce: " + ResultText(rc);
    for (size_t i = 0; i < count; ++i) {
      int64_t want = static_cast<int64_t>(i * 31) * n + static_cast<int64_t>(n) * (n - 1) / 2;
      if (recv[i] != want) {
        return "round " + std::to_string(round) + ": element " + std::to_string(i) + " is " +
               std::to_string(recv[i]) + ", want " + std::to_string(want);
      }
    }
  }
  if ((rc = braidCommDeregister(comm, send_handle)) != braidSuccess) {
    return "deregister send: " + ResultText(rc);
  }
  if ((rc = braidCommDeregister(comm, recv_handle)) != braidSuccess) {
    return "deregister recv: " + ResultText(rc);
  }
  // The registrations are gone: a second deregistration is refused.
  if (braidCommDeregister(comm, send_handle) == braidSuccess) return "double deregister accepted";
  if (braidCommRegister(comm, nullptr, 8, &send_handle) == braidSuccess) return "NULL registered";
  if (braidCommRegister(comm, send.data(), 8, nullptr) == braidSuccess) return "NULL handle";
  // Unregistered buffers still work after deregistration.
  std::vector<int64_t> one(1, rank), total(1, 0);
  rc = braidAllReduce(one.data(), total.data(), 1, braidInt64, braidSum, comm);
  if (rc != braidSuccess) return "AllReduce after deregister: " + ResultText(rc);
  if (total[0] != static_cast<int64_t>(n) * (n - 1) / 2) return "wrong sum after deregister";
  return "";
}

TEST(Register, CollectivesOnRegisteredBuffersTwoRanks) { EXPECT_EQ(RunRanks(2, RegisteredAllReduce), ""); }
TEST(Register, CollectivesOnRegisteredBuffersThreeRanks) { EXPECT_EQ(RunRanks(3, RegisteredAllReduce), ""); }

}  // namespace
}  // namespace braid::testing
