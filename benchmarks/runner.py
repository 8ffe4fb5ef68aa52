"""Runs the scenarios of one backend against its systems and returns the raw figures.

For each scenario: one warm-up run per system, then `repeats` rounds in which every system
runs once, in an order that rotates from round to round (each run seeded again when the
scenario writes, and checked afterwards: the table must hold what the scenario says, or
the run fails), then, for memory scenarios, one more run per system under tracemalloc. A
system that cannot do a scenario, or fails at it, gets "n/a" with the reason.
Each system runs in a process of its own (`apart.py`; with `in_process`, all but those that
need another Python run in this one). Stdlib only. Called by `__main__.py`; `timed_run`
also by `apart_runner.py`, in each system's process.
"""

from __future__ import annotations

import gc
import platform
import sys
import time
import tracemalloc
from importlib import metadata
from typing import Any

from benchmarks.apart import ApartSystem
from benchmarks.backends import BACKENDS, Backend
from benchmarks.scenarios import Scenario, expected_census, scenarios_for
from benchmarks.systems import UNAVAILABLE, SystemEntry
from benchmarks.systems.base import System
from benchmarks.timing import Figures, Stopwatch

__all__ = ["Settings", "run_backend", "timed_run", "unavailable", "versions"]

PACKAGES = (
    "mapper",
    "asyncpg",
    "aiosqlite",
    "sqlalchemy",
    "tortoise-orm",
    "dotorm",
    "attrs",
    "pypika",
)


class Settings:
    """How a run is made: sizes, repeats, which scenarios."""

    def __init__(
        self,
        quick: bool,
        repeats: int | None,
        only: list[str] | None,
        log: bool = True,
        *,
        apart_python: str | None = None,
        in_process: bool = False,
    ) -> None:
        self.quick = quick
        self.repeats = repeats if repeats is not None else (1 if quick else 5)
        self.only = only
        self.log = log
        self.apart_python = apart_python
        """A Python 3.12+ with dotorm for the systems that need one, instead of finding it."""
        self.in_process = in_process
        """Run the systems in this process, not each in its own (to debug or profile one)."""

    def repeats_for(self, scenario: Scenario) -> int:
        if scenario.max_repeats is None:
            return self.repeats
        return min(self.repeats, scenario.max_repeats)

    def say(self, text: str) -> None:
        if self.log:
            print(text, file=sys.stderr, flush=True)


def unavailable(name: str, label: str) -> dict[str, Any]:
    """How a system that did not run is described in the figures."""
    return {"name": name, "label": label, "note": "", "floor": False, "counting": ""}


def _versions(systems: list[System]) -> dict[str, str]:
    """This process's versions, then those that differ in the processes systems ran in."""
    own = versions()
    found = dict(own)
    for system in systems:
        for package, version in system.versions_apart().items():
            if own.get(package) == version:
                continue
            key = package if package == system.name else f"{package} ({system.name} process)"
            found.setdefault(key, version)
    return found


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


async def timed_run(
    system: System, op: str, arguments: dict[str, int], trace_memory: bool = False
) -> Stopwatch:
    """One run of a system's operation, after a collection, with its stopwatch's figures.

    Shared with the systems' own processes (`apart_runner.py`), which time their runs.
    """
    gc.collect()
    watch = Stopwatch(system.statements, trace_memory=trace_memory)
    if trace_memory:
        tracemalloc.start()
    try:
        await getattr(system, op)(watch, **arguments)
    finally:
        if trace_memory:
            tracemalloc.stop()
    if watch.seconds is None:
        raise RuntimeError(f"{system.name}.{op} never stopped its stopwatch")
    return watch


async def _run_once(
    backend: Backend,
    system: System,
    scenario: Scenario,
    arguments: dict[str, int],
    *,
    seed: int | None,
    trace_memory: bool = False,
) -> Stopwatch:
    if seed is not None:
        await backend.seed(seed)
    watch = await timed_run(system, scenario.op, arguments, trace_memory)
    expected = expected_census(scenario.op, arguments)
    if expected is not None:
        found = await backend.census()
        if found != expected:
            raise RuntimeError(
                f"after the run the table holds (users, edited) = {found}, expected {expected}"
            )
    return watch


