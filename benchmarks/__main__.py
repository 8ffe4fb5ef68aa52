"""`python -m benchmarks`: mapper against raw drivers, a hand-written layer and peer ORMs.

    python -m benchmarks [--quick] [--repeats N] [--backend postgres|sqlite] [--scenario KEY]

Runs every scenario of each chosen backend (`scenarios.py`) on each system
(`systems/__init__.py`), each in a process of its own (`apart.py`; DotORM's under Python
3.12), their runs interleaved, and writes `<backend>.md`, `<backend>.json` and
`ratios.png` to benchmarks/results/ (quick runs: benchmarks/results/quick/). PostgreSQL is
reached at MAPPER_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) and
only its `bench` schema is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from benchmarks.backends import BACKENDS
from benchmarks.report import write
from benchmarks.runner import Settings, run_backend
from benchmarks.scenarios import SCENARIOS
from benchmarks.systems import SYSTEMS

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and one run: a CI smoke test"
    )
    parser.add_argument("--repeats", type=int, help="measured runs (default 5; quick: 1)")
    parser.add_argument(
        "--backend",
        action="append",
        choices=sorted(BACKENDS),
        help="run only this backend (repeatable; default: all)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--system", action="append", help="run only this system (repeatable): mapper, raw, ..."
    )
    parser.add_argument("--output", type=Path, help="results directory")
    parser.add_argument("--dotorm-python", help="a Python 3.12+ with dotorm installed")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the systems in this process, not each in its own (DotORM still apart)",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = Settings(
        args.quick,
        args.repeats,
        args.scenario,
        apart_python=args.dotorm_python,
        in_process=args.in_process,
    )
    output = args.output or (RESULTS / "quick" if args.quick else RESULTS)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    for backend in args.backend or list(BACKENDS):
        entries = [e for e in SYSTEMS[backend] if not args.system or e.name in args.system]
        figures = asyncio.run(run_backend(backend, entries, settings))
        report, raw = write(figures, output, command)
        print(f"wrote {report} and {raw} ({figures['seconds']:.0f} s)", file=sys.stderr)
    try:
        from benchmarks.chart import draw  # noqa: PLC0415 - matplotlib is optional

        chart = draw(output)
        if chart is not None:
            print(f"wrote {chart}", file=sys.stderr)
    except ImportError as error:
        print(f"no chart: {error} (install the bench dependency group)", file=sys.stderr)


if __name__ == "__main__":
    main()
