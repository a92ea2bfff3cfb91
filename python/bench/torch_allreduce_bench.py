#!/usr/bin/python3
"""torch.distributed all_reduce sweep with the "braid" and "gloo" backends in one run.

    PYTHONPATH=build/python /usr/bin/python3 python/bench/torch_allreduce_bench.py [--ranks 2]

Starts --ranks processes on this host (torchrun's variables). Every rank holds a gloo default
group and a braid group; for each size the two backends alternate, --runs times each, every run
timing --iters (scaled down for large sizes) blocking float32 SUM all_reduces after a warm-up.
A run's time is the slowest rank's mean per operation; the table shows each backend's median
run, bus bandwidth (2(n-1)/n * bytes / time) and gloo/braid (how many times faster braid is),
plus the same all_reduce through braid.Comm directly (no torch) to separate the two costs."""
import argparse
import datetime
import os
import socket
import statistics
import subprocess
import sys
import time

import braid

SIZES = [8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20]


def one_run(dist, group, tensor, iters, gloo):
    """group a braid.Comm: Braid's own Python binding (blocking, on the tensor's memory) for reference."""
    dist.barrier(group=gloo)
    start = time.perf_counter()
    if isinstance(group, braid.Comm):
        array = tensor.numpy()
        for _ in range(iters):
            group.all_reduce(array)
    else:
        for _ in range(iters):
            dist.all_reduce(tensor, group=group)
    elapsed = (time.perf_counter() - start) / iters
    import torch
    slowest = torch.tensor([elapsed], dtype=torch.float64)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX, group=gloo)
    return slowest.item()


def worker(args):
    import torch
    import torch.distributed as dist
    import braid.torch  # noqa: F401
    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=300)
    dist.init_process_group("gloo", timeout=timeout)
    gloo = dist.group.WORLD
    braid_group = dist.new_group(backend="braid", timeout=timeout)
    rank, n = dist.get_rank(), dist.get_world_size()
    uid = [braid.get_unique_id() if rank == 0 else None]
    dist.broadcast_object_list(uid, src=0, group=gloo)
    direct = braid.Comm(n, uid[0], rank)
    if rank == 0:
        print(f"# torch.distributed all_reduce, float32 sum, {n} ranks on one host, median of "
              f"{args.runs} runs; busbw = 2(n-1)/n * size / time; 'direct': the same all_reduce "
              f"through braid.Comm (blocking, no torch), for reference")
        print(f"{'size (B)':>10} {'gloo (us)':>11} {'braid (us)':>11} {'direct (us)':>11} "
              f"{'gloo GB/s':>10} {'braid GB/s':>10} {'gloo/braid':>10}")
    for size in args.sizes or SIZES:
        if size > args.max_bytes:
            break
        tensor = torch.ones(size // 4, dtype=torch.float32)
        iters = max(3, min(args.iters, (64 << 20) * 4 // (size * 8)))
        groups = {"gloo": gloo, "braid": braid_group, "direct": direct}
        times = {name: [] for name in groups}
        for group in groups.values():  # warm-up (connections, allocations)
            one_run(dist, group, tensor, max(1, iters // 4), gloo)
        for _ in range(args.runs):  # alternate, so load changes hit every backend alike
            for name, group in groups.items():
                times[name].append(one_run(dist, group, tensor, iters, gloo))
        if rank == 0:
            g, b, d = (statistics.median(times[name]) for name in groups)
            factor = 2 * (n - 1) / n * size / 1e9
            print(f"{size:>10} {g * 1e6:>11.1f} {b * 1e6:>11.1f} {d * 1e6:>11.1f} "
                  f"{factor / g:>10.3f} {factor / b:>10.3f} {g / b:>9.1f}x", flush=True)
    direct.destroy()
    dist.destroy_process_group(braid_group)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iters", type=int, default=200, help="iterations per run at 8 B")
    parser.add_argument("--max-bytes", type=int, default=64 << 20)
    parser.add_argument("--sizes", type=int, nargs="*", help="byte sizes instead of the sweep")
    args = parser.parse_args()
    if "RANK" in os.environ:
        worker(args)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable] + sys.argv,
                              env=dict(os.environ, RANK=str(r), WORLD_SIZE=str(args.ranks),
                                       LOCAL_RANK=str(r), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port), OMP_NUM_THREADS="1"))
             for r in range(args.ranks)]
    sys.exit(max(p.wait() for p in procs))


if __name__ == "__main__":
    main()
