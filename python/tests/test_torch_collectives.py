"""Each torch.distributed collective on a "braid" group gives exactly gloo's result (inputs are
small integers, so every reduction order gives the same bits), plus the cases gloo lacks (AVG,
float16/bfloat16) against a reference every rank computes from every rank's input. Also: async
Work objects and futures, and clear errors for what the backend does not support."""
import datetime
import os
import sys

import torch
import torch.distributed as dist

import braid.torch  # noqa: F401  registers "braid"
from expect import expect

rank, nranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
SIZES = [0, 1, 1031, 70001]
DTYPES = [torch.float32, torch.float64, torch.int32, torch.int64, torch.int8, torch.uint8]
OPS = {dist.ReduceOp.SUM: lambda s: s.sum(0), dist.ReduceOp.PRODUCT: lambda s: s.prod(0),
       dist.ReduceOp.MIN: lambda s: s.min(0).values, dist.ReduceOp.MAX: lambda s: s.max(0).values}


def data(r, n, dtype, salt=0):
    return ((torch.arange(n, dtype=torch.int64) * 7 + r * 13 + salt) % 3 + 1).to(dtype)


def check(what, got, want):
    if got.dtype != want.dtype or not torch.equal(got, want):
        sys.exit(f"rank {rank}: {what}: got {got[:8]} want {want[:8]}")


