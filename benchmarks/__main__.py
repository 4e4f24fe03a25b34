"""`python -m benchmarks` (or `make bench`): run every benchmark, one after another, each in its
own process so that none shares an event loop or a core with the previous one."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

ALL = ("collector", "sentiment", "enricher", "metrics", "closed_loop")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(ALL)} (default: all)")
    args = parser.parse_args()
    failed = []
    unknown = sorted(set(args.names) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    for name in args.names or ALL:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.monotonic()
        status = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(
            f"=== benchmarks.{name}: exit {status} after {time.monotonic() - started:.0f}s",
            flush=True,
        )
        if status != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
