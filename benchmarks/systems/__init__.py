"""The systems compared on each backend, in report order, and where each one runs.

A system is imported only when its backend runs, so a missing peer library makes that
system "n/a" (with the import error) instead of stopping the suite. An entry with
`python="3.12"` runs under that Python (every system runs in a process of its own, `apart.py`).
Adding a backend is one more key here. Called by `runner.py` and `__main__.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from benchmarks.systems.base import System

__all__ = ["SYSTEMS", "UNAVAILABLE", "SystemEntry"]


@dataclass(frozen=True)
class SystemEntry:
    name: str
    label: str
    path: str
    """module:Class"""
    python: str | None = None
    """A Python version the system needs other than the harness's own (run apart)."""

    def load(self) -> type[System]:
        module_name, class_name = self.path.split(":")
        system: type[System] = getattr(importlib.import_module(module_name), class_name)
        return system


_MAPPER = SystemEntry("mapper", "mapper", "benchmarks.systems.mapper_system:MapperSystem")
_SQLALCHEMY = SystemEntry(
    "sqlalchemy", "SQLAlchemy 2 ORM", "benchmarks.systems.sqlalchemy_orm:SqlAlchemyOrm"
)
_TORTOISE = SystemEntry("tortoise", "Tortoise ORM", "benchmarks.systems.tortoise_orm:TortoiseOrm")

SYSTEMS: dict[str, tuple[SystemEntry, ...]] = {
    "postgres": (
        SystemEntry("raw", "raw asyncpg", "benchmarks.systems.raw_asyncpg:RawAsyncpg"),
        SystemEntry(
            "handwritten",
            "hand-written (asyncpg + attrs)",
            "benchmarks.systems.handwritten_asyncpg:HandwrittenAsyncpg",
        ),
        SystemEntry(
            "checked",
            "hand-written, checked (transaction + row counts)",
            "benchmarks.systems.handwritten_checked:HandwrittenChecked",
        ),
        _MAPPER,
        _SQLALCHEMY,
        _TORTOISE,
        SystemEntry("dotorm", "DotORM", "benchmarks.systems.dotorm_orm:DotOrm", python="3.12"),
    ),
    "sqlite": (
        SystemEntry("raw", "raw aiosqlite", "benchmarks.systems.raw_aiosqlite:RawAiosqlite"),
        SystemEntry(
            "handwritten",
            "hand-written (aiosqlite + attrs)",
            "benchmarks.systems.handwritten_aiosqlite:HandwrittenAiosqlite",
        ),
        _MAPPER,
        _SQLALCHEMY,
        _TORTOISE,
    ),
}

UNAVAILABLE: dict[str, dict[str, tuple[str, str]]] = {
    "sqlite": {
        "dotorm": (
            "DotORM",
            "dotorm 2.4.0 has no SQLite dialect (its dialects: PostgreSQL, MySQL, ClickHouse)",
        )
    }
}
"""Systems that cannot run on a backend at all: backend -> name -> (label, reason)."""
