"""Client instructions per run of mapper's scenarios, counted by callgrind: a steady A/B.

    python -m benchmarks.instructions [--backend postgres] [--scenario KEY ...] [--runs 4 14]

On a machine whose speed comes in bursts, timed A/B runs of two versions differ by more
than a change of a few percent in mapper's own work. callgrind counts the instructions a
process runs instead, which do not depend on how fast the machine is at the moment (only
the event loop's turns vary a little with timing). Each figure is the instructions of a
process that does the larger number of runs, less those of one that does the smaller,
divided by the difference: imports, connecting and making the schema cancel out, and what
is left is one run in this process, seeding and untimed loads included (the database
server is another process and is not counted). Compare two versions as with
`python -m benchmarks`: `PYTHONPATH=<other checkout>/src python -m benchmarks.instructions`,
one version at a time (both would use the benchmark's schema). Needs valgrind (Debian's
`valgrind` package); a child process under it does the runs. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys

from benchmarks.backends import BACKENDS
from benchmarks.runner import timed_run
from benchmarks.scenarios import scenarios_for
from benchmarks.systems.mapper_system import MapperSystem

__all__ = ["main"]

DEFAULT = ["insert_1k", "update_1k", "delete_1k", "mixed", "load10_change10"]
_COLLECTED = re.compile(r"Collected : (\d+)")


async def _runs(backend_name: str, key: str, runs: int) -> None:
    """The child's work: `runs` runs of one scenario (each seeded first), after a warm-up."""
    backend = BACKENDS[backend_name]()
    await backend.open()
    system = MapperSystem(backend)
    await system.open()
    try:
        (scenario,) = scenarios_for(backend_name, [key])
        arguments = scenario.arguments(quick=False)
        rows = scenario.seed_rows(quick=False)
        for _ in range(runs + 1):
            await backend.seed(rows)
            await timed_run(system, scenario.op, arguments)
    finally:
        await system.close()
        await backend.close()


def _instructions(valgrind: str, backend: str, key: str, runs: int) -> int:
    command = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        str(runs),
        "--backend",
        backend,
        "--scenario",
        key,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{key} under callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="postgres", choices=sorted(BACKENDS))
    parser.add_argument("--scenario", action="append", dest="scenarios")
    parser.add_argument("--runs", type=int, nargs=2, default=[4, 14], metavar=("FEWER", "MORE"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # runs, under valgrind
    options = parser.parse_args()
    if options.child is not None:
        asyncio.run(_runs(options.backend, options.scenarios[0], options.child))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("needs valgrind on PATH (Debian: apt-get install valgrind)")
    fewer, more = min(options.runs), max(options.runs)
    if fewer == more:
        raise SystemExit("--runs takes two different run counts, e.g. --runs 4 14")
    import mapper  # noqa: PLC0415 - only to say which checkout is measured

    print(f"mapper from {mapper.__file__}, {options.backend}, runs {fewer} and {more}")
    for key in options.scenarios or DEFAULT:
        low = _instructions(valgrind, options.backend, key, fewer)
        high = _instructions(valgrind, options.backend, key, more)
        print(f"{key:<22} {(high - low) / (more - fewer) / 1e6:8.2f} M instructions per run")


if __name__ == "__main__":
    main()
