"""How fast domain tests run on the memory backend: thousands of units of work.

A domain test suite is many small units of work (add, get, find, change, remove). This runs
the same workload on memory://, on an in-memory SQLite database and on a SQLite file, in one
process, and reports time per unit of work with the ratio to the memory backend. Ratios, not
absolute times, are the result (the machine varies); nothing here asserts a speed.

Run: python -m benchmarks.memory_backend [--units 5000] [--repeats 3]
Writes benchmarks/results/memory_backend.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import attrs

from mapper import Column, EntityMap, Registry, UnitOfWork, connect
from mapper import types as t


@attrs.define
class Account:
    owner: str
    balance: int = 0
    version: int = 0
    id: int | None = None


registry = Registry()


@registry.map
class AccountMap(EntityMap[Account]):
    __table__ = "bench_accounts"
    id = Column(t.Integer(), primary_key=True, generated=True)
    owner = Column(t.String(40), index=True)
    balance = Column(t.Integer())
    version = Column(t.Integer(), version=True)


async def workload(url: str, units: int) -> float:
    """Seconds for `units` small units of work, the shape of a domain test suite's."""
    async with await connect(url) as db:
        await db.drop_all(registry)
        await db.create_all(registry)
        started = time.perf_counter()
        for i in range(units):
            async with UnitOfWork(db, registry) as uow:
                accounts = uow.repository(Account)
                kind = i % 4
                if kind == 0:
                    accounts.add(Account(f"owner{i}", balance=i))
                elif kind == 1:
                    found = await accounts.first(AccountMap.owner == f"owner{i - 1}")
                    if found is not None:
                        found.balance += 1
                elif kind == 2:
                    await accounts.find(AccountMap.balance > i // 2, limit=5)
                else:
                    victim = await accounts.first(AccountMap.owner == f"owner{i - 3}")
                    if victim is not None and i % 8 == 3:
                        accounts.remove(victim)
        return time.perf_counter() - started


async def measure(units: int, repeats: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as directory:
        backends = {
            "memory://": "memory://",
            "sqlite (in-memory)": "sqlite:///:memory:",
            "sqlite (file)": f"sqlite:///{Path(directory) / 'bench.db'}",
        }
        results = []
        for name, url in backends.items():
            await workload(url, min(units, 200))  # warm-up
            times = [await workload(url, units) for _ in range(repeats)]
            median = statistics.median(times)
            spread = (max(times) - min(times)) / median if median else 0.0
            results.append((name, median, spread))
        return results


def report(results: list[tuple[str, float, float]], units: int, repeats: int) -> str:
    baseline = results[0][1]
    lines = [
        f"# Memory backend: {units} small units of work, median of {repeats}",
        "",
        "| backend | total (s) | per unit of work (ms) | spread | ratio to memory |",
        "|---|---|---|---|---|",
    ]
    for name, median, spread in results:
        lines.append(
            f"| {name} | {median:.2f} | {median / units * 1000:.3f} | {spread:.0%} "
            f"| {median / baseline:.2f}x |"
        )
    lines.append("")
    lines.append("Regenerate: `python -m benchmarks.memory_backend`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/memory_backend.md"))
    args = parser.parse_args()
    results = asyncio.run(measure(args.units, args.repeats))
    text = report(results, args.units, args.repeats)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
