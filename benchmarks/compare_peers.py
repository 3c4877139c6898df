"""
Side-by-side per-call overhead of stalwart and its peers, as ratios to a
baseline measured in the same rounds (method of
``shared/bench/peers_overhead.py``).

Each ``benchmarks/peers_<area>.py`` module has ``rows(suite)`` adding its
rows (ours, hand-written floors and the peers') to a ``harness.Suite``.
Peers are optional imports: a peer that is not installed is skipped.

Run with an interpreter that has the peers and stalwart installed::

    python -m venv peers && peers/bin/pip install -e . tenacity stamina \
        backoff pybreaker circuitbreaker limits pyrate-limiter throttled-py \
        aiolimiter token-bucket
    peers/bin/python benchmarks/compare_peers.py [--quick] [--only AREA]
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys


HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from harness import Suite  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print (or write) the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="5 rounds of 5 ms"
    )
    parser.add_argument("--only", default="", help="areas containing this")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target-ms", type=float, default=20.0)
    parser.add_argument("--md", help="also write the report to this file")
    args = parser.parse_args(argv)

    suite = Suite()
    for path in sorted(HERE.glob("peers_*.py")):
        area = path.stem.removeprefix("peers_")
        if args.only and args.only not in area:
            continue
        importlib.import_module(path.stem).rows(suite)
    rounds, target = (5, 5.0) if args.quick else (args.rounds, args.target_ms)
    suite.run(rounds=rounds, target_ms=target)
    report = suite.report()
    print(report)
    if args.md:
        pathlib.Path(args.md).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
