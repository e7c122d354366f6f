"""CPU time of a command and of every process it starts, grouped by kind.

    .venv/bin/python scripts/cpu_by_process.py .venv/bin/workbook grade CLASS --out OUT --jobs 2 --no-progress

Reads every descendant's user + system CPU with psutil every 20 ms (a process that lives less
than that is missed) and prints, per kind of process (its command line and its parent's), the
number of processes, their CPU in total and per process and when the first of them was seen
(seconds after the start: the first kernel of a grading run shows when the students begin),
then the total and the wall time.
Used for the "where the CPU goes" table in docs/results/grading-benchmark.md.
"""
from __future__ import annotations

import collections
import subprocess
import sys
import time

import psutil


def main(cmd: list[str]) -> None:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    seen: dict[int, dict] = {}
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in procs:
            try:
                with p.oneshot():
                    times = p.cpu_times()
                    info = seen.setdefault(p.pid, {"ppid": p.ppid(),
                                                   "cmd": " ".join(p.cmdline())[:100],
                                                   "seen": time.perf_counter() - start})
                    info["cpu"] = times.user + times.system
            except psutil.Error:
                pass
        time.sleep(0.02)
    wall = time.perf_counter() - start
    kinds: dict[str, list] = collections.defaultdict(lambda: [0, 0.0, wall])
    for info in seen.values():
        parent = seen.get(info["ppid"], {}).get("cmd", "?")
        kind = kinds[f"{info['cmd'][:60]}  <-  {parent[:50]}"]
        kind[0] += 1
        kind[1] += info.get("cpu", 0.0)
        kind[2] = min(kind[2], info["seen"])
    for name, (n, cpu, first) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(f"{cpu:8.1f} s  {n:4d} processes  {cpu / n:6.2f} s each  first at {first:5.1f} s"
              f"  {name}")
    print(f"total {sum(k[1] for k in kinds.values()):.1f} s of CPU, wall {wall:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
