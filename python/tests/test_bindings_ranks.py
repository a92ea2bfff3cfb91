"""Every collective of braid.Comm (blocking and nonblocking) on numpy arrays and other buffer
objects, checked exactly against a numpy reference computed from every rank's input. Run by
launch.py: the communicator comes from BRAID_TEST_UNIQUE_ID; a second one from the environment."""
import array
import os
import sys
import threading
import time

import numpy as np

import braid

rank, nranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
SIZES = [0, 1, 7, 1031, 65537, 300_007]  # empty, one, primes; small and ring-sized.
TYPES = [np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64, np.float16, np.float32,
         np.float64]


def data(r, n, dtype, salt=0):
    """Rank r's input: small integers, so every reduction is exact in every type."""
    values = (np.arange(n, dtype=np.int64) * 7 + r * 13 + salt) % 5 + 1
    return values.astype(dtype)


def reference(op, n, dtype):
    stacked = np.stack([data(r, n, dtype).astype(np.float64) for r in range(nranks)])
    result = {braid.SUM: stacked.sum(0), braid.PROD: stacked.prod(0), braid.MAX: stacked.max(0),
              braid.MIN: stacked.min(0)}[op]
    return result.astype(dtype)  # wraps like the typed arithmetic for 8-bit products.


def check(what, got, want):
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)[:5]
        sys.exit(f"rank {rank}: {what}: mismatch at {bad}: got {got[bad]}, want {want[bad]}")


def main():
    comm = braid.Comm(nranks, bytes.fromhex(os.environ["BRAID_TEST_UNIQUE_ID"]), rank)
    assert (comm.rank, comm.size) == (rank, nranks), (comm.rank, comm.size)
    assert comm.transport, "empty transport name"
    comm.set_timeout(120)

    for dtype in TYPES:
        for n in SIZES:
            for op in (braid.SUM, braid.PROD, braid.MAX, braid.MIN):
                if op == braid.PROD and n > 1031:
                    continue  # products of many ranks overflow small types identically; enough.
                x = data(rank, n, dtype)
                out = np.empty_like(x)
                assert comm.all_reduce(x, out, op=op) is out
                check(f"all_reduce {dtype.__name__}[{n}] {op}", out, reference(op, n, dtype))
                comm.all_reduce(x, op=op)  # in place
                check(f"in-place all_reduce {dtype.__name__}[{n}] {op}", x,
                      reference(op, n, dtype))

    for n in (0, 1, 1031, 65537):
        x = data(rank, n, np.float32)
        gathered = np.empty(n * nranks, np.float32)
        comm.all_gather(x, gathered)
        check(f"all_gather [{n}]",
              gathered, np.concatenate([data(r, n, np.float32) for r in range(nranks)]))

        send = data(rank, n * nranks, np.int32, salt=3)
        recv = np.empty(n, np.int32)
        comm.reduce_scatter(send, recv, op=braid.SUM)
        full = sum(data(r, n * nranks, np.int32, salt=3).astype(np.int64) for r in range(nranks))
        check(f"reduce_scatter [{n}]", recv, full[rank * n:(rank + 1) * n].astype(np.int32))

        for root in range(nranks):
            buf = data(rank, n, np.float64, salt=root)
            comm.broadcast(buf, root=root)
            check(f"broadcast [{n}] root {root}", buf, data(root, n, np.float64, salt=root))
    comm.barrier()

    # Nonblocking forms: several in flight, completed in any order of waiting.
    xs = [data(rank, 4099, np.float32, salt=i) for i in range(4)]
    reqs = [comm.iall_reduce(x, op=braid.MAX) for x in xs]
    gathered = np.empty(5 * nranks, np.int64)
    reqs.append(comm.iall_gather(np.full(5, rank, np.int64), gathered))
    bcast = np.full(3, rank, np.uint8)
    reqs.append(comm.ibroadcast(bcast, root=nranks - 1))
    rs_out = np.empty(2, np.float64)
    reqs.append(comm.ireduce_scatter(np.ones(2 * nranks), rs_out))
    reqs.append(comm.ibarrier())
    for req in reversed(reqs):
        req.wait()
    while not reqs[0].test():
        pass
    for i, x in enumerate(xs):
        want = np.max([data(r, 4099, np.float32, salt=i) for r in range(nranks)], axis=0)
        check(f"iall_reduce #{i}", x, want)
    check("iall_gather", gathered, np.repeat(np.arange(nranks, dtype=np.int64), 5))
    check("ibroadcast", bcast, np.full(3, nranks - 1, np.uint8))
    check("ireduce_scatter", rs_out, np.full(2, float(nranks)))

    # Other buffer-protocol objects, zero-copy: bytearray (uint8), array.array, memoryview.
    raw = bytearray([rank + 1] * 9)
    comm.all_reduce(raw, op=braid.MAX)
    assert raw == bytearray([nranks] * 9), raw
    arr = array.array("d", [rank] * 5)
    comm.all_reduce(memoryview(arr))
    assert list(arr) == [sum(range(nranks))] * 5, arr
    # A contiguous slice of a larger array is written in place.
    big = np.zeros(20, np.int32)
    comm.all_reduce(np.full(10, 1, np.int32), big[5:15])
    check("slice", big, np.array([0] * 5 + [nranks] * 10 + [0] * 5, np.int32))
    # bfloat16 via dtype= over 2-byte data (1.0 is 0x3f80 in bfloat16).
    bf = np.full(6, 0x3F80, np.uint16)
    comm.all_reduce(bf, dtype=braid.bfloat16)
    want_bits = np.array([nranks], np.float32).view(np.uint32)[0] >> 16
    check("bfloat16", bf, np.full(6, want_bits, np.uint16))

    # The launcher-environment path: BRAID_RANK/BRAID_WORLD_SIZE/BRAID_ROOT over a root that rank
    # 0 hosts on MASTER_PORT (free: the launcher only reserved it for torch's store).
    os.environ.update(BRAID_RANK=str(rank), BRAID_WORLD_SIZE=str(nranks),
                      BRAID_ROOT=f"127.0.0.1:{os.environ['MASTER_PORT']}")
    with braid.Comm.from_env() as env_comm:
        y = np.full(3, rank + 1, np.float32)
        env_comm.all_reduce(y)
        check("from_env all_reduce", y, np.full(3, nranks * (nranks + 1) / 2, np.float32))
        # abort() from another thread ends a blocked collective that the other ranks never join
        # (they wait in a barrier of the first communicator meanwhile); the blocked call must
        # have released the GIL for the main thread to get to abort().
        if rank == 0:
            errors = []

            def blocked():
                try:
                    env_comm.all_reduce(np.ones(3, np.float32))
                except braid.BraidError as e:
                    errors.append(e)
            thread = threading.Thread(target=blocked)
            thread.start()
            time.sleep(0.2)
            env_comm.abort()
            thread.join()
            # ABORTED if the collective was running, INVALID_USAGE if abort came first.
            assert errors and errors[0].code in (int(braid.Result.ABORTED),
                                                 int(braid.Result.INVALID_USAGE)), errors
        comm.barrier()

    comm.destroy()
    try:
        comm.barrier()
        sys.exit(f"rank {rank}: barrier on a destroyed communicator did not raise")
    except braid.BraidError as e:
        assert e.code == int(braid.Result.INVALID_USAGE), e.code
    print(f"rank {rank}: bindings ok")


main()
