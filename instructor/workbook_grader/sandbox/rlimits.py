"""``python -m workbook_grader.sandbox.rlimits --memory B --cpu S --fsize B -- COMMAND``: the
fallback launcher for machines without Linux namespaces. It sets resource limits and becomes
the kernel; it isolates nothing (docs/GRADING.md).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str] | None = None) -> int:
    """The fallback launcher: set resource limits, then become the kernel."""
    parser = argparse.ArgumentParser(description="start a kernel under resource limits")
    parser.add_argument("--memory", type=int, default=-1, help="address-space limit, bytes")
    parser.add_argument("--cpu", type=int, default=-1, help="CPU-time limit, seconds")
    parser.add_argument("--fsize", type=int, default=-1, help="largest file it may write, bytes")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    for limit, value in ((resource.RLIMIT_AS, args.memory), (resource.RLIMIT_CPU, args.cpu),
                         (resource.RLIMIT_FSIZE, args.fsize), (resource.RLIMIT_CORE, 0)):
        if value >= 0:
            resource.setrlimit(limit, (value, value))
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
