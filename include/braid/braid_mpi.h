/* Braid over an MPI communicator. Header-only on purpose: libbraid does not link MPI, and
 * braid.h does not include mpi.h; a program that includes this header links MPI itself. MPI
 * carries only the creation-time exchange (MPI_Allgather); the data path is Braid's. */
#ifndef BRAID_BRAID_MPI_H_
#define BRAID_BRAID_MPI_H_

#include <limits.h>
/* Only MPI's C API is used: keep C++ programs from needing the removed MPI C++ bindings. */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include "braid/braid.h"

static inline int braidMpiAllGather_(const void* sendbuf, void* recvbuf, size_t bytes,
                                     void* ctx) {
  if (bytes > (size_t)INT_MAX) return 1;
  return MPI_Allgather(sendbuf, (int)bytes, MPI_BYTE, recvbuf, (int)bytes, MPI_BYTE,
                       *(MPI_Comm*)ctx) == MPI_SUCCESS ? 0 : 1;
}

/* Collective over mpi_comm: a Braid communicator with the same ranks in the same order. */
static inline braidResult_t braidCommInitFromMPI(braidComm_t* comm, MPI_Comm mpi_comm) {
  int rank = -1, size = 0;
  if (MPI_Comm_rank(mpi_comm, &rank) != MPI_SUCCESS ||
      MPI_Comm_size(mpi_comm, &size) != MPI_SUCCESS) {
    return braidInvalidArgument;
  }
  return braidCommInitFromAllGather(comm, size, rank, braidMpiAllGather_, &mpi_comm);
}

#ifdef __cplusplus
#include "braid/braid.hpp"
namespace braid {
/* The C++ form: Communicator::FromMPI(&comm, MPI_COMM_WORLD). */
template <>
inline Status Communicator::FromMPI<MPI_Comm>(Communicator* out, MPI_Comm mpi_comm) {
  braidComm_t comm = nullptr;
  Status status(braidCommInitFromMPI(&comm, mpi_comm));
  if (status.ok()) *out = Communicator(comm);
  return status;
}
}  // namespace braid
#endif

#endif /* BRAID_BRAID_MPI_H_ */
