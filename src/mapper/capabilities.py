"""Capabilities: what a backend can do, declared once per backend.

The unit of work and the contract tests consult this record instead of asking which backend
they talk to (DESIGN principle 8). Pure data; each dialect builds one at connect time.
"""

from __future__ import annotations

import attrs

__all__ = ["Capabilities"]


@attrs.frozen
class Capabilities:
    """What one backend supports. Every field is a noun; True means supported."""

    transactions: bool
    """Atomic commit and rollback of a unit of work."""
    savepoints: bool
    """Nested transactions inside a unit of work."""
    returning: bool
    """INSERT/UPDATE/DELETE ... RETURNING."""
    generated_keys: bool
    """The database can generate integer keys on insert."""
    array_parameters: bool
    """One parameter can carry a list, so batch statements are the same text for any N."""
    parameter_limit: int
    """Most bind parameters one statement may carry."""
    mutations: bool = False
    """Updates and deletes are asynchronous mutations (no row counts, no rollback)."""
    version_checks: bool = True
    """Updates report matched rows, so optimistic version columns can be enforced."""
    concurrent_writers: bool = True
    """Several units of work may write at once (SQLite serialises writers)."""
    transactional_cursors: bool = False
    """Server-side cursors (for streaming) exist only inside a transaction."""
    row_locks: bool = False
    """Writers lock rows (not the whole database), so lock order between them matters."""
    counted_writes: bool = False
    """UPDATE and DELETE are checked by the row count the server reports; only a short count
    costs a follow-up query naming the stale rows. A DELETE that was the transaction's first
    write rolls the transaction back before that query, which then sees the rows it removed."""
    single_statement_commits: bool = False
    """A commit whose only write is one batch may send that batch's statement alone,
    without BEGIN and COMMIT: the statement is its own transaction. An UPDATE or DELETE sent
    alone checks inside the server that it matched every row it was given, and fails
    (writing nothing) when it did not. Whether a table takes it, the connection says
    (`Connection.can_send_alone`)."""
