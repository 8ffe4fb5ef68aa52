"""The statement hook: one event per statement, for logging, tracing, counting and faults.

`Database.on_statement(fn)` registers `fn`; every statement the backend runs (including BEGIN,
COMMIT, ROLLBACK and DDL) produces a `StatementEvent` before it is sent and another when it
finished. A hook may be a plain function or a coroutine function; an exception it raises
propagates into the statement (that is how tests inject faults). Parameter values are only
attached when the database was connected with `log_parameters=True` (GUARANTEES G15).

Called by the dialects' statement runner; used by `database.py` for the `mapper` logger.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs

__all__ = ["HookHandle", "StatementEvent", "StatementHook", "StatementHooks"]

logger = logging.getLogger("mapper")

Phase = Literal["before", "after"]


@attrs.frozen
class StatementEvent:
    """One statement, before it runs (`phase="before"`) or after (`phase="after"`)."""

    phase: Phase
    database: str
    """The backend: postgresql, sqlite, memory, ..."""
    operation: str
    """insert, update, delete, select, count, begin, commit, rollback or ddl."""
    table: str | None
    sql: str | None
    parameter_count: int
    session_id: int | None = None
    """The server's id for the connection (PostgreSQL backend pid), where it has one."""
    duration: float | None = None
    """Seconds the statement took; set after."""
    row_count: int | None = None
    """Rows returned or affected; set after, when the driver reports it."""
    error: BaseException | None = None
    """Why the statement failed: mapper's error (the driver's is its `__cause__`), or the
    exception itself when mapper has none for it (a cancellation)."""
    parameters: tuple[Any, ...] | None = attrs.field(default=None, repr=False)
    """The bound values, only with `log_parameters=True`."""


StatementHook = Callable[[StatementEvent], Awaitable[None] | None]


@attrs.define
class HookHandle:
    """Returned by `on_statement`; `remove()` unregisters the hook."""

    _hooks: StatementHooks
    _hook: StatementHook
    _phase: Phase

    def remove(self) -> None:
        self._hooks.remove(self._hook, self._phase)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class StatementHooks:
    """The hooks registered on one database, split by phase."""

    def __init__(self, database: str, log_parameters: bool = False) -> None:
        self.database = database
        self.log_parameters = log_parameters
        self._before: list[StatementHook] = []
        self._after: list[StatementHook] = []

    def add(self, hook: StatementHook, phase: Phase = "after") -> HookHandle:
        if not callable(hook):
            raise TypeError(f"on_statement takes a callable, got {hook!r}")
        self._list(phase).append(hook)
        return HookHandle(self, hook, phase)

    def remove(self, hook: StatementHook, phase: Phase) -> None:
        hooks = self._list(phase)
        if hook in hooks:
            hooks.remove(hook)

    def _list(self, phase: Phase) -> list[StatementHook]:
        if phase == "before":
            return self._before
        if phase == "after":
            return self._after
        raise ValueError(f"phase must be 'before' or 'after', got {phase!r}")

    @property
    def wants_before(self) -> bool:
        return bool(self._before)

    @property
    def wants_after(self) -> bool:
        return bool(self._after) or logger.isEnabledFor(logging.DEBUG)

    async def emit(self, event: StatementEvent) -> None:
        """Run the hooks of the event's phase.

        A before-hook's exception fails the statement (that is how faults are injected). An
        after-hook cannot change what already happened: its exception is logged under the
        `mapper` logger and the statement's outcome stands (a COMMIT stays committed).
        """
        if event.phase == "before":
            for hook in tuple(self._before):
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            return
        for hook in tuple(self._after):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("statement hook %r failed; the statement's outcome stands", hook)
        if logger.isEnabledFor(logging.DEBUG):
            _log(event)


def _log(event: StatementEvent) -> None:
    status = "failed" if event.error is not None else "ok"
    duration = f"{event.duration * 1000:.2f}ms" if event.duration is not None else "-"
    logger.debug(
        "%s %s %s on %s: %s params, %s rows, %s%s | %s",
        event.database,
        event.operation,
        status,
        event.table or "-",
        event.parameter_count,
        event.row_count if event.row_count is not None else "-",
        duration,
        f" ({type(event.error).__name__})" if event.error is not None else "",
        event.sql,
    )
    if event.parameters is not None:
        logger.debug("parameters: %r", event.parameters)
