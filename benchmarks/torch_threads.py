"""The ``--threads`` option the benchmark scripts share."""

from __future__ import annotations

import argparse


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` (torch intra-op threads, default 1)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on the shared 2-core machine two threads made "
        "one query take ~1 s instead of ~50 ms, at the same document throughput)",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``args.threads`` (0 or less keeps torch's default)."""
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
