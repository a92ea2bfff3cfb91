"""Argument checking of the bindings in one process: unsupported dtypes, non-contiguous and
read-only buffers, size mismatches and Braid's own errors raise, naming what is wrong."""
import os

import numpy as np

import braid
from expect import expect

assert braid.version() >= 100, braid.version()
assert len(braid.get_unique_id()) == 128
expect(ValueError, "128 bytes", lambda: braid.Comm(1, b"short", 0))

# A one-rank communicator: collectives are local copies, argument checks are all real.
comm = braid.Comm(1, braid.get_unique_id(), 0)
assert (comm.rank, comm.size) == (0, 1)
x = np.arange(10, dtype=np.float32)
out = np.empty_like(x)
comm.all_reduce(x, out)
assert np.array_equal(out, x)
expect(TypeError, "format '?'", lambda: comm.all_reduce(np.zeros(4, bool)))
expect(TypeError, "format 'h'", lambda: comm.all_reduce(np.zeros(4, np.int16)))
expect(TypeError, "format 'Zf'", lambda: comm.all_reduce(np.zeros(4, np.complex64)))
expect(TypeError, "format", lambda: comm.all_reduce(np.zeros(4, ">f4")))  # big-endian
expect(ValueError, "not C-contiguous", lambda: comm.all_reduce(np.zeros((4, 4), np.float32)[:, 1]))
expect(ValueError, "not C-contiguous", lambda: comm.all_reduce(np.zeros((4, 4), np.float32).T))
expect(TypeError, "writable", lambda: comm.all_reduce(b"abcd"))
ro = np.zeros(4, np.float32)
ro.flags.writeable = False
expect(TypeError, "writable", lambda: comm.all_reduce(ro))
comm.all_reduce(ro, np.empty(4, np.float32))  # a read-only send buffer is fine.
expect(TypeError, "buffer protocol", lambda: comm.all_reduce([1.0, 2.0]))
expect(TypeError, "different element types",
       lambda: comm.all_reduce(np.zeros(4, np.float32), np.zeros(4, np.float64)))
expect(ValueError, "recvbuf has 3 elements",
       lambda: comm.all_reduce(np.zeros(4, np.float32), np.zeros(3, np.float32)))
expect(ValueError, "size() * len(sendbuf)",
       lambda: comm.all_gather(np.zeros(4, np.float32), np.zeros(3, np.float32)))
expect(ValueError, "whole number",
       lambda: comm.all_reduce(np.zeros(3, np.uint8), dtype=braid.float32))
# Braid's own validation comes back as BraidError carrying Braid's message and code.
e = expect(braid.BraidError, "root", lambda: comm.broadcast(np.zeros(4, np.float32), root=5))
assert e.code == int(braid.Result.INVALID_ARGUMENT), e.code
comm.abort()
e = expect(braid.BraidError, "destroyed or aborted", lambda: comm.barrier())
assert e.code == int(braid.Result.INVALID_USAGE)

# The environment path reports a bad launcher environment with Braid's remedy.
os.environ.update(BRAID_RANK="3", BRAID_WORLD_SIZE="2")
e = expect(braid.BraidError, "BRAID_RANK=3 is not below BRAID_WORLD_SIZE=2", braid.Comm.from_env)
assert e.code == int(braid.Result.INVALID_ARGUMENT), e.code
print("bindings_single ok")
