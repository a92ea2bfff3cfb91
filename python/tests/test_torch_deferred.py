"""The "braid" backend defers a collective until its wait() and then runs it on the waiting
thread; these check that deferring keeps c10d's semantics. An async_op=True collective nobody
waits for must still complete (a watchdog starts it), or a peer that waits for it would hang;
collectives, sends and receives keep their issue order whatever order they are waited in;
futures, then() callbacks that issue more collectives, and works dropped unwaited all work.
Inputs are small integers, so every result is exact."""
import datetime
import os
import sys
import time

import torch
import torch.distributed as dist

import braid.torch  # noqa: F401  registers "braid"

rank, nranks = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
NEXT, PREV = (rank + 1) % nranks, (rank - 1) % nranks


def data(r, n, salt=0):
    return ((torch.arange(n, dtype=torch.int64) * 7 + r * 13 + salt) % 3 + 1).to(torch.float32)


def summed(n, salt=0):
    return sum(data(r, n, salt) for r in range(nranks))


def check(what, got, want):
    if not torch.equal(got, want):
        sys.exit(f"rank {rank}: {what}: got {got[:8]} want {want[:8]}")


def main():
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    gloo = dist.group.WORLD
    # A short timeout: were the async collective below never started, the peers' blocking
    # all_reduce would fail with Braid's timeout instead of hanging the test.
    bg = dist.new_group(backend="braid", timeout=datetime.timedelta(seconds=30))

    # Rank 0 starts an async all_reduce and then blocks in a gloo barrier; the others run the
    # same all_reduce blocking before they reach the barrier. Only if rank 0's collective
    # progresses on its own (no wait() on rank 0 until after the barrier) can they get there.
    for n in (1, 4099, 1 << 20):
        x = data(rank, n, salt=n % 5)
        if rank == 0:
            start = time.monotonic()
            work = dist.all_reduce(x, group=bg, async_op=True)
            dist.barrier(group=gloo)
            elapsed = time.monotonic() - start
            work.wait()
            print(f"rank 0: unwaited all_reduce [{n}] let the peers pass in {elapsed:.3f} s")
        else:
            dist.all_reduce(x, group=bg)
            dist.barrier(group=gloo)
        check(f"all_reduce [{n}] completed without wait", x, summed(n, salt=n % 5))

    # Collectives and point-to-point in one issue order, waited in other orders (rank parity
    # decides which), so waiting must never run one ahead of what was issued before it.
    for n in (3, 70001):
        a, b = data(rank, n, 1), data(rank, n, 2)
        out, inc = data(rank, n, 3), torch.zeros(n)
        w1 = dist.all_reduce(a, group=bg, async_op=True)
        sends = dist.batch_isend_irecv([dist.P2POp(dist.isend, out, NEXT, group=bg),
                                        dist.P2POp(dist.irecv, inc, PREV, group=bg)])
        w2 = dist.all_reduce(b, group=bg, async_op=True)
        order = [w2] + sends + [w1] if rank % 2 else [w1] + sends + [w2]
        for w in order:
            w.wait()
        check(f"first all_reduce [{n}]", a, summed(n, 1))
        check(f"received [{n}]", inc, data(PREV, n, 3))
        check(f"second all_reduce [{n}]", b, summed(n, 2))

    # A future (what DDP uses) whose callback issues the next collective, on Braid's completer
    # thread; the main thread issues nothing until the chain is done.
    a, b = data(rank, 1031, 4), data(rank, 1031, 5)
    chained = dist.all_reduce(a, group=bg, async_op=True).get_future().then(
        lambda fut: dist.all_reduce(b, group=bg))
    chained.wait()
    check("future's all_reduce", a, summed(1031, 4))
    check("all_reduce issued by the callback", b, summed(1031, 5))

    # Works dropped without wait still run, in order, before what follows.
    dropped = [data(rank, 257, salt) for salt in range(6, 10)]
    for x in dropped:
        dist.all_reduce(x, group=bg, async_op=True)
    last = data(rank, 257, 10)
    dist.all_reduce(last, group=bg)
    for salt, x in zip(range(6, 10), dropped):
        check(f"dropped all_reduce #{salt}", x, summed(257, salt))
    check("all_reduce after dropped ones", last, summed(257, 10))

    # is_completed() polling alone (no wait) finishes a deferred collective; barrier too.
    x = data(rank, 5, 11)
    work = dist.all_reduce(x, group=bg, async_op=True)
    while not work.is_completed():
        time.sleep(0.001)
    check("all_reduce polled with is_completed", x, summed(5, 11))
    dist.barrier(group=bg)

    dist.destroy_process_group(bg)
    dist.destroy_process_group()
    print(f"rank {rank}: deferred collectives ok")


main()
