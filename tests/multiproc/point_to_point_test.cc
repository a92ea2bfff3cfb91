// braidSend/braidRecv and braidGroupStart/End on real forked ranks through the C API: rings and
// pairwise exchanges inside groups (in place too), ordering by (peer, order), point-to-point
// traffic that only some ranks see interleaved with collectives, groups spanning two
// communicators, nonblocking forms, and every misuse a clear error.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "braid/braid.hpp"
#include "tests/multiproc/rank_harness.h"
#include "tests/multiproc/reference.h"

namespace braid::testing {
namespace {

// Element j of message `message` from rank `from` to rank `to`: small, exact in every type.
double Value(int from, int to, size_t j, int message = 0) {
  return static_cast<double>((static_cast<size_t>(from) * 29 + static_cast<size_t>(to) * 11 + j +
                              static_cast<size_t>(message) * 5) % 101);
}

std::vector<std::byte> Fill(braidDataType_t t, size_t count, int from, int to, int message = 0) {
  std::vector<std::byte> out(count * TypeSize(t));
  for (size_t j = 0; j < count; ++j) Store(out.data(), j, t, Value(from, to, j, message));
  return out;
}

std::string Compare(const std::string& where, const std::byte* got, braidDataType_t t, size_t count,
                    int from, int to, int message = 0) {
  std::vector<std::byte> want = Fill(t, count, from, to, message);
  long long bad = FirstMismatch(got, want.data(), count, t);
  return bad < 0 ? "" : where + ": wrong at element " + std::to_string(bad);
}

std::string Call(braidResult_t rc, const std::string& what) {
  return rc == braidSuccess ? "" : what + ": " + ResultText(rc);
}

std::string Where(const char* what, braidDataType_t t, size_t count, bool inplace) {
  return std::string(what) + " type " + std::to_string(t) + " count " + std::to_string(count) +
         (inplace ? " in-place" : "");
}

// Rank 0 creates a unique id for a second communicator and broadcasts it over `comm`.
std::string ShareNewUniqueId(int rank, braidComm_t comm, braidUniqueId* id) {
  if (rank == 0 && braidGetUniqueId(id) != braidSuccess) return "GetUniqueId: " + std::string(braidGetLastError());
  return Call(braidBroadcast(id, id, sizeof(*id), braidInt8, 0, comm), "Broadcast id");
}

class PointToPoint : public ::testing::TestWithParam<int> {};

// Every rank sends to its right and receives from its left in one group (in place: the same
// buffer, which the group must read before overwriting).
TEST_P(PointToPoint, RingInGroups) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              int right = (rank + 1) % n, left = (rank + n - 1) % n;
              for (braidDataType_t t : kTypes)
                for (size_t count : {size_t{0}, size_t{1}, size_t{13}, size_t{1021}, size_t{300007}})
                  for (bool inplace : {false, true}) {
                    std::string where = Where("ring", t, count, inplace);
                    std::vector<std::byte> send = Fill(t, count, rank, right);
                    std::vector<std::byte> storage(send.size() + 1, std::byte{0xA5});
                    std::byte* recv = storage.data() + 1;  // unaligned
                    if (inplace && count) std::memcpy(recv, send.data(), send.size());
                    std::string e = Call(braidGroupStart(), where + " GroupStart");
                    e += Call(braidSend(inplace ? recv : send.data(), count, t, right, comm), where + " Send");
                    e += Call(braidRecv(recv, count, t, left, comm), where + " Recv");
                    e += Call(braidGroupEnd(), where + " GroupEnd");
                    if (e.empty()) e = Compare(where, recv, t, count, left, rank);
                    if (!e.empty()) return e;
                  }
              return "";
            }),
            "");
}

