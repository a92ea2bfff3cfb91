/* Braid: RDMA-first collective communication. The C ABI, close to NCCL's so frameworks can
 * adopt it. Every call returns a braidResult_t; braidGetLastError() gives the detail text. */
#ifndef BRAID_BRAID_H_
#define BRAID_BRAID_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRAID_MAJOR 0
#define BRAID_MINOR 1
#define BRAID_PATCH 0
#define BRAID_VERSION_CODE (BRAID_MAJOR * 10000 + BRAID_MINOR * 100 + BRAID_PATCH)

typedef enum {
  braidSuccess = 0,
  braidSystemError = 1,       /* an OS or library call failed (see the detail text) */
  braidInternalError = 2,     /* a bug in Braid: please report it with the detail text */
  braidInvalidArgument = 3,   /* a bad argument: null buffer, unknown type, rank out of range */
  braidInvalidUsage = 4,      /* a valid call at the wrong time: destroyed or aborted comm */
  braidRemoteError = 5,       /* a peer failed, disconnected or disagreed on the operation */
  braidInProgress = 6,        /* a nonblocking operation has not completed yet */
  braidTimeout = 7,           /* the operation did not complete within the timeout */
  braidAborted = 8,           /* braidCommAbort was called on the communicator */
  braidNumResults = 9,
  braidResultForceInt = 0x7fffffff
} braidResult_t;

typedef enum {
  braidInt8 = 0, braidChar = 0,
  braidUint8 = 1,
  braidInt32 = 2, braidInt = 2,
  braidUint32 = 3,
  braidInt64 = 4,
  braidUint64 = 5,
  braidFloat16 = 6, braidHalf = 6,
  braidFloat32 = 7, braidFloat = 7,
  braidFloat64 = 8, braidDouble = 8,
  braidBfloat16 = 9,
  braidNumTypes = 10,
  braidDataTypeForceInt = 0x7fffffff /* any int is a valid value: bad ones are errors, not UB */
} braidDataType_t;

typedef enum { braidSum = 0, braidProd = 1, braidMax = 2, braidMin = 3, braidAvg = 4,
               braidNumOps = 5, braidRedOpForceInt = 0x7fffffff } braidRedOp_t;

#define BRAID_UNIQUE_ID_BYTES 128
/* Carries the root's address and a random secret; pass it to every rank out of band. */
typedef struct { char internal[BRAID_UNIQUE_ID_BYTES]; } braidUniqueId;

typedef struct braidComm* braidComm_t;
typedef struct braidRequest* braidRequest_t;

/* Text of a result code, and the detail of the last error on the calling thread. */
const char* braidGetErrorString(braidResult_t result);
const char* braidGetLastError(void);
braidResult_t braidGetVersion(int* version);

/* Creates a unique id; the calling process hosts the rendezvous root until all ranks joined. */
braidResult_t braidGetUniqueId(braidUniqueId* unique_id);
braidResult_t braidCommInitRank(braidComm_t* comm, int nranks, braidUniqueId unique_id, int rank);
/* Creates a communicator from launcher variables (BRAID_RANK/BRAID_WORLD_SIZE/BRAID_ROOT,
 * torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, Open MPI's and Slurm's). */
braidResult_t braidCommInitFromEnv(braidComm_t* comm);
braidResult_t braidCommDestroy(braidComm_t comm);
/* Thread-safe: in-flight and future calls on comm return braidAborted promptly; frees comm. */
braidResult_t braidCommAbort(braidComm_t comm);
braidResult_t braidCommCount(const braidComm_t comm, int* count);
braidResult_t braidCommUserRank(const braidComm_t comm, int* rank);
/* The first asynchronous error of the communicator (braidSuccess if none). */
braidResult_t braidCommGetAsyncError(braidComm_t comm, braidResult_t* async_error);
/* Timeout for every blocking wait on this communicator (default BRAID_TIMEOUT). */
braidResult_t braidCommSetTimeout(braidComm_t comm, double seconds);
/* The transport this communicator runs on ("tcp", ...). Valid until the comm is destroyed. */
braidResult_t braidCommTransportName(const braidComm_t comm, const char** name);

/* Collectives. sendbuff == recvbuff (or the rank's slice of it, as in NCCL) is in-place.
 * AllGather: sendcount elements per rank; recvbuff holds nranks * sendcount.
 * ReduceScatter: recvcount elements per rank; sendbuff holds nranks * recvcount. */