def main():
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    bg = dist.new_group(backend="braid", timeout=datetime.timedelta(seconds=120))
    assert dist.get_backend(bg) == "braid", dist.get_backend(bg)
    gloo = dist.group.WORLD

    for dtype in DTYPES:
        for n in SIZES:
            for op, reduce in OPS.items():
                if op == dist.ReduceOp.PRODUCT and n > 1031:
                    continue
                x, y = data(rank, n, dtype), data(rank, n, dtype)
                dist.all_reduce(x, op=op, group=bg)
                dist.all_reduce(y, op=op, group=gloo)
                check(f"all_reduce {dtype} [{n}] {op}", x, y)
                stacked = torch.stack([data(r, n, dtype).to(torch.float64) for r in range(nranks)])
                check(f"all_reduce {dtype} [{n}] {op} vs reference", x, reduce(stacked).to(dtype))
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        x = data(rank, 1031, dtype)
        dist.all_reduce(x, op=dist.ReduceOp.AVG, group=bg)
        want = sum(data(r, 1031, torch.float64) for r in range(nranks)) / nranks
        check(f"all_reduce AVG {dtype}", x, want.to(dtype))

    for n in SIZES:
        for dtype in (torch.float32, torch.int64):
            # broadcast and reduce from every root
            for root in range(nranks):
                x, y = data(rank, n, dtype, root), data(rank, n, dtype, root)
                dist.broadcast(x, src=root, group=bg)
                dist.broadcast(y, src=root, group=gloo)
                check(f"broadcast [{n}] root {root}", x, y)
                x, y = data(rank, n, dtype, root), data(rank, n, dtype, root)
                dist.reduce(x, dst=root, op=dist.ReduceOp.MAX, group=bg)
                dist.reduce(y, dst=root, op=dist.ReduceOp.MAX, group=gloo)
                if rank == root:
                    check(f"reduce [{n}] root {root}", x, y)
                else:  # Braid leaves non-root tensors unchanged.
                    check(f"reduce [{n}] root {root} non-root", x, data(rank, n, dtype, root))
            # all_gather (list) and _all_gather_base; inputs 2-D to exercise reshaping
            x = data(rank, 2 * n, dtype).view(2, n)
            outs_b = [torch.empty(2, n, dtype=dtype) for _ in range(nranks)]
            dist.all_gather(outs_b, x, group=bg)
            for i in range(nranks):
                check(f"all_gather [{n}] block {i}", outs_b[i], data(i, 2 * n, dtype).view(2, n))
            if n > 0:  # gloo 1.13 dies of SIGFPE on empty all_gathers.
                outs_g = [torch.empty(2, n, dtype=dtype) for _ in range(nranks)]
                dist.all_gather(outs_g, x, group=gloo)
                for i in range(nranks):
                    check(f"all_gather [{n}] block {i} vs gloo", outs_b[i], outs_g[i])
            flat = torch.empty(nranks * 2 * n, dtype=dtype)
            dist.all_gather_into_tensor(flat, x.view(-1), group=bg)
            check(f"all_gather_into_tensor [{n}]", flat, torch.cat([o.view(-1) for o in outs_b]))
            # reduce_scatter (list) and _reduce_scatter_base (gloo 1.13 has neither: reference)
            ins = [data(rank, n, dtype, salt=i) for i in range(nranks)]
            out = torch.empty(n, dtype=dtype)
            dist.reduce_scatter(out, ins, group=bg)
            want = sum(data(r, n, torch.int64, salt=rank) for r in range(nranks)).to(dtype)
            check(f"reduce_scatter [{n}]", out, want)
            out2 = torch.empty(n, dtype=dtype)
            dist.reduce_scatter_tensor(out2, torch.cat(ins), group=bg)
            check(f"reduce_scatter_tensor [{n}]", out2, want)
            # all_to_all_single (equal splits) and all_to_all (equal sizes); uneven splits and
            # sizes: test_torch_p2p.py
            a = data(rank, nranks * n, dtype, salt=5)
            b_out = torch.empty_like(a)
            dist.all_to_all_single(b_out, a, group=bg)
            want = torch.cat([data(j, nranks * n, dtype, salt=5)[rank * n:(rank + 1) * n]
                              for j in range(nranks)])
            check(f"all_to_all_single [{n}]", b_out, want)
            if n > 0:
                g_out = torch.empty_like(a)
                dist.all_to_all_single(g_out, a, group=gloo)
                check(f"all_to_all_single [{n}] vs gloo", b_out, g_out)
            ins = [data(rank, n, dtype, salt=10 + j) for j in range(nranks)]
            b_outs = [torch.empty(n, dtype=dtype) for _ in range(nranks)]
            dist.all_to_all(b_outs, ins, group=bg)
            for j in range(nranks):
                check(f"all_to_all [{n}] from {j}", b_outs[j], data(j, n, dtype, salt=10 + rank))
    dist.barrier(group=bg)

    # Asynchronous work: several in flight; futures (what DDP uses); is_completed; wait timeout.
    xs = [data(rank, 5000, torch.float32, salt=i) for i in range(4)]
    works = [dist.all_reduce(x, group=bg, async_op=True) for x in xs]
    futs = [w.get_future() for w in works[:2]]
    works[3].wait(datetime.timedelta(seconds=60))
    works[2].wait()
    for f in futs:
        f.wait()
    for w in works:
        assert w.is_completed()
    for i, x in enumerate(xs):
        check(f"async all_reduce #{i}", x, sum(data(r, 5000, torch.float32, salt=i)
                                               for r in range(nranks)))
    assert torch.equal(futs[0].value()[0], xs[0])

    # What the backend cannot do raises, naming the reason, without breaking the group.
    expect(RuntimeError, "dtype Bool",
           lambda: dist.all_reduce(torch.zeros(3, dtype=torch.bool), group=bg))
    expect(RuntimeError, "not contiguous",
           lambda: dist.all_reduce(torch.zeros(4, 4)[:, 0], group=bg))
    expect(RuntimeError, "reduce op",
           lambda: dist.all_reduce(torch.zeros(3, dtype=torch.int32), op=dist.ReduceOp.BAND,
                                   group=bg))
    expect(RuntimeError, "not by tag",
           lambda: dist.send(torch.zeros(1), dst=(rank + 1) % nranks, group=bg, tag=1))
    expect(RuntimeError, "split evenly", lambda: dist.all_to_all_single(
        torch.zeros(nranks + 1), torch.zeros(nranks + 1), group=bg))
    x = torch.ones(3)
    dist.all_reduce(x, group=bg)
    check("all_reduce after errors", x, torch.full((3,), float(nranks)))
    # The group's timeout is Braid's: an all_reduce the other ranks never join fails on rank 0
    # with Braid's timeout error (the others wait in a gloo barrier meanwhile).
    short = dist.new_group(backend="braid", timeout=datetime.timedelta(seconds=2))
    if rank == 0:
        expect(RuntimeError, "timeout", lambda: dist.all_reduce(torch.ones(4), group=short))
    dist.barrier(group=gloo)
    dist.destroy_process_group(short)
    dist.destroy_process_group(bg)
    dist.destroy_process_group()
    print(f"rank {rank}: torch collectives ok")


main()
