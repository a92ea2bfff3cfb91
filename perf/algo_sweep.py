#!/usr/bin/env python3
"""Runs allreduce_perf once per forced AllReduce algorithm (BRAID_ALGO=allreduce:<name>) and once
with the selector, under any launcher, and reports per size the best fixed algorithm, the
selector's time and their ratio (the issue-6 criterion: auto within 10% of the best fixed).
Also prints the simulator's prediction for the same rank count when --braid-sim is given, so
predicted and measured can be compared (criterion: within 20%).

  perf/algo_sweep.py --launcher "build/perf/braidrun -n 4" [--tool build/perf/allreduce_perf]
                     [--args "-b 8 -e 256M -f 4 -n 20 -w 5 -z 1 -a 3"] [--reps 3]
                     [--braid-sim build/sim/braid_sim --ranks 4 --latency-us .. ]
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys

ALGOS = ["ring", "recursive_doubling", "rabenseifner", "tree"]


def run(launcher, tool, args, algo):
    env = dict(os.environ)
    if algo != "auto":
        env["BRAID_ALGO"] = f"allreduce:{algo}"
    else:
        env.pop("BRAID_ALGO", None)
    cmd = shlex.split(launcher) + [tool] + shlex.split(args)
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        fields = line.split()
        if not fields or line.lstrip().startswith("#") or not fields[0].isdigit():
            continue
        times[int(fields[0])] = float(fields[5])  # out-of-place time (us), nccl-tests column 6.
    if not times:
        sys.exit(f"no result rows from: {' '.join(cmd)}\n{out}")
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--launcher", required=True)
    p.add_argument("--tool", default=os.path.join(root, "build", "perf", "allreduce_perf"))
    p.add_argument("--args", default="-b 8 -e 256M -f 4 -n 20 -w 5 -z 1 -a 3")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--braid-sim")
    p.add_argument("--ranks", type=int)
    p.add_argument("--latency-us", type=float, default=15)
    p.add_argument("--overhead-us", type=float, default=5)
    p.add_argument("--bandwidth-gbytes", type=float, default=1.25)
    a = p.parse_args()
    medians = {}
    for algo in ALGOS + ["auto"]:
        runs = [run(a.launcher, a.tool, a.args, algo) for _ in range(a.reps)]
        medians[algo] = {s: statistics.median(r[s] for r in runs) for s in runs[0]}
    predicted = {}
    if a.braid_sim and a.ranks:
        sizes = sorted(medians["auto"])
        out = subprocess.run([a.braid_sim, "--ranks", str(a.ranks), "--min", str(sizes[0]),
                              "--max", str(sizes[-1]), "--factor", str(sizes[1] // sizes[0]),
                              "--algo", "auto", "--latency-us", str(a.latency_us),
                              "--overhead-us", str(a.overhead_us), "--bandwidth-gbytes",
                              str(a.bandwidth_gbytes)], check=True, capture_output=True,
                             text=True).stdout.splitlines()[1:]
        for line in out:
            f = line.split(",")
            predicted[int(f[2])] = float(f[4])
    print("| size (B) | " + " | ".join(ALGOS) + " | auto | best fixed | auto / best |"
          + (" simulated auto | sim / measured |" if predicted else ""))
    print("|---:|" + "---:|" * (len(ALGOS) + 1) + "---|---:|" + ("---:|---:|" if predicted else ""))
    worst = 0
    for size in sorted(medians["auto"]):
        fixed = {g: medians[g][size] for g in ALGOS}
        best = min(fixed, key=fixed.get)
        ratio = medians["auto"][size] / fixed[best]
        worst = max(worst, ratio)
        row = f"| {size} | " + " | ".join(f"{fixed[g]:.1f}" for g in ALGOS)
        row += f" | {medians['auto'][size]:.1f} | {best} | {ratio:.2f} |"
        if predicted:
            sim = predicted.get(size)
            row += f" {sim:.1f} | {sim / medians['auto'][size]:.2f} |" if sim else " | |"
        print(row)
    print(f"\nworst auto / best fixed: {worst:.2f} ({'OK' if worst <= 1.10 else 'over 10%'})")


if __name__ == "__main__":
    main()
