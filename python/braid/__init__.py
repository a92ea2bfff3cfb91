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
`import braid.torch` registers the "braid" backend of torch.distributed.
"""
from ._braid import (BraidError, Comm, DataType, Op, Request, Result, get_unique_id,
                     version)

SUM, PROD, MAX, MIN, AVG = Op.SUM, Op.PROD, Op.MAX, Op.MIN, Op.AVG
int8, uint8, int32, uint32 = DataType.int8, DataType.uint8, DataType.int32, DataType.uint32
int64, uint64 = DataType.int64, DataType.uint64
float16, float32, float64, bfloat16 = (DataType.float16, DataType.float32, DataType.float64,
                                       DataType.bfloat16)

__all__ = ["BraidError", "Comm", "DataType", "Op", "Request", "Result", "get_unique_id",
           "version", "SUM", "PROD", "MAX", "MIN", "AVG"]
