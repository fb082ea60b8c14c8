"""A bounded soak through the balancer of ``scripts/cluster.sh``: locust, headless, for a
fixed time at a rate this machine sustains, with the server processes' memory sampled.

    .venv/bin/python -m benchmarks.soak --minutes 10 --users 20

Prints per route: requests, failures, p50 and p99; and the memory of the server processes
(with their workers) after warm-up and at the end. Brings the cluster up and down itself
unless one is up already.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def state(data: Path) -> dict[str, str]:
    path = data / "cluster" / "cluster.env"
    if not path.exists():
        return {}
    return dict(
        line.strip().replace("'", "").split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line
    )


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,rss="], capture_output=True, text=True).stdout
    rows = [tuple(int(v) for v in line.split()) for line in out.splitlines() if line.strip()]
    children: dict[int, list[int]] = {}
    rss = {}
    for p, parent, kb in rows:
        children.setdefault(parent, []).append(p)
        rss[p] = kb
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack += children.get(p, [])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--warmup-minutes", type=float, default=1.0)
    args = parser.parse_args()
    data = Path(os.environ.get("GEOSERVICE_DATA_DIR", ROOT / ".data")).resolve()
    started_here = not state(data)
    if started_here:
        subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "up", "2"], check=True)
    up = state(data)
    key = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "geoservice",
                "keys",
                "create",
                f"soak-{int(time.time())}",
                "--role",
                "planner",
                "--rate",
                "1e6",
                "--burst",
                "1000000",
                "--by",
                "soak",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    pids = [int(up[f"SERVER_{i}_PID"]) for i in range(1, int(up["SERVERS"]) + 1)]
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        begin = time.monotonic()
        while not stop.wait(10):
            samples.append((time.monotonic() - begin, sum(tree_rss_mb(p) for p in pids)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = data / "cluster" / "soak"
    seconds = int(args.minutes * 60)
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "locust"),
            "-f",
            str(ROOT / "benchmarks" / "locustfile.py"),
            "--headless",
            "-u",
            str(args.users),
            "-r",
            "5",
            "-t",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{up['LB_PORT']}",
            "--csv",
            str(out),
            "--only-summary",
        ],
        env={**os.environ, "GEOSERVICE_KEY": key},
        check=False,
    )
    stop.set()
    if started_here:
        subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "down"], check=True)
    print(
        f"\nsoak: {args.minutes:g} min, {args.users} users, through HAProxy to 2 servers "
        "(1 worker each) on a primary + hot standby"
    )
    print(f"  {'route':<28} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8}")
    with open(f"{out}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            print(
                f"  {row['Name']:<28} {row['Request Count']:>9} {row['Failure Count']:>7} "
                f"{row['50%']:>8} {row['99%']:>8}"
            )
    warm = [mb for t, mb in samples if t >= args.warmup_minutes * 60]
    if warm:
        growth = (warm[-1] - warm[0]) / warm[0]
        print(
            f"  memory of the server processes and workers: {warm[0]:,.0f} MB after warm-up, "
            f"{warm[-1]:,.0f} MB at the end ({growth:+.1%}; max {max(warm):,.0f} MB)"
        )


if __name__ == "__main__":
    main()
