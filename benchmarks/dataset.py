"""The benchmark's data: role and user values, and the change every system makes.

Stdlib only, so the DotORM runner (its own Python 3.12 venv, without mapper or attrs) shares
it. Called by `backends.py` (seeding) and by every system in `systems/`.
"""

from __future__ import annotations

__all__ = [
    "EDITED_PATTERN",
    "NEW_USER_OFFSET",
    "ROLE_COUNT",
    "USER_COLUMNS",
    "new_user",
    "renamed",
    "role_id_of",
    "role_name",
]

ROLE_COUNT = 10
"""Roles seeded once per backend; their ids are 1..ROLE_COUNT."""

USER_COLUMNS = ("name", "email", "active", "role_id")
"""The columns a new user row fills (the key is generated)."""

NEW_USER_OFFSET = 10_000_000
"""Users added by a scenario are numbered from here, apart from the seeded ones."""


def role_name(index: int) -> str:
    """The name of role number `index` (0-based)."""
    return f"role {index}"


def role_id_of(number: int) -> int:
    """The role id of user number `number`: users are spread over every role."""
    return number % ROLE_COUNT + 1


def new_user(number: int) -> tuple[str, str, bool, int]:
    """(name, email, active, role_id) of user number `number`."""
    return (f"user {number}", f"user{number}@example.com", number % 3 != 0, role_id_of(number))


def renamed(name: str) -> str:
    """The change scenarios make to a user's name (together with flipping `active`)."""
    return name + " (edited)"


EDITED_PATTERN = "% (edited)"
"""A LIKE pattern matching the names `renamed` made."""
