#!/usr/bin/env python3
"""Predicted AllReduce time versus message size on the simulated fabric (sim/), per algorithm,
for 16, 256 and 2048 ranks: writes a CSV, a Markdown table with the crossover points the
selector uses, and an SVG plot drawn here (no plotting library needed).

  perf/sim_sweep.py [--braid-sim build/sim/braid_sim] [--out docs/img/sim_allreduce]
                    [--ranks 16,256,2048] [--latency-us 15 --overhead-us 5 --bandwidth-gbytes 1.25]
"""
import argparse
import csv
import io
import math
import os
import subprocess
import sys

ALGOS = ["ring", "recursive_doubling", "rabenseifner", "tree"]
COLORS = {"ring": "#1f77b4", "recursive_doubling": "#ff7f0e", "rabenseifner": "#2ca02c",
          "tree": "#d62728", "auto": "#000000"}


def human(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def run_sim(args, ranks):
    # 2048 ranks: the ring's 2(n-1) steps make 8M messages per size; sample sizes more sparsely.
    factor = "4" if ranks <= 256 else "16"
    cmd = [args.braid_sim, "--collective", "allreduce", "--ranks", str(ranks), "--min", "8",
           "--max", "256M", "--factor", factor, "--algo", "all",
           "--latency-us", str(args.latency_us), "--overhead-us", str(args.overhead_us),
           "--bandwidth-gbytes", str(args.bandwidth_gbytes)]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return list(csv.DictReader(io.StringIO(out)))


def crossovers(rows):
    """Sizes where the selector's choice and the simulated best algorithm change."""
    by_size = {}
    for r in rows:
        by_size.setdefault(int(r["bytes"]), {})[r["algorithm"]] = r
    chosen, best = [], []
    for size in sorted(by_size):
        entry = by_size[size]
        pick = next(iter(entry.values()))["selector_choice"]
        fastest = min(ALGOS, key=lambda a: float(entry[a]["simulated_us"]))
        if not chosen or chosen[-1][1] != pick:
            chosen.append((size, pick))
        if not best or best[-1][1] != fastest:
            best.append((size, fastest))
    return by_size, chosen, best


def table(all_rows, args):
    out = [f"Link model: latency {args.latency_us} us, per-message overhead {args.overhead_us} us, "
           f"bandwidth {args.bandwidth_gbytes} GB/s per rank (full duplex, non-blocking switch).", ""]
    for ranks, rows in all_rows:
        by_size, chosen, best = crossovers(rows)
        out.append(f"### {ranks} ranks: predicted AllReduce time (us)")
        out.append("")
        out.append("| size | " + " | ".join(ALGOS) + " | selector (auto) | auto / best |")
        out.append("|---:|" + "---:|" * len(ALGOS) + "---|---:|")
        for size in sorted(by_size):
            entry = by_size[size]
            times = [float(entry[a]["simulated_us"]) for a in ALGOS]
            auto = float(entry["auto"]["simulated_us"])
            cells = [f"**{t:.1f}**" if t == min(times) else f"{t:.1f}" for t in times]
            out.append(f"| {human(size)} | " + " | ".join(cells) +
                       f" | {entry['auto']['selector_choice']} | {auto / min(times):.2f} |")
        out.append("")
        out.append("Selector switches: " + ", ".join(f"{a} from {human(s)}" for s, a in chosen) +
                   ". Simulated best: " + ", ".join(f"{a} from {human(s)}" for s, a in best) + ".")
        out.append("")
    return "\n".join(out)


def svg(all_rows):
    panel_w, panel_h, margin = 360, 300, 55
    width = margin + len(all_rows) * (panel_w + margin)
    height = panel_h + 2 * margin + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, (ranks, rows) in enumerate(all_rows):
        x0, y0 = margin + index * (panel_w + margin), margin
        sizes = sorted({int(r["bytes"]) for r in rows})
        times = [float(r["simulated_us"]) for r in rows]
        lx0, lx1 = math.log10(sizes[0]), math.log10(sizes[-1])
        ly0, ly1 = math.floor(math.log10(min(times))), math.ceil(math.log10(max(times)))
        px = lambda s: x0 + (math.log10(s) - lx0) / (lx1 - lx0) * panel_w
        py = lambda t: y0 + panel_h - (math.log10(t) - ly0) / (ly1 - ly0) * panel_h
        parts.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" '
                     f'fill="none" stroke="#888"/>')
        parts.append(f'<text x="{x0 + panel_w / 2}" y="{y0 - 10}" text-anchor="middle" '
                     f'font-size="13">{ranks} ranks</text>')
        for decade in range(ly0, ly1 + 1):
            y = py(10 ** decade)
            parts.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + panel_w}" y2="{y}" stroke="#eee"/>')
            parts.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end">1e{decade}</text>')
        for s in sizes[:: max(1, len(sizes) // 5)]:
            parts.append(f'<text x="{px(s)}" y="{y0 + panel_h + 15}" text-anchor="middle">'
                         f'{human(s).replace(" ", "")}</text>')
        parts.append(f'<text x="{x0 + panel_w / 2}" y="{y0 + panel_h + 32}" text-anchor="middle">'
                     f'message size</text>')
        if index == 0:
            parts.append(f'<text x="14" y="{y0 + panel_h / 2}" transform="rotate(-90 14 '
                         f'{y0 + panel_h / 2})" text-anchor="middle">predicted time (us)</text>')
        for algo in ALGOS + ["auto"]:
            pts = sorted((int(r["bytes"]), float(r["simulated_us"])) for r in rows
                         if r["algorithm"] == algo)
            path = " ".join(f"{px(s):.1f},{py(t):.1f}" for s, t in pts)
            dash = ' stroke-dasharray="4,3"' if algo == "auto" else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[algo]}" '
                         f'stroke-width="{1.5 if algo != "auto" else 2}"{dash}/>')
    legend_y = height - 12
    for i, algo in enumerate(ALGOS + ["auto"]):
        x = margin + i * 150
        parts.append(f'<line x1="{x}" y1="{legend_y - 4}" x2="{x + 20}" y2="{legend_y - 4}" '
                     f'stroke="{COLORS[algo]}" stroke-width="2"/>')
        parts.append(f'<text x="{x + 25}" y="{legend_y}">{algo if algo != "auto" else "selector (auto)"}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--braid-sim", default=os.path.join(root, "build", "sim", "braid_sim"))
    parser.add_argument("--out", default=os.path.join(root, "docs", "img", "sim_allreduce"))
    parser.add_argument("--ranks", default="16,256,2048")
    parser.add_argument("--latency-us", type=float, default=15)
    parser.add_argument("--overhead-us", type=float, default=5)
    parser.add_argument("--bandwidth-gbytes", type=float, default=1.25)
    args = parser.parse_args()
    all_rows = [(int(n), run_sim(args, int(n))) for n in args.ranks.split(",")]
    with open(args.out + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(all_rows[0][1][0].keys()))
        writer.writeheader()
        for _, rows in all_rows:
            writer.writerows(rows)
    with open(args.out + ".md", "w") as f:
        f.write(table(all_rows, args) + "\n")
    with open(args.out + ".svg", "w") as f:
        f.write(svg(all_rows) + "\n")
    print(f"wrote {args.out}.csv, .md and .svg", file=sys.stderr)


if __name__ == "__main__":
    main()
