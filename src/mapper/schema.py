"""DDL from mappings: CREATE TABLE / INDEX and DROP TABLE statements for one dialect.

Column types come from `types.py`; the dialect's compiler quotes names and says how a
generated key is declared. Constraint names are derived here, the same way everywhere, so
errors can name the entity and attribute behind a violated constraint
(`constraint_owner`). Pure; called by `Database.create_all` / `drop_all` through the dialect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from mapper.mapping import ColumnMeta, EntityMeta
from mapper.types import DialectName

__all__ = [
    "DdlCompiler",
    "constraint_name",
    "constraint_owner",
    "create_statements",
    "drop_statements",
]

_MAX_NAME = 63


class DdlCompiler(Protocol):
    """What DDL needs from a dialect's compiler."""

    @property
    def dialect(self) -> DialectName: ...

    def quote(self, identifier: str) -> str: ...

    def generated_key_ddl(self, column: ColumnMeta, sole_key: bool) -> str:
        """The column definition of a database-generated key, after its quoted name."""
        ...

    def inline_primary_key(self, column: ColumnMeta, sole_key: bool) -> bool:
        """Whether the generated key's definition already says PRIMARY KEY."""
        ...

    def table_options(self) -> str: ...

    @property
    def forward_foreign_keys(self) -> bool:
        """Whether CREATE TABLE may name a table not created yet (SQLite checks at write).

        Otherwise a foreign key into a later table (tables that refer to each other) is added
        by ALTER TABLE once every table exists, and dropped first by drop_statements.
        """
        ...

    def foreign_key_checks_sql(self, enabled: bool) -> str | None:
        """The statement that turns foreign key checks on or off for the connection, where
        dropping tables that refer to each other needs that (SQLite); else None."""
        ...

    def collation(self, column: ColumnMeta) -> str:
        """What text columns say after their type, so they compare by code point."""
        ...


def constraint_name(kind: str, table: str, columns: Sequence[str]) -> str:
    """`<kind>_<table>__<column>[__<column>...]`: distinct for distinct tables and columns.

    A double underscore separates the parts; where a part holds one itself (so two pairs
    could join alike), or the result passes 63 bytes, a hash of the parts makes it unique.
    """
    name = f"{kind}_{table}__{'__'.join(columns)}"
    ambiguous = any("__" in part for part in (table, *columns))
    if not ambiguous and len(name.encode()) <= _MAX_NAME:
        return name
    exact = "\x00".join((kind, table, *columns)).encode()
    digest = hashlib.sha1(exact, usedforsecurity=False).hexdigest()[:8]
    return f"{name.encode()[: _MAX_NAME - 9].decode(errors='ignore')}_{digest}"


def constraint_owner(
    metas: Sequence[EntityMeta],
    name: str | None,
    table: str | None = None,
    columns: Sequence[str] = (),
) -> tuple[EntityMeta, ColumnMeta] | None:
    """The mapping and column behind a violated constraint.

    Found by the constraint's name (PostgreSQL names it) or else by table and column (SQLite
    names the columns instead).
    """
    if table and columns:
        for meta in metas:
            if meta.table.lower() == table.lower():
                for column in meta.columns:
                    if column.name == columns[0]:
                        return meta, column
    if not name:
        return None
    for meta in metas:
        for column in meta.columns:
            if column.unique and constraint_name("uq", meta.table, [column.name]) == name:
                return meta, column
            fk = column.foreign_key
            if fk is not None and constraint_name("fk", meta.table, [column.name]) == name:
                return meta, column
        if constraint_name("pk", meta.table, [k.name for k in meta.primary_key]) == name:
            return meta, meta.primary_key[0]
    return None


def _column_ddl(meta: EntityMeta, column: ColumnMeta, compiler: DdlCompiler) -> str:
    name = compiler.quote(column.name)
    sole_key = len(meta.primary_key) == 1
    if column.generated:
        return f"{name} {compiler.generated_key_ddl(column, sole_key)}"
    null = "" if column.nullable else " NOT NULL"
    collation = compiler.collation(column) if column.type.textual else ""
    return f"{name} {column.type.ddl(compiler.dialect)}{collation}{null}"


def create_statements(metas: Sequence[EntityMeta], compiler: DdlCompiler) -> list[str]:
    """CREATE TABLE IF NOT EXISTS for each mapping (in the given order), then its indexes."""
    statements: list[str] = []
    later: list[str] = []
    forward = _forward_keys(metas)
    quote = compiler.quote
    for meta in metas:
        table = meta.table
        parts = [_column_ddl(meta, column, compiler) for column in meta.columns]
        sole_key = len(meta.primary_key) == 1
        generated = meta.generated
        if generated is None or not compiler.inline_primary_key(generated, sole_key):
            keys = [k.name for k in meta.primary_key]
            parts.append(
                f"CONSTRAINT {quote(constraint_name('pk', table, keys))} "
                f"PRIMARY KEY ({','.join(quote(k) for k in keys)})"
            )
        for column in meta.columns:
            if column.unique:
                parts.append(
                    f"CONSTRAINT {quote(constraint_name('uq', table, [column.name]))} "
                    f"UNIQUE ({quote(column.name)})"
                )
        for column in meta.columns:
            fk = column.foreign_key
            if fk is None:
                continue
            name = quote(constraint_name("fk", table, [column.name]))
            constraint = (
                f"CONSTRAINT {name} FOREIGN KEY ({quote(column.name)}) "
                f"REFERENCES {quote(fk.target_table)} ({quote(fk.target_column)})"
            )
            if (meta, column) in forward and not compiler.forward_foreign_keys:
                # Dropped first, so create_all stays safe to run again.
                later.append(f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {name}")
                later.append(f"ALTER TABLE {quote(table)} ADD {constraint}")
            else:
                parts.append(constraint)
        body = ",\n  ".join(parts)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {quote(table)} (\n  {body}\n){compiler.table_options()}"
        )
        for column in meta.columns:
            if column.index and not column.unique:
                index = quote(constraint_name("ix", table, [column.name]))
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS {index} ON {quote(table)} ({quote(column.name)})"
                )
    return statements + later


def drop_statements(metas: Sequence[EntityMeta], compiler: DdlCompiler) -> list[str]:
    """DROP TABLE IF EXISTS for each mapping, in the given order (children first).

    Tables that refer to each other cannot go in any order while the foreign keys between
    them hold rows: those keys are dropped first (or, where a connection cannot drop a
    constraint, checks are off while the tables go).
    """
    quote = compiler.quote
    drops = [f"DROP TABLE IF EXISTS {quote(meta.table)}" for meta in metas]
    forward = _forward_keys(metas[::-1])
    if not forward:
        return drops
    off, on = compiler.foreign_key_checks_sql(False), compiler.foreign_key_checks_sql(True)
    if off is not None and on is not None:
        return [off, *drops, on]
    first = [
        f"ALTER TABLE IF EXISTS {quote(meta.table)} DROP CONSTRAINT IF EXISTS "
        f"{quote(constraint_name('fk', meta.table, [column.name]))}"
        for meta, column in forward
    ]
    return first + drops


def _forward_keys(metas: Sequence[EntityMeta]) -> set[tuple[EntityMeta, ColumnMeta]]:
    """Foreign keys into a table that comes later in `metas` (creation order)."""
    position = {meta.table.lower(): index for index, meta in enumerate(metas)}
    found = set()
    for index, meta in enumerate(metas):
        for column in meta.columns:
            fk = column.foreign_key
            if fk is not None and position.get(fk.target_table.lower(), -1) > index:
                found.add((meta, column))
    return found