async def _measure(
    backend: Backend, systems: list[System], scenario: Scenario, settings: Settings
) -> dict[str, dict[str, Any]]:
    """Figures of every system in one scenario, their measured runs interleaved.

    After a warm-up of each, round r runs every system once, starting with a different one
    each round: a machine that speeds up or slows down during the scenario then shifts every
    system alike, so the ratios hold even when the times drift.
    """
    arguments = scenario.arguments(settings.quick)
    rows = scenario.seed_rows(settings.quick)
    reseed = rows if scenario.mutates else None
    failed: dict[str, dict[str, Any]] = {}

    async def attempt(system: System, trace_memory: bool = False) -> Stopwatch | None:
        try:
            return await _run_once(
                backend, system, scenario, arguments, seed=reseed, trace_memory=trace_memory
            )
        except Exception as error:
            failed[system.name] = {"na": f"failed: {type(error).__name__}: {error}"}
            return None

    running = []
    for system in systems:
        if await attempt(system) is not None:  # warm-up
            running.append(system)
    times: dict[str, list[float]] = {system.name: [] for system in running}
    queries: dict[str, int | None] = {}
    for round_ in range(settings.repeats_for(scenario)):
        start = round_ % len(running) if running else 0
        for system in running[start:] + running[:start]:
            if system.name in failed:
                continue
            watch = await attempt(system)
            if watch is not None:
                times[system.name].append(watch.seconds or 0.0)
                queries[system.name] = watch.queries if system.counting else None
    figures = dict(failed)
    for system in running:
        if system.name in failed:
            continue
        peak = None
        if scenario.memory:
            watch = await attempt(system, trace_memory=True)
            if watch is None:
                figures[system.name] = failed[system.name]
                continue
            peak = watch.peak_bytes
        figures[system.name] = Figures(times[system.name], queries.get(system.name), peak).as_dict()
    return figures


async def run_backend(
    backend_name: str, entries: list[SystemEntry], settings: Settings
) -> dict[str, Any]:
    """Every scenario of `backend_name` on the systems of `entries`: the raw figures."""
    backend = BACKENDS[backend_name]()
    scenarios = scenarios_for(backend_name, settings.only)
    results: dict[str, dict[str, Any]] = {s.key: {} for s in scenarios}
    systems: list[System] = []
    described: list[dict[str, Any]] = []
    started = time.perf_counter()
    await backend.open()
    try:
        for entry in entries:
            try:
                if entry.python is None and settings.in_process:
                    system = entry.load()(backend)
                else:
                    system = ApartSystem(backend, entry, settings.apart_python)
                await system.open()
            except Exception as error:
                reason = f"could not start: {type(error).__name__}: {error}"
                described.append(unavailable(entry.name, entry.label))
                for scenario in scenarios:
                    results[scenario.key][entry.name] = {"na": reason}
                settings.say(f"[{backend_name}] {entry.label}: {reason}")
                continue
            systems.append(system)
            described.append(
                {
                    "name": system.name,
                    "label": system.label,
                    "note": system.note,
                    "floor": system.floor,
                    "counting": system.counting,
                }
            )
        for name, (label, reason) in UNAVAILABLE.get(backend_name, {}).items():
            described.append(unavailable(name, label))
            for scenario in scenarios:
                results[scenario.key][name] = {"na": reason}
        for scenario in scenarios:
            if not scenario.mutates:
                await backend.seed(scenario.seed_rows(settings.quick))
            able = []
            for system in systems:
                missing = system.unsupported.get(scenario.op)
                if missing is not None:
                    results[scenario.key][system.name] = {"na": missing}
                else:
                    able.append(system)
            measured = await _measure(backend, able, scenario, settings)
            for system in able:
                figures = results[scenario.key][system.name] = measured[system.name]
                shown = figures["na"] if "na" in figures else f"{figures['median'] * 1000:.2f} ms"
                settings.say(f"[{backend_name}] {scenario.key:18} {system.name:12} {shown}")
    finally:
        for system in systems:
            try:
                await system.close()
            except Exception as error:  # a close failure must not hide the figures
                settings.say(f"[{backend_name}] closing {system.name} failed: {error!r}")
        await backend.close()
    return {
        "backend": backend_name,
        "title": backend.title,
        "quick": settings.quick,
        "repeats": settings.repeats,
        "seconds": time.perf_counter() - started,
        "versions": _versions(systems),
        "scenarios": [
            {
                "key": s.key,
                "title": s.title_for(settings.quick),
                "timed": s.timed,
                "arguments": s.arguments(settings.quick),
                "repeats": settings.repeats_for(s),
                "memory": s.memory,
                "held": s.held_entities(settings.quick),
            }
            for s in scenarios
        ],
        "systems": described,
        "results": results,
    }
