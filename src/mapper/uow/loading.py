"""Turning rows into entities through the identity map.

Every loaded row goes through the unit of work's identity map: a row whose key is already
there yields the object the unit of work holds (its unflushed changes survive), any other
row becomes a new entity with a snapshot of its values. Untracked loading (streams) builds
entities without keeping them, so memory stays flat. The helpers below plan and apply
`load=` of relations, level by level: which keys to fetch, and where the fetched entities
go (only placeholders are replaced, so nothing the user changed is overwritten).

Pure. Called by `uow/unit_of_work.py`, which runs the queries.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mapper.codec import compile_function, entity_codec, reference_kind, write_attribute
from mapper.mapping import EntityMeta, RelationMeta, per_mapping
from mapper.placeholders import NotLoaded
from mapper.uow.collector import collector_paused
from mapper.uow.identity_map import IdentityMap

__all__ = [
    "fill_references",
    "foreign_keys_to_load",
    "group_members",
    "LoadTree",
    "load_tree",
    "materialize",
    "related_entities",
    "row_key",
    "unloaded",
]


@per_mapping
def row_key(meta: EntityMeta) -> Callable[[Sequence[Any]], Any]:
    """Reads the identity-map key (bare value, or tuple for composite keys) from a row."""
    # itemgetter of several positions returns a tuple: the composite key.
    return operator.itemgetter(*[c.position for c in meta.primary_key])


def materialize(
    identity: IdentityMap, meta: EntityMeta, rows: Sequence[Sequence[Any]], track: bool = True
) -> list[Any]:
    """The entities for `rows` (Python values in column order), one object per key."""
    entries = identity.table(meta)
    with collector_paused(len(rows)):
        return entity_codec(meta).materialize(rows, entries.entities, entries.snapshots, track)


# -- relations ---------------------------------------------------------------------------------

Path = tuple[Any, ...]
"""A `load=` item as a tuple of relation declarations: (UserMap.role, RoleMap.permissions)."""


LoadTree = dict[RelationMeta, "LoadTree"]


def load_tree(meta: EntityMeta, load: Iterable[Any]) -> LoadTree:
    """`load=[A.x, (A.x, B.y), A.z]` as a tree {x: {y: {}}, z: {}} of compiled relations.

    Built before any query runs, so a bad `load=` fails without reading anything.
    """
    tree: LoadTree = {}
    for item in load:
        path = item if isinstance(item, tuple) else (item,)
        node, owner = tree, meta
        for reference in path:
            if not getattr(reference, "kind", None):
                raise TypeError(
                    f"load= takes relations of mappings (UserMap.role) or tuples of them, "
                    f"got {reference!r}"
                )
            relation = owner.relation_of(reference)
            node = node.setdefault(relation, {})
            owner = relation.target
    return tree


def unloaded(entities: Iterable[Any], relation: RelationMeta) -> list[Any]:
    """The entities whose relation attribute still holds a placeholder."""
    attribute = relation.attribute
    return [e for e in entities if isinstance(getattr(e, attribute), NotLoaded)]


def related_entities(entities: Iterable[Any], relation: RelationMeta) -> list[Any]:
    """What the relation holds for `entities` (loaded ones only), each entity once."""
    seen: dict[int, Any] = {}
    attribute = relation.attribute
    for entity in entities:
        value = getattr(entity, attribute)
        if isinstance(value, NotLoaded) or value is None:
            continue
        for item in value if relation.collection else (value,):
            seen.setdefault(id(item), item)
    return list(seen.values())


def foreign_keys_to_load(owners: Sequence[Any], relation: RelationMeta) -> list[Any]:
    """The distinct foreign keys many-to-one placeholders of `owners` carry."""
    return _reference_loops(relation)[0](owners)


def fill_references(identity: IdentityMap, owners: Sequence[Any], relation: RelationMeta) -> None:
    """Replace many-to-one placeholders with the held targets (None if the row is gone)."""
    _reference_loops(relation)[1](owners, identity.table(relation.target).entities.get)


_ReferenceLoops = tuple[
    Callable[[Sequence[Any]], list[Any]], Callable[[Sequence[Any], Callable[[Any], Any]], None]
]


def _reference_loops(relation: RelationMeta) -> _ReferenceLoops:
    """The two passes of a many-to-one load over its owners, compiled per relation.

    Every owner of a `load=` goes through both, once to collect foreign keys and once to
    put the targets in; read and written by name, an attribute costs half as much as
    through `getattr` and `object.__setattr__` (entities of the mapped class whose
    `__setattr__` is the plain one; others, frozen or validating, go through
    `write_attribute`, as the mapper writes everywhere).
    """
    made = _reference_loops_of(relation.owner)
    found = made.get(relation.attribute)
    if found is not None:
        return found
    entity = relation.owner.entity
    attribute = relation.attribute
    plain = entity.__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
    store = f"        _set(o, {attribute!r}, target)\n"
    if plain:
        direct = f"            o.{attribute} = target\n"
        store = f"        if type(o) is _cls:\n{direct}        else:\n    {store}"
    source = (
        "def keys(owners):\n"
        "    found = {}\n"
        "    for o in owners:\n"
        f"        v = o.{attribute}\n"
        "        if type(v) is _Ref:\n"
        "            found[v._mapper_key] = None\n"
        "    return list(found)\n"
        "def fill(owners, held):\n"
        "    for o in owners:\n"
        f"        v = o.{attribute}\n"
        "        if type(v) is not _Ref:\n"
        "            continue\n"
        "        target = held(v._mapper_key)\n"
        f"{store}"
    )
    namespace: dict[str, Any] = {
        "_Ref": reference_kind(relation),  # this relation's placeholders, not another's
        "_cls": entity,
        "_set": write_attribute,
    }
    keys = compile_function("keys", source, namespace)
    loops: _ReferenceLoops = (keys, namespace["fill"])
    made[relation.attribute] = loops
    return loops


@per_mapping
def _reference_loops_of(meta: EntityMeta) -> dict[str, _ReferenceLoops]:
    """The `_reference_loops` made so far for the many-to-ones of `meta`, by attribute."""
    return {}


def group_members(
    identity: IdentityMap,
    owners: Sequence[Any],
    relation: RelationMeta,
    members: Sequence[tuple[Any, Any]],
) -> dict[int, list[Any]]:
    """Members by owner (id), each list in the order of the members' keys."""
    owner_key = entity_codec(relation.owner).key
    by_key: dict[Any, list[Any]] = {owner_key(owner): [] for owner in owners}
    member_key = entity_codec(relation.target).key
    for key, member in sorted(members, key=lambda pair: _sortable(member_key(pair[1]))):
        if key in by_key:
            by_key[key].append(member)
    return {id(owner): by_key[owner_key(owner)] for owner in owners}


def _sortable(key: Any) -> Any:
    return (0, key) if key is not None else (1, 0)
