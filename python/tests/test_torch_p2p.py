"""torch.distributed on a "braid" group against gloo's results for what Braid's C API added:
reduce (braidIreduce), all_to_all_single with uneven splits (braidIallToAllv), all_to_all with
tensors of different sizes, and send/recv/isend/irecv/batch_isend_irecv; plus the errors for
non-zero tags and receives from any source. Inputs are small integers: results are exact."""
import datetime
import os
import sys

import torch
import torch.distributed as dist

import braid.torch  # noqa: F401  registers "braid"
from expect import expect

rank, nranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
NEXT, PREV = (rank + 1) % nranks, (rank - 1) % nranks


def data(r, n, dtype, salt=0):
    return ((torch.arange(n, dtype=torch.int64) * 7 + r * 13 + salt) % 3 + 1).to(dtype)


def ident(r, n, dtype, salt=0):
    """Data that tells sender and message apart (31 r + 7 salt differ mod 127 for r < 3 and
    salt < 16); for moved, not reduced, data."""
    return ((torch.arange(n, dtype=torch.int64) + r * 31 + salt * 7) % 127).to(dtype)


def check(what, got, want):
    if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
        sys.exit(f"rank {rank}: {what}: got {got.flatten()[:8]} want {want.flatten()[:8]}")


def rows(src, dst, salt):
    """Rows rank src sends to rank dst: uneven, some zero; every rank computes every entry."""
    return (src * 5 + dst * 3 + salt) % 7 * 11 % 13


