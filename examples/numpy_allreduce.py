#!/usr/bin/python3
"""Braid from Python on numpy arrays. Launch 2 ranks on this host:

    build/perf/braidrun -n 2 /usr/bin/python3 examples/numpy_allreduce.py   # BRAID_* variables
    torchrun --nproc_per_node=2 examples/numpy_allreduce.py                 # or torchrun's

(with PYTHONPATH=build/python for a build tree, nothing for an installed package)."""
import numpy as np

import braid

with braid.Comm.from_env() as comm:
    grads = np.full(1 << 20, comm.rank + 1.0, dtype=np.float32)
    comm.all_reduce(grads, op=braid.SUM)               # in place, zero-copy, GIL released
    expected = comm.size * (comm.size + 1) / 2
    assert np.all(grads == expected), grads[:4]

    pending = comm.iall_reduce(np.arange(4.0), np.empty(4), op=braid.MAX)  # nonblocking
    gathered = np.empty(comm.size, np.int64)
    comm.all_gather(np.array([comm.rank]), gathered)
    print(f"rank {comm.rank}/{comm.size} on {comm.transport}: sum {grads[0]}, "
          f"max {pending.wait()}, ranks {gathered}")