braidResult_t braidAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                             braidDataType_t datatype, braidRedOp_t op, braidComm_t comm);
braidResult_t braidAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                             braidDataType_t datatype, braidComm_t comm);
braidResult_t braidReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                 braidDataType_t datatype, braidRedOp_t op, braidComm_t comm);
braidResult_t braidBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                             braidDataType_t datatype, int root, braidComm_t comm);
braidResult_t braidBarrier(braidComm_t comm);

/* Nonblocking forms: start the collective, then braidTest / braidWait the request, which
 * frees it once complete. Operations on one communicator run in the order they were started;
 * buffers must stay valid until the request completes. */
braidResult_t braidIallReduce(const void* sendbuff, void* recvbuff, size_t count,
                              braidDataType_t datatype, braidRedOp_t op, braidComm_t comm,
                              braidRequest_t* request);
braidResult_t braidIallGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                              braidDataType_t datatype, braidComm_t comm, braidRequest_t* request);
braidResult_t braidIreduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                  braidDataType_t datatype, braidRedOp_t op, braidComm_t comm,
                                  braidRequest_t* request);
braidResult_t braidIbroadcast(const void* sendbuff, void* recvbuff, size_t count,
                              braidDataType_t datatype, int root, braidComm_t comm,
                              braidRequest_t* request);
braidResult_t braidIbarrier(braidComm_t comm, braidRequest_t* request);
/* *done = 1 and the request is freed when complete (the result is the operation's). */
braidResult_t braidTest(braidRequest_t request, int* done);
/* Blocks until complete; frees the request; returns the operation's result. */
braidResult_t braidWait(braidRequest_t request);

/* ---- Reduce, AllToAll(v), point-to-point and groups (issue 6) ---- */

/* Reduce: the reduction of every rank's sendbuff lands in recvbuff at root only (recvbuff is
 * ignored, and may be NULL, elsewhere). sendbuff == recvbuff at the root is in-place. */
braidResult_t braidReduce(const void* sendbuff, void* recvbuff, size_t count,
                          braidDataType_t datatype, braidRedOp_t op, int root, braidComm_t comm);
/* AllToAll: sendbuff holds nranks blocks of count elements, block r going to rank r; recvbuff
 * receives rank r's block for this rank at r * count. sendbuff == recvbuff is in-place. */
braidResult_t braidAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                            braidDataType_t datatype, braidComm_t comm);
/* AllToAllv: sendcounts[r] elements at sendbuff + sdispls[r] go to rank r, which receives
 * them at recvbuff + rdispls[this rank] (counts and displacements in elements, nranks each).
 * sendcounts[r] on this rank must equal recvcounts[this rank] on rank r; receive blocks must not
 * overlap. sendbuff == recvbuff is in-place. */
braidResult_t braidAllToAllv(const void* sendbuff, const size_t sendcounts[],
                             const size_t sdispls[], void* recvbuff, const size_t recvcounts[],
                             const size_t rdispls[], braidDataType_t datatype, braidComm_t comm);
/* Point-to-point: the k-th braidSend from rank a to rank b matches the k-th braidRecv on b
 * from a; count and datatype must agree. Outside a group every operation on a communicator
 * runs in issue order and a send may wait for its receive, so two ranks that exchange must
 * group their send and receive (below). Sends to and receives from the calling rank itself are
 * allowed only paired inside one group. */
braidResult_t braidSend(const void* sendbuff, size_t count, braidDataType_t datatype, int peer,
                        braidComm_t comm);
braidResult_t braidRecv(void* recvbuff, size_t count, braidDataType_t datatype, int peer,
                        braidComm_t comm);
/* Groups, as ncclGroupStart/End: calls on this thread between Start and End are checked at once
 * but deferred, and issued together at the outermost End; per communicator its collectives run
 * in call order, then all its sends and receives as one batch (receives posted before sends,
 * so exchanges cannot deadlock). Groups nest and may span communicators. End waits for the
 * blocking calls of the group and returns the first error; requests of nonblocking calls made
 * in a group complete later and must not be tested or waited on before End (braidInvalidUsage).
 * Buffers must stay valid until the calls complete. End without Start is braidInvalidUsage. */
braidResult_t braidGroupStart(void);
braidResult_t braidGroupEnd(void);

/* Nonblocking forms, as braidIallReduce: complete with braidTest / braidWait. */
braidResult_t braidIreduce(const void* sendbuff, void* recvbuff, size_t count,
                           braidDataType_t datatype, braidRedOp_t op, int root, braidComm_t comm,
                           braidRequest_t* request);