def main():
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    bg = dist.new_group(backend="braid", timeout=datetime.timedelta(seconds=120))
    gloo = dist.group.WORLD

    # reduce from every root, SUM and PRODUCT, against gloo (root) and unchanged input elsewhere.
    for n in (1, 1031, 70001):
        for root in range(nranks):
            for op in (dist.ReduceOp.SUM, dist.ReduceOp.PRODUCT):
                x, y = data(rank, n, torch.float32, root), data(rank, n, torch.float32, root)
                dist.reduce(x, dst=root, op=op, group=bg)
                dist.reduce(y, dst=root, op=op, group=gloo)
                check(f"reduce [{n}] root {root} {op}", x,
                      y if rank == root else data(rank, n, torch.float32, root))

    # all_to_all_single with uneven splits (rows of 3 columns; some splits zero), both given,
    # and only one side given (the other side equal).
    for salt in range(3):
        for dtype in (torch.float32, torch.int64, torch.uint8):
            in_splits = [rows(rank, j, salt) for j in range(nranks)]
            out_splits = [rows(j, rank, salt) for j in range(nranks)]
            a = ident(rank, 3 * sum(in_splits), dtype, salt).view(-1, 3)
            b_out = torch.full((sum(out_splits), 3), 99, dtype=dtype)
            g_out = torch.full((sum(out_splits), 3), 98, dtype=dtype)
            dist.all_to_all_single(b_out, a, out_splits, in_splits, group=bg)
            dist.all_to_all_single(g_out, a, out_splits, in_splits, group=gloo)
            check(f"uneven all_to_all_single {dtype} salt {salt}", b_out, g_out)
    equal_in = ident(rank, 4 * nranks, torch.float64).view(-1, 2)  # 2 rows for each rank
    out_splits = [2] * nranks
    b_out, g_out = torch.empty_like(equal_in), torch.empty_like(equal_in)
    dist.all_to_all_single(b_out, equal_in, out_splits, None, group=bg)
    dist.all_to_all_single(g_out, equal_in, out_splits, None, group=gloo)
    check("all_to_all_single output splits only", b_out, g_out)

    # all_to_all with tensors of different sizes (gloo 1.13 has no list form: compared with
    # gloo's all_to_all_single over the same blocks concatenated).
    sizes = [[(i * 3 + j * 5) % 4 + (i == j) for j in range(nranks)] for i in range(nranks)]
    ins = [ident(rank, sizes[rank][j], torch.int32, 10 + j) for j in range(nranks)]
    outs = [torch.empty(sizes[j][rank], dtype=torch.int32) for j in range(nranks)]
    dist.all_to_all(outs, ins, group=bg)
    g_out = torch.empty(sum(sizes[j][rank] for j in range(nranks)), dtype=torch.int32)
    dist.all_to_all_single(g_out, torch.cat(ins), [sizes[j][rank] for j in range(nranks)],
                           sizes[rank], group=gloo)
    check("all_to_all different sizes", torch.cat(outs), g_out)
    for j in range(nranks):
        check(f"all_to_all from {j}", outs[j], ident(j, sizes[j][rank], torch.int32, 10 + rank))

    # send/recv ring: isend to NEXT, irecv from PREV, waited recv first; on both backends.
    for n in (0, 1, 1031, 100003):
        results = {}
        for name, group in (("braid", bg), ("gloo", gloo)):
            got = torch.full((n,), -1.0)
            send_work = dist.isend(ident(rank, n, torch.float32, 7), NEXT, group=group)
            recv_work = dist.irecv(got, PREV, group=group)
            recv_work.wait()
            send_work.wait()
            results[name] = got
        check(f"isend/irecv ring [{n}] vs gloo", results["braid"], results["gloo"])
        check(f"isend/irecv ring [{n}]", results["braid"], ident(PREV, n, torch.float32, 7))
    # batch_isend_irecv: both directions of the ring, two messages each way, matched by order.
    got = [torch.empty(513, dtype=torch.int64) for _ in range(4)]
    ops = [dist.P2POp(dist.isend, ident(rank, 513, torch.int64, 1), NEXT, group=bg),
           dist.P2POp(dist.irecv, got[0], PREV, group=bg),
           dist.P2POp(dist.isend, ident(rank, 513, torch.int64, 2), PREV, group=bg),
           dist.P2POp(dist.irecv, got[1], NEXT, group=bg),
           dist.P2POp(dist.isend, ident(rank, 513, torch.int64, 3), NEXT, group=bg),
           dist.P2POp(dist.irecv, got[2], PREV, group=bg),
           dist.P2POp(dist.isend, ident(rank, 513, torch.int64, 4), PREV, group=bg),
           dist.P2POp(dist.irecv, got[3], NEXT, group=bg)]
    for work in dist.batch_isend_irecv(ops):
        work.wait()
    want = [ident(PREV, 513, torch.int64, 1), ident(NEXT, 513, torch.int64, 2),
            ident(PREV, 513, torch.int64, 3), ident(NEXT, 513, torch.int64, 4)]
    # (On 2 ranks PREV == NEXT: the four messages from the other rank arrive in its send order,
    # which this same list describes.)
    for i in range(4):
        check(f"batch_isend_irecv #{i}", got[i], want[i])
    # Blocking send/recv, rank 0 to each other rank and back, interleaved with a collective.
    for peer in range(1, nranks):
        if rank == 0:
            dist.send(ident(0, 77, torch.float64, peer), peer, group=bg)
            back = torch.empty(77, dtype=torch.float64)
            dist.recv(back, peer, group=bg)
            check(f"reply from {peer}", back, ident(0, 77, torch.float64, peer) * 2)
        elif rank == peer:
            got1 = torch.empty(77, dtype=torch.float64)
            dist.recv(got1, 0, group=bg)
            dist.send(got1 * 2, 0, group=bg)
        x = torch.ones(2)
        dist.all_reduce(x, group=bg)
        check("all_reduce between sends", x, torch.full((2,), float(nranks)))
    # A future on a receive (what DDP-style code chains on) completes with the tensor.
    fut_in = torch.empty(5)
    recv_work = dist.irecv(fut_in, PREV, group=bg)
    send_work = dist.isend(torch.full((5,), float(rank)), NEXT, group=bg)
    fut = recv_work.get_future()
    fut.wait()
    send_work.wait()
    check("future of irecv", fut.value()[0], torch.full((5,), float(PREV)))

    # Polling is_completed() alone must start deferred operations too.
    polled = torch.empty(9, dtype=torch.int64)
    recv_work = dist.irecv(polled, NEXT, group=bg)
    send_work = dist.isend(ident(rank, 9, torch.int64, 5), PREV, group=bg)
    while not recv_work.is_completed():
        pass
    send_work.wait()
    check("polled irecv", polled, ident(NEXT, 9, torch.int64, 5))

    expect(RuntimeError, "not by tag",
           lambda: dist.send(torch.zeros(1), NEXT, group=bg, tag=3))
    expect(RuntimeError, "any source", lambda: dist.recv(torch.zeros(1), group=bg))
    expect(RuntimeError, "out of range", lambda: bg.send([torch.zeros(1)], nranks, 0))
    expect(RuntimeError, "add up to", lambda: dist.all_to_all_single(
        torch.zeros(nranks + 1), torch.zeros(nranks), None, [2] * nranks, group=bg))
    x = torch.ones(3)
    dist.all_reduce(x, group=bg)
    check("all_reduce after errors", x, torch.full((3,), float(nranks)))
    dist.destroy_process_group(bg)
    dist.destroy_process_group()
    print(f"rank {rank}: torch reduce, all_to_all, send/recv ok")


main()
