"""Placeholders for relations no query loaded (DESIGN principle 2: no hidden I/O).

A loaded entity's relation attribute holds one of these until `load=` or `uow.load()` fills
it: any use (attribute access, truth, comparison, iteration, len, append, ...) raises
`RelationNotLoaded` naming the relation and the `load=` that fixes it, and the repr says it
is not loaded. It is never a silent None or an empty list. A many-to-one placeholder carries
the foreign key the row holds, so an untouched placeholder writes nothing at flush.

Pure. Built by `codec.py` for loaded rows; replaced by `uow/loading.py`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NoReturn

from mapper.errors import RelationNotLoaded

__all__ = [
    "NotLoaded",
    "NotLoadedCollection",
    "NotLoadedReference",
    "is_placeholder",
    "placeholder_key",
]


class NotLoaded:
    """Base of the placeholders, standing for a compiled RelationMeta.

    Its own state sits in slots with unlikely names, so no attribute name a user might try
    reaches it; slots are found before `__getattr__` refuses, so the mapper reads them plainly.
    """

    __slots__ = ("_mapper_relation",)

    def __init__(self, relation: Any) -> None:
        object.__setattr__(self, "_mapper_relation", relation)

    def _refuse(self) -> NoReturn:
        relation = object.__getattribute__(self, "_mapper_relation")
        raise RelationNotLoaded(relation.label, relation.load_hint)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocol probes (copy, pickle) see a plain object
        self._refuse()

    def __setattr__(self, name: str, value: Any) -> None:
        self._refuse()

    def __bool__(self) -> bool:  # noqa: PLE0304 - it never returns: it refuses
        self._refuse()

    def __eq__(self, other: object) -> bool:
        self._refuse()

    def __ne__(self, other: object) -> bool:
        self._refuse()

    def __hash__(self) -> int:  # noqa: PLE0309
        self._refuse()

    def __iter__(self) -> Any:
        self._refuse()

    def __len__(self) -> int:  # noqa: PLE0303
        self._refuse()

    def __contains__(self, item: object) -> bool:
        self._refuse()

    def __getitem__(self, index: Any) -> Any:
        self._refuse()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._refuse()

    def __delitem__(self, index: Any) -> None:
        self._refuse()

    def __iadd__(self, other: Any) -> Any:
        self._refuse()

    def __add__(self, other: Any) -> Any:
        self._refuse()

    def __repr__(self) -> str:
        relation = object.__getattribute__(self, "_mapper_relation")
        return f"<{relation.label} not loaded; use {relation.load_hint}>"


class NotLoadedReference(NotLoaded):
    """A many-to-one (or owning one-to-one) relation not loaded, with the row's foreign key."""

    __slots__ = ("_mapper_key",)

    def __init__(self, relation: Any, key: Any) -> None:
        super().__init__(relation)
        object.__setattr__(self, "_mapper_key", key)


class NotLoadedCollection(NotLoaded):
    """A one-to-many or many-to-many relation not loaded (append, remove, ... raise too)."""

    __slots__ = ()

    def append(self, item: Any) -> None:
        self._refuse()

    def extend(self, items: Any) -> None:
        self._refuse()

    def remove(self, item: Any) -> None:
        self._refuse()

    def insert(self, index: int, item: Any) -> None:
        self._refuse()

    def pop(self, index: int = -1) -> Any:
        self._refuse()

    def clear(self) -> None:
        self._refuse()


def is_placeholder(value: object) -> bool:
    """Whether `value` is an unloaded relation's placeholder (without using it)."""
    return isinstance(value, NotLoaded)


placeholder_key: Callable[[NotLoadedReference], Any] = operator.attrgetter("_mapper_key")
"""The foreign key a many-to-one placeholder carries (a slot, so reading it never refuses);
read once per loaded row, hence a C-level getter."""
