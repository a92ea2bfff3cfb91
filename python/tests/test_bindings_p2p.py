"""braid.Comm's reduce, all_to_all, all_to_allv, send/recv (blocking and nonblocking) and
groups, checked exactly against numpy references computed from every rank's input, plus the
argument checks. Run by launch.py on 2 and 3 ranks."""
import os
import sys

import numpy as np

import braid
from expect import expect

rank, nranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
SIZES = [0, 1, 7, 1031, 65537]  # empty, one, primes; small and multi-chunk.
TYPES = [np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64, np.float16, np.float32,
         np.float64]
NEXT, PREV = (rank + 1) % nranks, (rank - 1) % nranks


def data(r, n, dtype, salt=0):
    """Rank r's input: small integers, so every reduction is exact in every type."""
    return ((np.arange(n, dtype=np.int64) * 7 + r * 13 + salt) % 5 + 1).astype(dtype)


def check(what, got, want):
    if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)[:5] if got.shape == want.shape else "shape"
        sys.exit(f"rank {rank}: {what}: mismatch at {bad}: got {got[:8]}, want {want[:8]}")


def uneven_counts(src, dst, salt=0):
    """Elements rank src sends to rank dst: uneven, some zero, the same formula on both sides."""
    return (src * 5 + dst * 3 + salt) % 7 * 11 % 13


def test_reduce():
    ops = {braid.SUM: lambda s: s.sum(0), braid.PROD: lambda s: s.prod(0),
           braid.MAX: lambda s: s.max(0), braid.MIN: lambda s: s.min(0)}
    for dtype in TYPES:
        for n in SIZES:
            for op, fold in ops.items():
                if op == braid.PROD and n > 1031:
                    continue
                root = (n + int(op)) % nranks
                stacked = np.stack([data(r, n, dtype).astype(np.float64) for r in range(nranks)])
                want = fold(stacked).astype(dtype)
                x = data(rank, n, dtype)
                out = np.zeros_like(x)
                assert comm.reduce(x, out, op=op, root=root) is out
                check(f"reduce input {dtype.__name__}[{n}]", x, data(rank, n, dtype))
                check(f"reduce {dtype.__name__}[{n}] {op} root {root}", out,
                      want if rank == root else np.zeros_like(x))
                comm.reduce(x, op=op, root=root)  # in place at the root
                check(f"in-place reduce {dtype.__name__}[{n}] {op}", x,
                      want if rank == root else data(rank, n, dtype))
    # Non-root may pass a read-only buffer in place (it is only read there).
    ro = data(rank, 9, np.int32)
    ro.setflags(write=rank == 0)
    comm.reduce(ro, root=0)
    check("reduce read-only non-root", ro,
          sum(data(r, 9, np.int64) for r in range(nranks)).astype(np.int32) if rank == 0
          else data(rank, 9, np.int32))
    expect(ValueError, "recvbuf has",
           lambda: comm.reduce(np.ones(4), np.ones(5), root=0))
    expect(TypeError, "different element types",
           lambda: comm.reduce(np.ones(4), np.ones(4, np.float32), root=0))


def test_all_to_all():
    for dtype in (np.int8, np.float16, np.float32, np.uint64):
        for n in SIZES:
            send = data(rank, n * nranks, dtype, salt=3)
            recv = np.empty_like(send)
            want = np.concatenate([data(r, n * nranks, dtype, salt=3)[rank * n:(rank + 1) * n]
                                   for r in range(nranks)])
            assert comm.all_to_all(send, recv) is recv
            check(f"all_to_all {dtype.__name__}[{n}]", recv, want)
            comm.all_to_all(send)  # in place
            check(f"in-place all_to_all {dtype.__name__}[{n}]", send, want)
    expect(ValueError, "multiple of size()",
           lambda: comm.all_to_all(np.ones(nranks + 1), np.ones(nranks + 1)))
    expect(ValueError, "same length",
           lambda: comm.all_to_all(np.ones(nranks), np.ones(2 * nranks)))


