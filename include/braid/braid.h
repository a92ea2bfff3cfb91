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
