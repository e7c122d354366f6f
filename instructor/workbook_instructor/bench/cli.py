"""``workbook bench ...``: benchmarks that need a GPU."""
from __future__ import annotations

import os
import sys


def _csv(kind):
    def parse(text):
        return tuple(kind(item) for item in text.split(",") if item.strip())
    return parse


def register(subparsers) -> None:
    """Add ``bench`` (with ``bench attention``) to the ``workbook`` command line."""
    from . import attention

    bench = subparsers.add_parser("bench", help="(instructor) GPU benchmarks of the reference kernels "
                                  "(need CUDA); a Hopper compile check (no GPU)")
    sub = bench.add_subparsers(dest="bench_command", required=True)
    p = sub.add_parser("attention", help="time tiled Triton attention against PyTorch SDPA")
    p.add_argument("--out", default="bench-results", help="folder for attention.json and attention.png")
    p.add_argument("--quick", action="store_true", help="a short sweep: bf16, N in {1k, 4k}")
    p.add_argument("--dtypes", type=_csv(str), default=attention.DTYPES, help="comma list: bf16,fp16")
    p.add_argument("--head-dims", type=_csv(int), default=attention.HEAD_DIMS, help="comma list, e.g. 64,128")
    p.add_argument("--seq-lens", type=_csv(int), default=attention.SEQ_LENS, help="comma list of N")
    p.add_argument("--modes", type=_csv(str), default=attention.MODES, help="comma list: fwd,fwd_bwd")
    p.add_argument("--causal", choices=("both", "yes", "no"), default="both")
    p.add_argument("--providers", type=_csv(str), default=attention.PROVIDERS,
                   help="comma list of " + ",".join(attention.PROVIDERS))
    p.add_argument("--notebook", default=None, metavar="IPYNB",
                   help="also time the flash_attention of this notebook 07 (a student's filled-in "
                        "copy or the solution), as provider 'notebook', after checking it against SDPA")
    p.set_defaults(func=run)

    from . import hopper_compile
    from .proof import NOTEBOOK

    c = sub.add_parser("compile", help="compile the flash kernels for Hopper (sm_90) without a GPU: "
                                       "registers, spills, shared memory per tile")
    c.add_argument("--out", default=None, help="also write compile.json and compile.md here")
    c.add_argument("--quick", action="store_true",
                   help="the first tile of each kernel, causal, bf16 only (a CI-sized check)")
    c.add_argument("--dtypes", type=_csv(str), default=None,
                   help="comma list (default: fp16,bf16; bf16 with --quick)")
    c.add_argument("--head-dims", type=_csv(int), default=hopper_compile.HEAD_DIMS, help="comma list: 64,128")
    c.add_argument("--notebook", default=str(NOTEBOOK), metavar="IPYNB",
                   help="notebook 07 whose solution kernels are compiled too (default: the solution)")
    c.add_argument("--no-notebook", action="store_true", help="compile the reference kernels only")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles at once")
    c.set_defaults(func=hopper_compile.main)


def run(args) -> int:
    from .attention import PROVIDERS, main

    unknown = [x for x in args.providers if x not in PROVIDERS]
    if unknown:
        print(f"unknown provider(s) {unknown}; choose from {list(PROVIDERS)}", file=sys.stderr)
        return 2
    return main(args)
