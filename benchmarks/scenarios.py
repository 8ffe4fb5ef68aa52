"""The scenarios: what each one measures, its sizes in full and quick mode, on which backends.

Stdlib only (shared with the DotORM runner). Each scenario names the `System` method that
runs it (`op`) and the keyword arguments it gets. Called by `runner.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "Scenario", "expected_census", "scenarios_for"]


@dataclass(frozen=True)
class Scenario:
    """One measured task, the same for every system."""

    key: str
    title: str
    """A template filled from the arguments: "insert {n:,} new entities"."""
    op: str
    """The `System` method that runs it."""
    params: dict[str, int]
    quick_params: dict[str, int]
    seed: str | None = None
    """The parameter that says how many users the table holds before a run (None: empty)."""
    mutates: bool = False
    """Whether a run changes the table, so it is seeded again before every run."""
    memory: bool = False
    """Whether peak memory is measured (one extra run under tracemalloc)."""
    held: str | None = None
    """The parameter counting the entities the timed region ends up holding, so peak memory
    is also shown per entity (what the identity map and snapshots cost per row)."""
    timed: str = ""
    """What the timed region holds, for the report."""
    backends: tuple[str, ...] = ("postgres",)
    max_repeats: int | None = None
    """Big scenarios run fewer times."""

    def arguments(self, quick: bool) -> dict[str, int]:
        return dict(self.quick_params if quick else self.params)

    def title_for(self, quick: bool) -> str:
        return self.title.format(**self.arguments(quick))

    def seed_rows(self, quick: bool) -> int:
        return 0 if self.seed is None else self.arguments(quick)[self.seed]

    def held_entities(self, quick: bool) -> int | None:
        return None if self.held is None else self.arguments(quick)[self.held]


SQLITE_TOO = ("postgres", "sqlite")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "insert_1k",
        "1. insert {n:,} new entities through the unit of work",
        "insert",
        {"n": 1000},
        {"n": 50},
        mutates=True,
        timed="build the entities, add them, commit (roles loaded before, untimed)",
        backends=SQLITE_TOO,
    ),
    Scenario(
        "load_1k",
        "2. load {n:,} entities",
        "load",
        {"n": 1000},
        {"n": 50},
        seed="n",
        memory=True,
        held="n",
        timed="open a unit of work / session, select all, build the entities",
        backends=SQLITE_TOO,
    ),
    Scenario(
        "load_role_1k",
        "3. load {n:,} entities with their many-to-one role",
        "load_with_role",
        {"n": 1000},
        {"n": 50},
        seed="n",
        memory=True,
        held="n",
        timed="as 2, plus each user's role (one Role object per role row)",
    ),
    Scenario(
        "update_1k",
        "4. change {changed:,} loaded entities and flush",
        "update",
        {"loaded": 1000, "changed": 1000},
        {"loaded": 50, "changed": 50},
        seed="loaded",
        mutates=True,
        timed="change name and active of each entity, flush, commit (loading untimed)",
        backends=SQLITE_TOO,
    ),
    Scenario(
        "delete_1k",
        "5. remove {n:,} loaded entities",
        "delete",
        {"n": 1000},
        {"n": 50},
        seed="n",
        mutates=True,
        timed="remove each entity, flush, commit (loading untimed)",
    ),
    Scenario(
        "mixed",
        "6. mixed unit of work: load {load:,}, change {change:,}, remove {remove:,}, "
        "add {add:,}, commit",
        "mixed",
        {"load": 1000, "change": 300, "remove": 100, "add": 200},
        {"load": 50, "change": 15, "remove": 5, "add": 10},
        seed="load",
        mutates=True,
        timed="all of it (roles for the new users loaded before, untimed)",
    ),
    Scenario(
        "stream_100k",
        "7. stream {n:,} rows",
        "stream",
        {"n": 100_000},
        {"n": 500},
        seed="n",
        memory=True,
        timed="read every row as an entity, one at a time, without holding them",
        max_repeats=3,
    ),
    Scenario(
        "insert_10k",
        "8a. flush {n:,} new entities",
        "insert",
        {"n": 10_000},
        {"n": 100},
        mutates=True,
        memory=True,
        held="n",
        timed="as 1",
        max_repeats=10,
    ),
    Scenario(
        "insert_100k",
        "8b. flush {n:,} new entities",
        "insert",
        {"n": 100_000},
        {"n": 200},
        mutates=True,
        memory=True,
        held="n",
        timed="as 1",
        max_repeats=3,
    ),
    Scenario(
        "load10k_change10",
        "9a. load {loaded:,}, change {changed:,}, flush",
        "update",
        {"loaded": 10_000, "changed": 10},
        {"loaded": 200, "changed": 10},
        seed="loaded",
        mutates=True,
        timed="change 10 entities, flush, commit (loading untimed): should cost about 9b",
    ),
    Scenario(
        "load10k_shown_change10",
        "9c. load {loaded:,} to show, change {changed:,} of them, flush",
        "update_shown",
        {"loaded": 10_000, "changed": 10},
        {"loaded": 200, "changed": 10},
        seed="loaded",
        mutates=True,
        timed=(
            "as 9a; mapper loads for display with find(track=False) and gets the 10 to change "
            "(one query, timed); systems without a read-only load do as in 9a"
        ),
    ),
    Scenario(
        "load10k_shown_flush10",
        "9d. load {loaded:,} to show, then flush {changed:,} changed of them",
        "flush_shown",
        {"loaded": 10_000, "changed": 10},
        {"loaded": 200, "changed": 10},
        seed="loaded",
        mutates=True,
        timed=(
            "change 10 entities, flush, commit, as in 9a, after loading as in 9c (untimed): "
            "the flush alone, which should cost about 9b; systems without a read-only load "
            "do as in 9a"
        ),
    ),
    Scenario(
        "load10_change10",
        "9b. load {loaded:,}, change {changed:,}, flush",
        "update",
        {"loaded": 10, "changed": 10},
        {"loaded": 10, "changed": 10},
        seed="loaded",
        mutates=True,
        timed="as 9a",
    ),
)


def scenarios_for(backend: str, only: list[str] | None = None) -> list[Scenario]:
    """The scenarios that run on `backend`, in report order (optionally only some keys)."""
    chosen = [s for s in SCENARIOS if backend in s.backends]
    if only:
        chosen = [s for s in chosen if s.key in only]
    return chosen


def expected_census(op: str, arguments: dict[str, int]) -> tuple[int, int] | None:
    """(users, edited users) the table holds after a run of a writing operation, else None."""
    if op == "insert":
        return arguments["n"], 0
    if op in ("update", "update_shown", "flush_shown"):
        return arguments["loaded"], arguments["changed"]
    if op == "delete":
        return 0, 0
    if op == "mixed":
        a = arguments
        return a["load"] - a["remove"] + a["add"], a["change"]
    return None
