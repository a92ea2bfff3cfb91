// braidCommInitFromMPI under mpirun: a Braid communicator over MPI_COMM_WORLD, and two more
// built from the halves of an MPI_Comm_split, used side by side (interleaved with each other
// and with MPI itself), each result checked exactly. Prints "mpi_init_test: OK" on rank 0.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "braid/braid_mpi.h"

namespace {

int g_world_rank = -1;

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "mpi_init_test: FAILED on world rank %d: %s (%s)\n", g_world_rank,
               what.c_str(), braidGetLastError());
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int64_t Value(int world_rank, size_t i) { return int64_t{world_rank} * 7919 + int64_t(i % 101); }

// Sum over the world ranks in `members`, checked element by element.
void CheckSum(braid::Communicator& comm, int world_rank, const std::vector<int>& members,
              size_t count, const char* name) {
  std::vector<int64_t> data(count), want(count, 0);
  for (size_t i = 0; i < count; ++i) data[i] = Value(world_rank, i);
  for (int m : members)
    for (size_t i = 0; i < count; ++i) want[i] += Value(m, i);
  braid::Status s = comm.AllReduce(std::span<int64_t>(data), braidSum);
  Require(s.ok(), std::string(name) + " AllReduce: " + s.message());
  Require(data == want, std::string(name) + " AllReduce of " + std::to_string(count) + " wrong");
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  // The C++ form over the world, the C form over each half of a split.
  braid::Communicator world;
  Require(braid::Communicator::FromMPI(&world, MPI_COMM_WORLD).ok(), "FromMPI(world)");
  Require(world.rank() == g_world_rank && world.size() == size, "world rank/size differ from MPI");

  // Halves in reverse order (key = -rank), so Braid must follow MPI's ranks, not the world's.
  int color = g_world_rank % 2;
  MPI_Comm half_mpi;
  MPI_Comm_split(MPI_COMM_WORLD, color, -g_world_rank, &half_mpi);
  braidComm_t half_handle = nullptr;
  Require(braidCommInitFromMPI(&half_handle, half_mpi) == braidSuccess, "braidCommInitFromMPI");
  int half_rank = -1, half_size = 0, mpi_half_rank = -1;
  braidCommUserRank(half_handle, &half_rank);
  braidCommCount(half_handle, &half_size);
  MPI_Comm_rank(half_mpi, &mpi_half_rank);
  Require(half_rank == mpi_half_rank, "half rank differs from MPI's");
  std::vector<int> everyone, half;
  for (int r = 0; r < size; ++r) {
    everyone.push_back(r);
    if (r % 2 == color) half.push_back(r);
  }
  Require(half_size == static_cast<int>(half.size()), "half size");

  // Order check: gather world ranks over the half; must be descending.
  std::vector<int32_t> order(half.size());
  int32_t me = g_world_rank;
  Require(braidAllGather(&me, order.data(), 1, braidInt32, half_handle) == braidSuccess,
          "half AllGather");
  for (size_t i = 0; i < half.size(); ++i)
    Require(order[i] == half[half.size() - 1 - i], "half order is not MPI's split order");

  // A split of an MPI-built communicator works like any other (C++ form): the same halves.
  braid::Communicator split;
  Require(world.Split(color, -g_world_rank, &split).ok(), "Split of the world");
  Require(split.rank() == mpi_half_rank && split.size() == half_size, "Split differs from MPI's");
  CheckSum(split, g_world_rank, half, 1021, "split");
  for (size_t count : {size_t{1}, size_t{4097}, size_t{1 << 20}}) {
    CheckSum(world, g_world_rank, everyone, count, "world");
    std::vector<int64_t> data(count), want(count, 0);
    for (size_t i = 0; i < count; ++i) data[i] = Value(g_world_rank, i);
    for (int m : half)
      for (size_t i = 0; i < count; ++i) want[i] += Value(m, i);
    Require(braidAllReduce(data.data(), data.data(), count, braidInt64, braidSum, half_handle) ==
                braidSuccess, "half AllReduce");
    Require(data == want, "half AllReduce wrong");
    // MPI itself still works between Braid calls (Braid left it alone).
    int64_t one = 1, total = 0;
    MPI_Allreduce(&one, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    Require(total == size, "MPI_Allreduce after Braid");
  }
  split = braid::Communicator();
  braidCommDestroy(half_handle);
  MPI_Comm_free(&half_mpi);
  world = braid::Communicator();
  if (g_world_rank == 0) std::printf("mpi_init_test: OK (%d ranks)\n", size);
  MPI_Finalize();
  return 0;
}
