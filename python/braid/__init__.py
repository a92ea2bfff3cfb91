"""Braid: RDMA-first collective communication.

    import numpy as np, braid
    comm = braid.Comm.from_env()          # braidrun / torchrun / mpirun+BRAID_ROOT variables
    x = np.ones(1024, np.float32)
    comm.all_reduce(x)                    # in place, zero-copy; op=braid.SUM by default
    req = comm.iall_reduce(x, op=braid.MAX)
    req.wait()

Buffers are any C-contiguous object with the buffer protocol; the element type comes from its
format (int8/uint8/int32/uint32/int64/uint64/float16/float32/float64), or from dtype= (e.g.
braid.bfloat16 over 2-byte data). Failures raise braid.BraidError, whose .code is a braid.Result.
Point-to-point: comm.send(x, peer) / comm.recv(y, peer) match in order per pair of ranks. A
send may wait for its receive, so ranks that exchange group their calls:

    with braid.group():                   # braid.group_start() ... braid.group_end()
        comm.isend(x, (rank + 1) % size)
        req = comm.irecv(y, (rank - 1) % size)
    req.wait()                            # requests of a group are waited on after it

`import braid.torch` registers the "braid" backend of torch.distributed.
"""
import contextlib

from ._braid import (BraidError, Comm, DataType, Op, Request, Result, get_unique_id,
                     group_end, group_start, version)

SUM, PROD, MAX, MIN, AVG = Op.SUM, Op.PROD, Op.MAX, Op.MIN, Op.AVG
int8, uint8, int32, uint32 = DataType.int8, DataType.uint8, DataType.int32, DataType.uint32
int64, uint64 = DataType.int64, DataType.uint64
float16, float32, float64, bfloat16 = (DataType.float16, DataType.float32, DataType.float64,
                                       DataType.bfloat16)



@contextlib.contextmanager
def group():
    """braid.group_start() on entry, braid.group_end() on exit (also when the body raised)."""
    group_start()
    try:
        yield
    finally:
        group_end()


__all__ = ["BraidError", "Comm", "DataType", "Op", "Request", "Result", "get_unique_id",
           "group", "group_end", "group_start", "version", "SUM", "PROD", "MAX", "MIN", "AVG"]