braidResult_t braidIallToAll(const void* sendbuff, void* recvbuff, size_t count,
                             braidDataType_t datatype, braidComm_t comm, braidRequest_t* request);
braidResult_t braidIallToAllv(const void* sendbuff, const size_t sendcounts[],
                              const size_t sdispls[], void* recvbuff, const size_t recvcounts[],
                              const size_t rdispls[], braidDataType_t datatype, braidComm_t comm,
                              braidRequest_t* request);
braidResult_t braidIsend(const void* sendbuff, size_t count, braidDataType_t datatype, int peer,
                         braidComm_t comm, braidRequest_t* request);
braidResult_t braidIrecv(void* recvbuff, size_t count, braidDataType_t datatype, int peer,
                         braidComm_t comm, braidRequest_t* request);

/* ---- Communicator split and bootstrap through the application's collective (cluster) ---- */

/* Color for ranks that join no new communicator in braidCommSplit (like NCCL_SPLIT_NOCOLOR). */
#define BRAID_SPLIT_NOCOLOR (-1)
/* Collective over comm: ranks passing the same color form a new communicator, ordered by key
 * (ties by rank in comm), like MPI_Comm_split / ncclCommSplit. Uses comm's own connections, no
 * new rendezvous. BRAID_SPLIT_NOCOLOR ranks take part and get *newcomm = NULL. comm stays
 * usable; both may be used in any interleaving (each in the same order on all its ranks). */
braidResult_t braidCommSplit(braidComm_t comm, int color, int key, braidComm_t* newcomm);

/* All-gathers `bytes` bytes from every rank into recvbuf in rank order (MPI_Allgather of
 * MPI_BYTE). Returns 0 on success, anything else on failure. */
typedef int (*braidAllGatherFn_t)(const void* sendbuf, void* recvbuf, size_t bytes, void* ctx);
/* Creates a communicator whose creation-time exchange (host names, transport addresses) runs
 * over the caller's all-gather; afterwards it is never called again. braid/braid_mpi.h builds
 * braidCommInitFromMPI on it, so this header does not depend on mpi.h. */
braidResult_t braidCommInitFromAllGather(braidComm_t* comm, int nranks, int rank,
                                         braidAllGatherFn_t allgather, void* ctx);
/* ---- Fault tolerance (issue 7) ----
 * After a failure (braidRemoteError/braidTimeout from a collective), the survivors call
 * braidCommShrink on the old communicator: they agree on who is alive and get a new, smaller
 * communicator with the survivors renumbered 0..n-1 in their old order, without restarting
 * the job. Collective over the survivors; blocks up to the heartbeat timeout per failed rank
 * that nobody saw fail, and at most BRAID_TIMEOUT. The old communicator must still be
 * destroyed (or aborted). Works on a healthy communicator too (then nobody is left out). */
braidResult_t braidCommShrink(braidComm_t comm, braidComm_t* newcomm);
/* The ranks this rank saw fail (crashed, silent past BRAID_HEARTBEAT_TIMEOUT, or named by a
 * peer as the first failure), in the order seen. Writes up to capacity ranks; *count gets the
 * total. */
braidResult_t braidCommGetFailedRanks(braidComm_t comm, int* ranks, int capacity, int* count);
/* ---- Memory registration (verbs transport) ----
 * Registers a long-lived buffer with the communicator's transport once, like ncclCommRegister:
 * operations on buffers inside it then skip per-operation registration (pinning) on RDMA
 * transports. *handle receives an opaque registration to pass to braidCommDeregister before
 * the memory is freed. On the tcp transport registration is bookkeeping only. */
braidResult_t braidCommRegister(const braidComm_t comm, void* buff, size_t size, void** handle);
braidResult_t braidCommDeregister(const braidComm_t comm, void* handle);
/* Algorithm selection (issue 6). The algorithm the selector would run for `collective`
 * ("allreduce", "allgather", "reducescatter" or "broadcast") on a buffer of `bytes` (the
 * nccl-tests size: the whole buffer, or the gathered/scattered total), after BRAID_ALGO and
 * BRAID_CHUNK_SIZE. Every rank gets the same answer. `*algorithm` points to a static string
 * ("ring", "tree", ...); `*chunk_bytes` (may be NULL) is the pipeline chunk, 0 if none. */
braidResult_t braidCommGetAlgorithm(const braidComm_t comm, const char* collective, size_t bytes,
                                    const char** algorithm, size_t* chunk_bytes);

#ifdef __cplusplus
}
#endif
#endif /* BRAID_BRAID_H_ */
