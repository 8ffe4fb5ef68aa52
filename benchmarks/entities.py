"""The domain entities of the benchmark: plain, slotted attrs classes, as mapper's users write.

Used by the mapper system (mapped by `systems/mapper_system.py`) and the hand-written layers,
which build them by hand. SQLAlchemy cannot map slotted classes, so it maps copies with the
same fields (`systems/sqlalchemy_orm.py` says why); Tortoise and DotORM have their own model
classes by design.
"""

from __future__ import annotations

import attrs

__all__ = ["Role", "User"]


@attrs.define
class Role:
    name: str
    id: int | None = None


@attrs.define
class User:
    name: str
    email: str
    active: bool = True
    role: Role | None = None
    id: int | None = None