// A user-built AllToAll: one group with a send to and a receive from every rank, itself included,
// receives posted before sends in some groups and after in others.
TEST_P(PointToPoint, PairwiseExchangeInGroups) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{65537}})
                for (bool recv_first : {true, false}) {
                  braidDataType_t t = count % 2 ? braidFloat16 : braidInt64;
                  std::string where = Where("pairwise", t, count, false) + (recv_first ? " recv-first" : " send-first");
                  std::vector<std::vector<std::byte>> sends, recvs;
                  for (int p = 0; p < n; ++p) {
                    sends.push_back(Fill(t, count, rank, p));
                    recvs.emplace_back(count * TypeSize(t), std::byte{0xA5});
                  }
                  std::string e = Call(braidGroupStart(), where);
                  for (int k = 0; k < n; ++k) {
                    int to = (rank + k) % n, from = (rank + n - k) % n;
                    braidResult_t a = recv_first ? braidRecv(recvs[from].data(), count, t, from, comm)
                                                 : braidSend(sends[to].data(), count, t, to, comm);
                    braidResult_t b = recv_first ? braidSend(sends[to].data(), count, t, to, comm)
                                                 : braidRecv(recvs[from].data(), count, t, from, comm);
                    e += Call(a, where + " first call") + Call(b, where + " second call");
                  }
                  e += Call(braidGroupEnd(), where + " GroupEnd");
                  for (int p = 0; p < n && e.empty(); ++p) e = Compare(where + " from " + std::to_string(p), recvs[p].data(), t, count, p, rank);
                  if (!e.empty()) return e;
                }
              return "";
            }),
            "");
}

// Several messages between the same pair match in order, whatever their sizes; blocking calls
// outside groups; a nested group; nonblocking forms completed with test and wait.
TEST_P(PointToPoint, OrderingNestingAndNonblocking) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              if (n < 2) return "";
              const size_t sizes[] = {5, 0, 100003, 1};
              std::string e;
              if (rank == 0) {
                for (int m = 0; m < 4; ++m) {
                  std::vector<std::byte> data = Fill(braidFloat32, sizes[m], 0, 1, m);
                  e += Call(braidSend(data.data(), sizes[m], braidFloat32, 1, comm), "blocking Send #" + std::to_string(m));
                }
              } else if (rank == 1) {
                for (int m = 0; m < 4 && e.empty(); ++m) {
                  std::vector<std::byte> data(sizes[m] * 4);
                  e += Call(braidRecv(data.data(), sizes[m], braidFloat32, 0, comm), "blocking Recv #" + std::to_string(m));
                  if (e.empty()) e = Compare("Recv #" + std::to_string(m), data.data(), braidFloat32, sizes[m], 0, 1, m);
                }
              }
              if (!e.empty()) return e;
              // Nested groups: nothing is issued until the outer End; requests complete after it.
              int right = (rank + 1) % n, left = (rank + n - 1) % n;
              std::vector<std::byte> a = Fill(braidInt32, 777, rank, right), b(777 * 4), c = Fill(braidInt32, 3, rank, left, 1), d(3 * 4);
              braidRequest_t reqs[4] = {};
              e += Call(braidGroupStart(), "outer GroupStart");
              e += Call(braidIsend(a.data(), 777, braidInt32, right, comm, &reqs[0]), "Isend");
              e += Call(braidGroupStart(), "inner GroupStart");
              e += Call(braidIrecv(b.data(), 777, braidInt32, left, comm, &reqs[1]), "Irecv");
              e += Call(braidGroupEnd(), "inner GroupEnd");
              e += Call(braidIsend(c.data(), 3, braidInt32, left, comm, &reqs[2]), "Isend left");
              e += Call(braidIrecv(d.data(), 3, braidInt32, right, comm, &reqs[3]), "Irecv right");
              e += Call(braidGroupEnd(), "outer GroupEnd");
              int done = 0;
              while (e.empty() && !done) e += Call(braidTest(reqs[0], &done), "Test");
              for (int k = 1; k < 4 && e.empty(); ++k) e += Call(braidWait(reqs[k]), "Wait");
              if (e.empty()) e = Compare("nested ring", b.data(), braidInt32, 777, left, rank);
              if (e.empty()) e = Compare("nested reverse ring", d.data(), braidInt32, 3, right, rank, 1);
              // Nonblocking outside groups.
              if (e.empty() && n >= 2 && rank < 2) {
                int peer = 1 - rank;
                std::vector<std::byte> out = Fill(braidUint8, 4099, rank, peer), in(4099);
                braidRequest_t r1 = nullptr, r2 = nullptr;
                // Outside a group operations run in issue order, so each rank sends first (a
                // receive issued first on both ranks would wait for a send queued behind it).
                e += Call(braidIsend(out.data(), 4099, braidUint8, peer, comm, &r2), "Isend");
                e += Call(braidIrecv(in.data(), 4099, braidUint8, peer, comm, &r1), "Irecv");
                if (e.empty()) e += Call(braidWait(r2), "Wait Isend") + Call(braidWait(r1), "Wait Irecv");
                if (e.empty()) e = Compare("Isend/Irecv", in.data(), braidUint8, 4099, peer, rank);
              }
              return e;
            }),
            "");
}

