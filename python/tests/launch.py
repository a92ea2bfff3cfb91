#!/usr/bin/python3
"""launch.py NRANKS SCRIPT [ARGS...]: runs SCRIPT as NRANKS processes on this host with
torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT on a free port) and
BRAID_TEST_UNIQUE_ID, the hex of a Braid unique id whose rendezvous root this launcher hosts.
Fails if any rank fails or the deadline (BRAID_TEST_DEADLINE seconds, 480) passes."""
import os
import socket
import subprocess
import sys
import time

import braid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    nranks, script, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    deadline = time.monotonic() + float(os.environ.get("BRAID_TEST_DEADLINE", "480"))
    unique_id = braid.get_unique_id().hex()
    port = free_port()
    procs = []
    for rank in range(nranks):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nranks),
                   LOCAL_WORLD_SIZE=str(nranks), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), BRAID_TEST_UNIQUE_ID=unique_id)
        procs.append(subprocess.Popen([sys.executable, script] + args, env=env))
    failed = []
    while any(p.poll() is None for p in procs) and not failed:
        failed = [(r, p.returncode) for r, p in enumerate(procs) if p.returncode not in (None, 0)]
        if time.monotonic() > deadline:
            failed = [(r, "deadline") for r, p in enumerate(procs) if p.returncode is None]
        time.sleep(0.05)
    for proc in procs:  # after a failure the others would wait for the failed rank: stop them.
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    failed = failed or [(r, p.returncode) for r, p in enumerate(procs) if p.returncode != 0]
    if failed:
        print(f"launch.py: {script} failed on rank(s) {failed}", file=sys.stderr)
        sys.exit(1)
    print(f"launch.py: {script} passed on {nranks} ranks")


if __name__ == "__main__":
    main()
