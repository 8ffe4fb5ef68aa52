"""Where mapper spends its time: cProfile over the timed regions of chosen scenarios.

    python -m benchmarks.profiling [--backend postgres] [--scenario KEY ...] [--runs 5]

Runs only the mapper system, with the profiler on between `watch.start()` and
`watch.stop()` (setup and seeding stay out, and a collection runs before each run, as in
the runner), over several runs after a warm-up, and keeps the functions defined in mapper's
own source and the code it generates per mapping (`generated changed`, the flush's scan).
Writes benchmarks/results/profile-<backend>.md with the top functions by cumulative and by
own time per scenario. cProfile slows small functions most, so read shares, not absolute
times; a coroutine's cumulative time covers its running steps, not the waits for the
database, and its "calls" count its resumptions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mapper
from benchmarks.backends import BACKENDS
from benchmarks.scenarios import scenarios_for
from benchmarks.systems.mapper_system import MapperSystem
from benchmarks.timing import Stopwatch

__all__ = ["main"]

DEFAULT = ["insert_1k", "load_1k", "update_1k", "delete_1k", "mixed", "load10k_change10"]
MAPPER_SOURCE = str(Path(str(mapper.__file__)).resolve().parent)
GENERATED = "<mapper generated "
"""How `codec.compile_function` names the code it compiles per mapping (loops, scans)."""
RESULTS = Path(__file__).resolve().parent / "results"

Row = tuple[str, int, float, float]
"""(function, calls, own seconds, cumulative seconds)"""


class ProfilingStopwatch(Stopwatch):
    """A stopwatch that also profiles its timed region into a shared profiler."""

    def __init__(self, count: Callable[[], int], profiler: cProfile.Profile) -> None:
        super().__init__(count)
        self._profiler = profiler

    def start(self) -> None:
        super().start()
        self._profiler.enable()

    def stop(self) -> None:
        self._profiler.disable()
        super().stop()


def _mapper_rows(profiler: cProfile.Profile) -> list[Row]:
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.items():
        if filename.startswith(MAPPER_SOURCE):
            where = Path(filename).relative_to(MAPPER_SOURCE).as_posix()
            rows.append((f"{where}:{line} {function}", calls, own, cumulative))
        elif filename.startswith(GENERATED):
            rows.append((f"generated {function}", calls, own, cumulative))
    return rows


async def profile(backend_name: str, keys: list[str], runs: int) -> dict[str, Any]:
    backend = BACKENDS[backend_name]()
    found: dict[str, Any] = {}
    await backend.open()
    system = MapperSystem(backend)
    await system.open()
    try:
        for scenario in scenarios_for(backend_name, keys):
            arguments = scenario.arguments(quick=False)
            rows = scenario.seed_rows(quick=False)
            await backend.seed(rows)
            await getattr(system, scenario.op)(Stopwatch(system.statements), **arguments)
            profiler = cProfile.Profile()
            timed = 0.0
            for _ in range(runs):
                await backend.seed(rows)
                gc.collect()  # as the runner does: no collection owed from setup lands here
                watch = ProfilingStopwatch(system.statements, profiler)
                await getattr(system, scenario.op)(watch, **arguments)
                timed += watch.seconds or 0.0
            found[scenario.title_for(quick=False)] = (timed / runs, _mapper_rows(profiler))
    finally:
        await system.close()
        await backend.close()
    return found


def markdown(found: dict[str, Any], backend: str, runs: int, top: int) -> str:
    lines = [
        f"# Where mapper spends its time ({backend})",
        "",
        f"cProfile over the timed region of {runs} runs per scenario (after a warm-up and a "
        "garbage collection before each run), only functions in mapper's source and the code "
        "it generates per mapping; times are per run and inflated by the profiler, so "
        "compare shares. A coroutine's cumulative time covers its running steps, not its "
        "waits for the database, and its calls count its resumptions. Regenerate: "
        "`python -m benchmarks.profiling`.",
    ]
    for title, (seconds, rows) in found.items():
        lines += [
            "",
            f"## {title}",
            "",
            f"Timed region under the profiler: {seconds * 1000:.1f} ms per run.",
            "",
            "| # | function | calls | own ms | cumulative ms | cumulative share |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        ranked = sorted(rows, key=lambda row: row[3], reverse=True)[:top]
        for rank, (function, calls, own, cumulative) in enumerate(ranked, 1):
            lines.append(
                f"| {rank} | `{function}` | {calls // runs:,} | {own / runs * 1000:.2f} "
                f"| {cumulative / runs * 1000:.2f} | {cumulative / runs / seconds:.0%} |"
            )
        heaviest = sorted(rows, key=lambda row: row[2], reverse=True)[:5]
        lines += [
            "",
            "Most own time: "
            + "; ".join(f"`{f}` {own / runs * 1000:.2f} ms" for f, _, own, _ in heaviest)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="postgres", choices=sorted(BACKENDS))
    parser.add_argument("--scenario", action="append", dest="scenarios")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    found = asyncio.run(profile(args.backend, args.scenarios or DEFAULT, args.runs))
    text = markdown(found, args.backend, args.runs, args.top)
    output = args.output or RESULTS / f"profile-{args.backend}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