// Point-to-point traffic that only some ranks take part in must not shift how the ranks number
// their collectives: ranks 0 and 1 exchange several times, then every rank runs collectives.
TEST_P(PointToPoint, InterleavedWithCollectives) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              std::string e;
              for (int round = 0; round < 3 && e.empty(); ++round) {
                if (n >= 2 && rank < 2) {
                  int peer = 1 - rank;
                  std::vector<std::byte> out = Fill(braidInt64, 31, rank, peer, round), in(31 * 8);
                  for (int m = 0; m <= round; ++m) {
                    e += Call(braidGroupStart(), "GroupStart");
                    e += Call(braidSend(out.data(), 31, braidInt64, peer, comm), "Send");
                    e += Call(braidRecv(in.data(), 31, braidInt64, peer, comm), "Recv");
                    e += Call(braidGroupEnd(), "GroupEnd");
                  }
                  if (e.empty()) e = Compare("exchange", in.data(), braidInt64, 31, peer, rank, round);
                }
                std::vector<std::byte> data = MakeInput(braidFloat32, braidSum, rank, n, 1021), want(1021 * 4);
                e += Call(braidAllReduce(data.data(), data.data(), 1021, braidFloat32, braidSum, comm), "AllReduce");
                for (size_t i = 0; i < 1021; ++i) StoreExpected(want.data(), i, braidFloat32, braidSum, n);
                if (e.empty() && FirstMismatch(data.data(), want.data(), 1021, braidFloat32) >= 0) e = "AllReduce after point-to-point wrong";
                e += Call(braidBarrier(comm), "Barrier");
              }
              return e;
            }),
            "");
}

// One group spanning two communicators and a collective: each communicator's calls are issued
// to its own worker, so the thread never blocks on one while the other waits.
TEST_P(PointToPoint, GroupAcrossTwoCommunicators) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              braidUniqueId id{};
              std::string e = ShareNewUniqueId(rank, comm, &id);
              braidComm_t other = nullptr;
              e += Call(braidCommInitRank(&other, n, id, rank), "second CommInitRank");
              if (!e.empty()) return e;
              int right = (rank + 1) % n, left = (rank + n - 1) % n;
              std::vector<std::byte> a = Fill(braidFloat64, 50000, rank, right), a_in(50000 * 8);
              std::vector<std::byte> b = Fill(braidFloat64, 40000, rank, left, 2), b_in(40000 * 8);
              std::vector<std::byte> sum = MakeInput(braidInt32, braidMax, rank, n, 99), want(99 * 4);
              e += Call(braidGroupStart(), "GroupStart");
              e += Call(braidSend(a.data(), 50000, braidFloat64, right, comm), "Send on comm");
              e += Call(braidAllReduce(sum.data(), sum.data(), 99, braidInt32, braidMax, other), "AllReduce on other");
              e += Call(braidRecv(b_in.data(), 40000, braidFloat64, right, other), "Recv on other");
              e += Call(braidRecv(a_in.data(), 50000, braidFloat64, left, comm), "Recv on comm");
              e += Call(braidSend(b.data(), 40000, braidFloat64, left, other), "Send on other");
              e += Call(braidGroupEnd(), "GroupEnd");
              if (e.empty()) e = Compare("on comm", a_in.data(), braidFloat64, 50000, left, rank);
              if (e.empty()) e = Compare("on other", b_in.data(), braidFloat64, 40000, right, rank, 2);
              for (size_t i = 0; i < 99; ++i) StoreExpected(want.data(), i, braidInt32, braidMax, n);
              if (e.empty() && FirstMismatch(sum.data(), want.data(), 99, braidInt32) >= 0) e = "grouped AllReduce wrong";
              e += Call(braidCommDestroy(other), "destroy other");
              return e;
            }),
            "");
}

