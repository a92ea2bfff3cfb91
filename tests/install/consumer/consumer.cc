// Uses the installed C++ wrapper: a one-rank communicator and an AllReduce.
#include <braid/braid.hpp>

#include <cstdio>
#include <vector>

int main() {
  braidUniqueId id;
  if (braidGetUniqueId(&id) != braidSuccess) return 1;
  braid::Communicator comm;
  braid::Status status = braid::Communicator::FromUniqueId(&comm, 1, id, 0);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::vector<float> data = {1.5f, 2.5f};
  status = comm.AllReduce(std::span<float>(data), braidSum);
  std::printf("consumer_cmake: %s %.1f %.1f\n", status.ToString().c_str(), data[0], data[1]);
  return status.ok() && data[0] == 1.5f && data[1] == 2.5f ? 0 : 1;
}
