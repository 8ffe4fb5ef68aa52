"""Counting statements at the driver, for systems that offer no statement hook.

`driver_statements()` wraps the public query methods of asyncpg's and aiosqlite's
connection classes once per process and returns a counter. Transaction control (BEGIN,
COMMIT, ROLLBACK, SAVEPOINT, RELEASE) and asyncpg's pool reset are not counted, as mapper's
and SQLAlchemy's counts leave them out too; an executemany counts one statement per
parameter set, since the server runs each. Used by the raw, hand-written, Tortoise and
DotORM systems; mapper counts through `db.on_statement` and SQLAlchemy through
`before_cursor_execute`. Stdlib only at import (the drivers are imported when asked for).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sized
from typing import Any

__all__ = ["StatementCounter", "driver_statements", "is_transaction_control"]

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START TRANSACTION", "END")
# asyncpg's pool resets a connection it takes back (`Connection.get_reset_query`, asyncpg
# 0.30+); mapper's hook does not see that either, so it is housekeeping for every system.
_HOUSEKEEPING = ("SELECT PG_ADVISORY_UNLOCK_ALL()",)

# (module, class, methods whose first argument is the SQL, methods taking many parameter sets)
_TARGETS = (
    (
        "asyncpg.connection",
        "Connection",
        ("execute", "fetch", "fetchrow", "fetchval", "fetchmany", "cursor", "copy_from_query"),
        ("executemany",),
    ),
    (
        "aiosqlite.core",
        "Connection",
        ("execute", "execute_fetchall", "execute_insert", "executescript"),
        ("executemany",),
    ),
)
_COPY = ("copy_records_to_table", "copy_to_table")


def is_transaction_control(sql: object) -> bool:
    """Transaction control or pool housekeeping: statements no system's count includes."""
    if not isinstance(sql, str):
        return False
    head = sql.lstrip()[:40].upper()
    return head.startswith(_CONTROL) or head.startswith(_HOUSEKEEPING)


class StatementCounter:
    """A running count of data statements sent through the wrapped drivers."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


_counter = StatementCounter()
_installed: set[str] = set()


def _wrap_single(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, sql: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not is_transaction_control(sql):
            _counter.value += 1
        return method(self, sql, *args, **kwargs)

    return wrapper


def _wrap_many(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, sql: Any, parameters: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(parameters, Sized):
            _counter.value += len(parameters)
        else:
            parameters = list(parameters)
            _counter.value += len(parameters)
        return method(self, sql, parameters, *args, **kwargs)

    return wrapper


def _wrap_copy(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        _counter.value += 1
        return method(self, *args, **kwargs)

    return wrapper


def driver_statements(driver: str) -> StatementCounter:
    """The process-wide counter, with `driver` ("asyncpg" or "aiosqlite") wrapped."""
    for module_name, class_name, singles, manys in _TARGETS:
        if not module_name.startswith(driver) or module_name in _installed:
            continue
        klass = getattr(importlib.import_module(module_name), class_name)
        for name in singles:
            setattr(klass, name, _wrap_single(getattr(klass, name)))
        for name in manys:
            setattr(klass, name, _wrap_many(getattr(klass, name)))
        if driver == "asyncpg":
            for name in _COPY:
                setattr(klass, name, _wrap_copy(getattr(klass, name)))
        _installed.add(module_name)
    return _counter