// The C++ wrapper's new calls (braid.hpp): Reduce, AllToAll, AllToAllv, Send/Recv in a Group.
TEST_P(PointToPoint, CxxWrapper) {
  EXPECT_EQ(RunRanks(GetParam(), [](int rank, int n, braidComm_t comm) -> std::string {
              braidUniqueId id{};
              std::string e = ShareNewUniqueId(rank, comm, &id);
              braid::Communicator cxx;
              if (braid::Status s = braid::Communicator::FromUniqueId(&cxx, n, id, rank); !s.ok()) return s.ToString();
              const size_t un = static_cast<size_t>(n);
              std::vector<int64_t> mine(10, rank + 1), total(10, -1);
              if (auto s = cxx.Reduce(std::span<const int64_t>(mine), std::span<int64_t>(total), braidSum, n - 1); !s.ok()) return "Reduce: " + s.ToString();
              if (rank == n - 1 && total[9] != n * (n + 1) / 2) return "Reduce result " + std::to_string(total[9]);
              if (auto s = cxx.Reduce(std::span<int64_t>(mine), braidMax, 0); !s.ok()) return "in-place Reduce: " + s.ToString();
              if (rank == 0 && mine[0] != n) return "in-place Reduce max " + std::to_string(mine[0]);
              std::vector<int32_t> out(2 * un), in(2 * un);
              for (size_t r = 0; r < un; ++r) out[2 * r] = out[2 * r + 1] = rank * 100 + static_cast<int>(r);
              if (auto s = cxx.AllToAll(std::span<const int32_t>(out), std::span<int32_t>(in)); !s.ok()) return "AllToAll: " + s.ToString();
              for (size_t r = 0; r < un; ++r)
                if (in[2 * r + 1] != static_cast<int>(r) * 100 + rank) return "AllToAll wrong from " + std::to_string(r);
              std::vector<size_t> ones(un, 1), displs(un);
              for (size_t r = 0; r < un; ++r) displs[r] = r;
              std::vector<float> vin(un, -1), vout(un, static_cast<float>(rank));
              if (auto s = cxx.AllToAllv(std::span<const float>(vout), std::span<const size_t>(ones), std::span<const size_t>(displs),
                                         std::span<float>(vin), std::span<const size_t>(ones), std::span<const size_t>(displs)); !s.ok())
                return "AllToAllv: " + s.ToString();
              for (size_t r = 0; r < un; ++r)
                if (vin[r] != static_cast<float>(r)) return "AllToAllv wrong from " + std::to_string(r);
              if (auto s = cxx.AllToAll(std::span<const int32_t>(out), std::span<int32_t>(in).first(1)); s.ok()) return "AllToAll accepted mismatched spans";
              double token = rank, got = -1;
              braid::Group group;
              if (auto s = cxx.Send(std::span<const double>(&token, 1), (rank + 1) % n); !s.ok()) return "Send: " + s.ToString();
              if (auto s = cxx.Recv(std::span<double>(&got, 1), (rank + n - 1) % n); !s.ok()) return "Recv: " + s.ToString();
              if (auto s = group.End(); !s.ok()) return "Group End: " + s.ToString();
              if (got != (rank + n - 1) % n) return "ring token " + std::to_string(got);
              if (group.End().ok()) return "a second End succeeded";
              return e;
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Ranks, PointToPoint, ::testing::Values(1, 2, 3, 5, 8),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

std::string Expect(braidResult_t got, braidResult_t want, const std::string& what) {
  if (got == want) return "";
  return what + ": expected " + braidGetErrorString(want) + " but got " + ResultText(got) + "\n";
}

std::string ExpectMentions(const std::string& needle, const std::string& what) {
  std::string text = braidGetLastError();
  if (text.find(needle) != std::string::npos) return "";
  return what + ": error text does not mention \"" + needle + "\": " + text + "\n";
}

// Misuse of the new calls: each a clear error, and the communicator still works afterwards.
TEST(PointToPointMisuse, ClearErrorsAndTheCommunicatorSurvives) {
  EXPECT_EQ(RunRanks(3, [](int rank, int n, braidComm_t comm) -> std::string {
              float x[8] = {};
              size_t counts[3] = {1, 1, 1}, displs[3] = {0, 1, 2};
              std::string e;
              e += Expect(braidGroupEnd(), braidInvalidUsage, "GroupEnd without Start");
              e += ExpectMentions("braidGroupStart", "GroupEnd without Start");
              e += Expect(braidSend(x, 1, braidFloat32, n, comm), braidInvalidArgument, "Send to peer n");
              e += ExpectMentions("out of range", "Send to peer n");
              e += Expect(braidRecv(x, 1, braidFloat32, -1, comm), braidInvalidArgument, "Recv from -1");
              e += Expect(braidSend(nullptr, 4, braidFloat32, 0, comm), braidInvalidArgument, "Send null");
              e += ExpectMentions("null", "Send null");
              e += Expect(braidSend(x, 1, static_cast<braidDataType_t>(42), 0, comm), braidInvalidArgument, "Send bad type");
              e += Expect(braidSend(x, 1, braidFloat32, rank, comm), braidInvalidArgument, "Send to self outside a group");
              e += ExpectMentions("itself", "Send to self outside a group");
              e += Expect(braidGroupStart(), braidSuccess, "GroupStart");
              e += Expect(braidSend(x, 2, braidFloat32, rank, comm), braidSuccess, "deferred self send");
              e += Expect(braidRecv(x + 4, 3, braidFloat32, rank, comm), braidSuccess, "deferred self recv");
              e += Expect(braidGroupEnd(), braidInvalidArgument, "self send and receive of different sizes");
              e += ExpectMentions("bytes", "self send and receive of different sizes");
              braidRequest_t req = nullptr;
              e += Expect(braidGroupStart(), braidSuccess, "GroupStart");
              e += Expect(braidIsend(x, 1, braidFloat32, rank, comm, &req), braidSuccess, "Isend to self");
              e += Expect(braidWait(req), braidInvalidUsage, "Wait inside the open group");
              e += ExpectMentions("braidGroupEnd", "Wait inside the open group");
              int done = 0;
              e += Expect(braidTest(req, &done), braidInvalidUsage, "Test inside the open group");
              e += Expect(braidRecv(x + 4, 1, braidFloat32, rank, comm), braidSuccess, "self recv");
              e += Expect(braidGroupEnd(), braidSuccess, "GroupEnd");
              e += Expect(braidWait(req), braidSuccess, "Wait after GroupEnd");
              e += Expect(braidIsend(x, 1, braidFloat32, 0, comm, nullptr), braidInvalidArgument, "Isend null request");
              e += Expect(braidReduce(x, x, 4, braidFloat32, braidSum, n, comm), braidInvalidArgument, "Reduce root n");
              e += ExpectMentions("root", "Reduce root n");
              e += Expect(braidReduce(x, x + 1, 4, braidFloat32, braidSum, rank, comm), braidInvalidArgument, "Reduce overlapping at root");
              e += Expect(braidReduce(x, x, 4, braidFloat32, static_cast<braidRedOp_t>(9), 0, comm), braidInvalidArgument, "Reduce bad op");
              e += Expect(braidAllToAll(x, x + 1, 2, braidFloat32, comm), braidInvalidArgument, "AllToAll overlapping");
              e += ExpectMentions("overlap", "AllToAll overlapping");
              e += Expect(braidAllToAll(nullptr, x, 1, braidFloat32, comm), braidInvalidArgument, "AllToAll null");
              e += Expect(braidAllToAllv(x, nullptr, displs, x + 4, counts, displs, braidFloat32, comm), braidInvalidArgument, "AllToAllv null counts");
              size_t overlapping[3] = {0, 0, 0};
              e += Expect(braidAllToAllv(x, counts, displs, x + 4, counts, overlapping, braidFloat32, comm), braidInvalidArgument, "AllToAllv overlapping receive blocks");
              e += ExpectMentions("overlap", "AllToAllv overlapping receive blocks");
              size_t self_mismatch[3] = {1, 1, 1};
              self_mismatch[rank] = 0;
              e += Expect(braidAllToAllv(x, counts, displs, x + 4, self_mismatch, displs, braidFloat32, comm), braidInvalidArgument, "AllToAllv self count mismatch");
              e += ExpectMentions("itself", "AllToAllv self count mismatch");
              // Refused calls consumed nothing: the communicator still works for every kind of call.
              float y[3] = {1, 2, 3}, z[3] = {};
              e += Expect(braidAllToAll(y, z, 1, braidFloat32, comm), braidSuccess, "AllToAll after errors");
              e += Expect(braidReduce(y, z, 3, braidFloat32, braidSum, 1, comm), braidSuccess, "Reduce after errors");
              e += Expect(braidGroupStart(), braidSuccess, "GroupStart");
              e += Expect(braidSend(y, 3, braidFloat32, (rank + 1) % n, comm), braidSuccess, "Send after errors");
              e += Expect(braidRecv(z, 3, braidFloat32, (rank + n - 1) % n, comm), braidSuccess, "Recv after errors");
              e += Expect(braidGroupEnd(), braidSuccess, "GroupEnd after errors");
              if (z[0] != 1 || z[2] != 3) e += "ring after errors delivered wrong data\n";
              return e;
            }),
            "");
}

// A receive of a different size than its send fails with an error naming both sizes instead of
// truncating or hanging; blocking receive without any send times out within the timeout.
TEST(PointToPointMisuse, SizeMismatchIsAnErrorNotAHang) {
  EXPECT_EQ(RunRanks(2, [](int rank, int, braidComm_t comm) -> std::string {
              braidCommSetTimeout(comm, 20);
              float x[16] = {};
              if (rank == 0) {
                braidSend(x, 16, braidFloat32, 1, comm);  // may complete before the peer objects.
                return "";
              }
              braidResult_t rc = braidRecv(x, 8, braidFloat32, 0, comm);
              if (rc == braidSuccess) return "a 32-byte receive accepted a 64-byte send";
              std::string text = braidGetLastError();
              if (text.find("64 bytes") == std::string::npos || text.find("32 bytes") == std::string::npos)
                return "error does not name both sizes: " + text;
              if (text.find("Recv") == std::string::npos) return "error does not name the call: " + text;
              // The communicator is broken now: every later call, grouped or not, says so.
              std::string e = Expect(braidReduce(x, x, 4, braidFloat32, braidSum, 0, comm), braidInvalidUsage, "Reduce on a broken communicator");
              e += ExpectMentions("unusable", "Reduce on a broken communicator");
              e += Expect(braidGroupStart(), braidSuccess, "GroupStart");
              e += Expect(braidSend(x, 1, braidFloat32, 0, comm), braidSuccess, "deferred Send");
              braidRequest_t req = nullptr;
              e += Expect(braidIrecv(x, 1, braidFloat32, 0, comm, &req), braidSuccess, "deferred Irecv");
              e += Expect(braidGroupEnd(), braidInvalidUsage, "GroupEnd on a broken communicator");
              e += ExpectMentions("unusable", "GroupEnd on a broken communicator");
              e += Expect(braidWait(req), braidInvalidUsage, "Wait on the group's request");
              return e;
            }),
            "");
}

}  // namespace
}  // namespace braid::testing