def test_all_to_allv():
    for salt in range(3):
        for dtype in (np.uint8, np.int32, np.float64):
            sendcounts = [uneven_counts(rank, r, salt) for r in range(nranks)]
            recvcounts = [uneven_counts(r, rank, salt) for r in range(nranks)]
            send = data(rank, sum(sendcounts), dtype, salt)
            recv = np.full(sum(recvcounts), 99, dtype)
            comm.all_to_allv(send, sendcounts, recv, recvcounts)
            want = []
            for r in range(nranks):  # rank r's block for this rank, from r's packed send buffer
                counts = [uneven_counts(r, q, salt) for q in range(nranks)]
                begin = sum(counts[:rank])
                want.append(data(r, sum(counts), dtype, salt)[begin:begin + counts[rank]])
            want = np.concatenate(want)
            check(f"all_to_allv {dtype.__name__} salt {salt}", recv, want)
            # Explicit displacements: blocks reversed with gaps of 2 in recv.
            rdispls, at = [0] * nranks, 0
            for r in reversed(range(nranks)):
                rdispls[r], at = at, at + recvcounts[r] + 2
            recv2 = np.full(at, 77, dtype)
            req = comm.iall_to_allv(send, sendcounts, recv2, recvcounts, rdispls=rdispls)
            assert req.wait() is recv2
            want2 = np.full(at, 77, dtype)
            offset = 0
            for r in range(nranks):
                want2[rdispls[r]:rdispls[r] + recvcounts[r]] = want[offset:offset + recvcounts[r]]
                offset += recvcounts[r]
            check(f"iall_to_allv displaced {dtype.__name__} salt {salt}", recv2, want2)
    expect(ValueError, "size() = ",
           lambda: comm.all_to_allv(np.ones(4), [1], np.ones(4), [1]))
    expect(ValueError, "does not fit",
           lambda: comm.all_to_allv(np.ones(4), [5] * nranks, np.ones(99), [5] * nranks))


def test_send_recv():
    for dtype in (np.int8, np.float32, np.uint64):
        for n in SIZES:
            # Ring: everyone sends to NEXT and receives from PREV, grouped (a send may wait for
            # its receive). Two messages per pair, to check they match in order.
            first, second = np.empty(n, dtype), np.empty(n, dtype)
            with braid.group():
                comm.send(data(rank, n, dtype, 1), NEXT)  # temporary: the group keeps it alive
                comm.isend(data(rank, n, dtype, 2), NEXT)  # request dropped inside the group
                comm.recv(first, PREV)
                req = comm.irecv(second, PREV)
            assert req.wait() is second
            check(f"ring 1st {dtype.__name__}[{n}]", first, data(PREV, n, dtype, 1))
            check(f"ring 2nd {dtype.__name__}[{n}]", second, data(PREV, n, dtype, 2))
    # Blocking send/recv without a group: rank 0 sends to each other rank, which replies.
    for n in (1, 1031):
        if rank == 0:
            for peer in range(1, nranks):
                comm.send(data(0, n, np.int32, peer), peer)
                back = np.empty(n, np.int32)
                comm.recv(back, peer)
                check(f"reply from {peer} [{n}]", back, data(0, n, np.int32, peer) * 2)
        else:
            got = np.empty(n, np.int32)
            assert comm.recv(got, 0) is got
            check(f"from 0 [{n}]", got, data(0, n, np.int32, rank))
            comm.send(got * 2, 0)
    # Nonblocking, started in a nested group together with a collective, waited out of order.
    total = np.full(3, rank, np.float64)
    bf_out = np.empty(6, np.uint16)
    with braid.group():
        with braid.group():
            r_all = comm.iall_reduce(total)
        r_send = comm.isend(np.full(6, 0x3F80 + rank, np.uint16), NEXT, dtype=braid.bfloat16)
        r_recv = comm.irecv(bf_out, PREV, dtype=braid.bfloat16)
        expect(braid.BraidError, "inside braid.group()", r_recv.wait)
    r_recv.wait()
    r_send.wait()
    r_all.wait()
    check("grouped bfloat16 recv", bf_out, np.full(6, 0x3F80 + PREV, np.uint16))
    check("grouped all_reduce", total, np.full(3, float(sum(range(nranks)))))
    # Self send/recv pairs inside a group.
    mine = np.empty(5, np.int64)
    with braid.group():
        comm.isend(data(rank, 5, np.int64), rank)
        comm.recv(mine, rank)
    check("self send/recv", mine, data(rank, 5, np.int64))
    expect(TypeError, "writable", lambda: comm.recv(b"abc", PREV))
    expect(ValueError, "not C-contiguous", lambda: comm.send(np.ones((4, 4))[:, 0], NEXT))
    expect(braid.BraidError, "out of range", lambda: comm.send(np.ones(2), nranks))
    expect(braid.BraidError, "without a matching group_start", braid.group_end)


comm = braid.Comm(nranks, bytes.fromhex(os.environ["BRAID_TEST_UNIQUE_ID"]), rank)
comm.set_timeout(120)
test_reduce()
test_all_to_all()
test_all_to_allv()
test_send_recv()
comm.barrier()
comm.destroy()
print(f"rank {rank}: reduce, all_to_all(v), send/recv, groups ok")
