"""What relations make a flush do, besides each entity's own columns.

Before a flush computes its change set, `RelationPlanner.plan`:
- adds the new entities reachable through relations (cascade on add);
- turns one-to-many collection changes into foreign keys: an appended child gets the owner
  in its back reference, a removed one loses it (or is removed, when the relation's rule is
  "cascade");
- follows the delete rules of removed entities: children removed ("cascade") or cleared
  ("set_null"), and many-to-many links removed;
- turns many-to-many collection changes into link rows to insert and delete.
Where it must know rows no query loaded (the children of a removed entity, the links of a
collection the user replaced), it asks the unit of work through the `Reader` callbacks; all
else is pure. Writes into entities go through `write`, which the unit of work logs so a
failed flush can put them back (GUARANTEES G2).

Called by `uow/unit_of_work.py` at flush and plan.
"""

from __future__ import annotations

import collections
import itertools
import operator
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from mapper.codec import PendingKey, WrongReference, entity_codec
from mapper.errors import ValidationError, Violation
from mapper.mapping import EntityMeta, RelationMeta, per_mapping
from mapper.placeholders import NotLoaded, NotLoadedReference, placeholder_key
from mapper.registry import Registry
from mapper.uow.changes import ChangeSet, Deletes, Insert
from mapper.uow.identity_map import IdentityMap
from mapper.uow.removals import Removals

__all__ = ["Collections", "Reader", "RelationPlanner", "link_value"]

Collections = dict[tuple[int, str], tuple[Any, ...]]
"""Members of each loaded collection as last loaded or flushed, by (id(owner), attribute)."""

Reader = Callable[[RelationMeta, Sequence[Any]], Awaitable[list[tuple[Any, Any]]]]
"""Reads (owner key, related entity) pairs of a relation for owners with the given keys."""


def link_value(entity: Any, meta: EntityMeta) -> Any:
    """The key a link row holds for `entity`: its key, or a pending key if it is new."""
    key = entity_codec(meta).key(entity)
    return PendingKey(entity) if key is None else key


class RelationPlanner:
    """Plans one flush's relation work; see the module docstring."""

    def __init__(
        self,
        *,
        registry: Registry,
        identity: IdentityMap,
        new: dict[int, tuple[EntityMeta, Any]],
        removed: Removals,
        collections: Collections,
        write: Callable[[Any, str, Any], None],
        read: Reader,
        changed: Mapping[EntityMeta, Sequence[Any]],
    ) -> None:
        self._registry = registry
        self._changed = changed
        self._identity = identity
        self._new = new
        self._removed = removed
        self._collections = collections
        self._write = write
        self._read = read
        self.links = ChangeSet()
        # Link rows planned, by the identities of the two entities: a link added (or
        # dropped) from both sides, or unlinked and removed, is written once.
        self._linked: set[tuple[int, int, int, str]] = set()

    # -- the whole plan -----------------------------------------------------------------

    async def plan(self) -> ChangeSet:
        """Apply the relation rules to the tracking state; return the link changes."""
        # One pass is enough: collection changes only write the back references of members
        # it already reached, and what they read from the database is stored, not new.
        self._cascade_adds()
        await self._collection_changes()
        await self._removals()
        return self.links

    def _metas_with_relations(self) -> list[EntityMeta]:
        return [meta for meta in self._registry.metas() if meta.relations]

    def _owners_of_remote_sides(self) -> list[tuple[EntityMeta, Any]]:
        """Tracked entities (held, then new) of mappings with collections or back sides."""
        owners: list[tuple[EntityMeta, Any]] = []
        sided = [meta for meta in self._metas_with_relations() if _remote_sides(meta)]
        for meta in sided:
            owners.extend((meta, e) for e in self._identity.table(meta).entities.values())
        if sided:  # most flushes of new rows have none: then nothing is read per row
            members = set(sided)
            owners.extend(item for item in self._new.values() if item[0] in members)
        return owners

    # -- cascade on add -------------------------------------------------------------------

    def _cascade_adds(self) -> None:
        """Add the new entities reachable from tracked ones, held or new."""
        # Breadth first, in the order entities were added: related new entities get their
        # keys in the order the user added what refers to them.
        added = [item for item in self._new.values() if item[0].relations]
        queue: collections.deque[tuple[EntityMeta, Any]] = collections.deque()
        for meta in self._metas_with_relations():
            held = self._identity.table(meta).entities
            if _remote_sides(meta):
                # A collection (or back side) can gain a new member with no column changing.
                self._reach(meta, held.values(), queue)
            else:
                # A reference to a new entity changes the foreign key (to a pending key),
                # so only entities whose columns changed can reach one.
                keys = self._changed.get(meta, ())
                self._reach(meta, [held[key] for key in keys if key in held], queue)
        # What the held entities reached, then what was added, in runs of one mapping: what
        # these reach in turn queues behind them all, as one entity at a time would.
        pending = [*queue, *added]
        queue.clear()
        for meta, run in itertools.groupby(pending, key=operator.itemgetter(0)):
            self._reach(meta, [entity for _, entity in run], queue)
        while queue:
            meta, entity = queue.popleft()
            self._reach(meta, (entity,), queue)

    def _reach(
        self,
        meta: EntityMeta,
        entities: Iterable[Any],
        queue: collections.deque[tuple[EntityMeta, Any]],
    ) -> None:
        # This visits every tracked entity, so it is written for speed: a member with a key
        # is stored (held or not), one without is new unless already added.
        new, removed = self._new, self._removed
        reaches = _reaches(meta)
        key_of = entity_codec(meta).key
        going = removed.of(meta)
        if going:  # what is being deleted adds nothing
            entities = [entity for entity in entities if key_of(entity) not in going]
        if len(reaches) == 1 and not reaches[0][1]:
            # One many-to-one (users -> role), the common case: one attribute read per entity.
            attribute, _, target, target_class, target_key = reaches[0]
            for entity in entities:
                value = getattr(entity, attribute)
                if type(value) is not target_class and (
                    value is None
                    or isinstance(value, NotLoaded)
                    or not isinstance(value, target_class)
                ):
                    continue
                if getattr(value, target_key) is None and id(value) not in new:
                    new[id(value)] = (target, value)
                    queue.append((target, value))
            return
        for entity in entities:
            for attribute, collection, target, target_class, target_key in reaches:
                value = getattr(entity, attribute)
                if value is None or isinstance(value, NotLoaded):
                    continue
                for member in value if collection else (value,):
                    if not isinstance(member, target_class):
                        continue  # the flush's checks name a wrong type
                    if getattr(member, target_key) is not None or id(member) in new:
                        continue
                    new[id(member)] = (target, member)
                    queue.append((target, member))

    # -- collections ----------------------------------------------------------------------

    async def _members_before(self, relation: RelationMeta, owner: Any) -> tuple[Any, ...]:
        """The collection as stored: its snapshot, or (if it was replaced unloaded) read."""
        snapshot = self._collections.get((id(owner), relation.attribute))
        if snapshot is not None:
            return snapshot
        if id(owner) in self._new:
            return ()
        key = entity_codec(relation.owner).key(owner)
        pairs = await self._read(relation, [key])
        stored = tuple(member for _, member in pairs)
        self._collections[(id(owner), relation.attribute)] = stored
        return stored

    async def _collection_changes(self) -> None:
        moves: list[tuple[RelationMeta, Any, list[Any], list[Any]]] = []
        # Collections of removed owners: their rules decide what happens to their members
        # and links, but a child moved into one belongs to that owner when the rule runs.
        into_removed: list[tuple[RelationMeta, Any, list[Any]]] = []
        wrong: list[Violation] = []  # members that are not the relation's entities
        removed, snapshots = self._removed, self._collections
        for meta, owner in self._owners_of_remote_sides():
            gone = bool(removed) and (meta, _key(meta, owner)) in removed
            for relation in _remote_sides(meta):
                if gone and (relation.remote is None or relation not in _delete_rules(meta)):
                    # Links: the rule unlinks what is stored. Restrict: the foreign key
                    # refuses while children exist, which only the stored ones can be.
                    continue
                current = getattr(owner, relation.attribute)
                if isinstance(current, NotLoaded):
                    continue
                if not relation.collection:  # the back side of a one-to-one
                    current = () if current is None else (current,)
                snapshot = snapshots.get((id(owner), relation.attribute))
                if snapshot is not None and _same(current, snapshot):
                    continue  # the common case, checked without building sets
                before = await self._members_before(relation, owner)
                added, dropped = _difference(current, before)
                strangers = [m for m in added if not isinstance(m, relation.target.entity)]
                if strangers:
                    wrong.extend(_stranger(meta, relation, member) for member in strangers)
                    continue
                if gone:
                    into_removed.append((relation, owner, added))
                elif relation.remote is not None:
                    moves.append((relation, owner, added, dropped))
                else:
                    self._link(relation, owner, added, dropped)
        if wrong:
            raise ValidationError(wrong)
        # Every child's new owner first, then what was dropped: a child moved from one
        # collection to another is kept, whichever owner comes first.
        for relation, owner, added, _ in moves:
            if relation.back is not None:
                for child in added:
                    if getattr(child, relation.back.attribute) is not owner:
                        self._write(child, relation.back.attribute, owner)
        # A removed owner gets only tracked children no live owner keeps: one the user
        # appended to two collections stays with the live owner, as without the removal.
        for relation, owner, added in into_removed:
            back = relation.back
            if back is None:
                continue
            for child in added:
                if (
                    getattr(child, back.attribute) is not owner
                    and self._tracked(relation.target, child)
                    and not self._stays(relation, back, child)
                ):
                    self._write(child, back.attribute, owner)
        for relation, owner, _, dropped in moves:
            if relation.back is not None:
                for child in dropped:
                    self._drop_child(relation, owner, child)

    def _tracked(self, meta: EntityMeta, entity: Any) -> bool:
        """Whether the unit of work holds `entity` or will insert it."""
        if id(entity) in self._new:
            return True
        key = entity_codec(meta).key(entity)
        return key is not None and self._identity.holds(meta, key, entity)

    def _stays(self, relation: RelationMeta, back: RelationMeta, child: Any) -> bool:
        """Whether `child`, added to a removed owner's side of `relation`, stays where its
        reference says: with a live owner that still holds it or whose side is not loaded
        (nothing says it let the child go), or with a value that is no owner at all, which
        the flush's checks then name."""
        reference = getattr(child, back.attribute)
        if reference is None:
            return False
        if isinstance(reference, NotLoadedReference):
            key = placeholder_key(reference)
            parent = self._identity.get(relation.owner, key)
        elif isinstance(reference, relation.owner.entity):
            parent, key = reference, _key(relation.owner, reference)
        else:
            return True
        if key is not None and (relation.owner, key) in self._removed:
            return False
        members = None if parent is None else getattr(parent, relation.attribute)
        if members is None or isinstance(members, NotLoaded):
            return True
        if relation.collection:
            return any(member is child for member in members)
        return members is child

    def _drop_child(self, relation: RelationMeta, owner: Any, child: Any) -> None:
        back = relation.back
        if back is None:
            return
        # A stored child read for a replaced collection refers to it by a placeholder.
        if not _points_at(getattr(child, back.attribute), owner, _key(relation.owner, owner)):
            return  # moved to another owner meanwhile
        if relation.on_delete == "cascade":
            self._remove(relation.target, child)
        else:
            self._write(child, back.attribute, None)

    def _link(
        self, relation: RelationMeta, owner: Any, added: list[Any], dropped: list[Any]
    ) -> None:
        link = relation.link
        if link is None:
            return
        owner_value = link_value(owner, relation.owner)
        for target in added:
            if self._first_time(relation, owner, target, "insert"):
                values = _link_row(relation, owner_value, link_value(target, relation.target))
                self.links.inserts.setdefault(link, []).append(Insert(None, values, ()))
        for target in dropped:
            self._unlink(relation, owner, target)

    def _first_time(self, relation: RelationMeta, owner: Any, target: Any, what: str) -> bool:
        first, second = _link_row(relation, owner, target)
        mark = (id(relation.link), id(first), id(second), what)
        if mark in self._linked:
            return False
        self._linked.add(mark)
        return True

    def _unlink(self, relation: RelationMeta, owner: Any, target: Any) -> None:
        link = relation.link
        if link is None or not self._first_time(relation, owner, target, "delete"):
            return
        owner_key = entity_codec(relation.owner).key(owner)
        target_key = entity_codec(relation.target).key(target)
        key = _link_row(relation, owner_key, target_key)
        deletes = self.links.deletes.get(link)
        if deletes is None:
            deletes = self.links.deletes[link] = Deletes([], [], None)
        deletes.append(None, key)

    # -- removals -------------------------------------------------------------------------

    def _remove(self, meta: EntityMeta, entity: Any) -> None:
        if id(entity) in self._new:
            del self._new[id(entity)]
            return
        key = entity_codec(meta).key(entity)
        if key is not None and self._identity.holds(meta, key, entity):
            self._removed.add(meta, key, entity)

    async def _removals(self) -> None:
        done: set[int] = set()
        ruled: dict[EntityMeta, bool] = {}  # whether a mapping has rules, asked once each
        while True:
            # Most removals follow no rule: ask each mapping once, before looking at entities.
            for meta, _ in self._removed.by_mapping():
                if meta not in ruled:
                    ruled[meta] = bool(_delete_rules(meta))
            if not any(ruled.values()):
                return
            pending = [
                (meta, entity)
                for meta, entity in self._removed.entities()
                if ruled[meta] and id(entity) not in done
            ]
            if not pending:
                return
            for meta, entity in pending:
                done.add(id(entity))
                for relation in _delete_rules(meta):
                    await self._follow_rule(relation, entity)

    async def _follow_rule(self, relation: RelationMeta, entity: Any) -> None:
        if relation.link is not None:
            for target in await self._current(relation, entity, stored=True):
                self._unlink(relation, entity, target)
            return
        if relation.back is None:
            return  # _delete_rules keeps only relations with a back side here
        back = relation.back.attribute
        owner_key = _key(relation.owner, entity)
        for child in await self._current(relation, entity, stored=False):
            # A child the user moved to another owner in this flush is left where it went.
            if not _points_at(getattr(child, back), entity, owner_key):
                continue
            if relation.on_delete == "cascade":
                self._remove(relation.target, child)
            else:
                self._write(child, back, None)

    async def _current(self, relation: RelationMeta, owner: Any, stored: bool) -> list[Any]:
        """The members of a removed owner: stored ones (read when the collection is not
        loaded), and unless `stored`, ones in its loaded collection and new entities that
        point at it."""
        snapshot = self._collections.get((id(owner), relation.attribute))
        if snapshot is not None:
            found = {id(m): m for m in snapshot}
        else:
            key = _key(relation.owner, owner)
            found = {id(m): m for _, m in await self._read(relation, [key])}
        if stored:
            return list(found.values())
        for member in _held(owner, relation):
            found.setdefault(id(member), member)
        back = relation.back
        if back is not None:
            for meta, entity in self._new.values():
                if meta is relation.target and getattr(entity, back.attribute) is owner:
                    found.setdefault(id(entity), entity)
        return list(found.values())


def _stranger(meta: EntityMeta, relation: RelationMeta, member: Any) -> Violation:
    """The violation of a collection (or one-to-one side) holding what is not its entity."""
    if relation.collection:
        expected = relation.target.name
        rule = f"expected {expected} entities in the collection, got {type(member).__name__}"
    else:
        rule = WrongReference(member, relation.target.entity).rule()
    return Violation(meta.name, relation.attribute, member, rule)


def _points_at(value: Any, owner: Any, owner_key: Any) -> bool:
    """Whether a child's reference (an entity or an unloaded placeholder) is `owner`."""
    if isinstance(value, NotLoadedReference):
        return bool(placeholder_key(value) == owner_key)
    return value is owner


_Reach = tuple[str, bool, EntityMeta, type, str]


@per_mapping
def _reaches(meta: EntityMeta) -> list[_Reach]:
    """Per relation: attribute, whether a collection, target, its class and key attribute."""
    return [
        (
            r.attribute,
            r.collection,
            r.target,
            r.target.entity,
            r.target.primary_key[0].attribute,  # relations point at single-column keys
        )
        for r in meta.relations.values()
    ]


@per_mapping
def _delete_rules(meta: EntityMeta) -> list[RelationMeta]:
    """The relations a removal of a `meta` entity must follow: many-to-many links, and
    one-to-many (or one-to-one) children to delete or clear. Many-to-ones have nothing to
    follow, and "restrict" leaves it to the foreign key, which refuses while children exist."""
    return [
        r
        for r in meta.relations.values()
        if r.link is not None
        or (r.remote is not None and r.on_delete != "restrict" and r.back is not None)
    ]


@per_mapping
def _remote_sides(meta: EntityMeta) -> list[RelationMeta]:
    """Collections and one-to-one back sides; many-to-ones are left out: their own foreign
    key column says it all."""
    return [r for r in meta.relations.values() if r.collection or r.remote is not None]


def _held(entity: Any, relation: RelationMeta) -> list[Any]:
    value = getattr(entity, relation.attribute)
    if value is None or isinstance(value, NotLoaded):
        return []
    return list(value) if relation.collection else [value]


def _same(current: Any, before: tuple[Any, ...]) -> bool:
    """Whether a collection holds the very members it held, in the same order."""
    return len(current) == len(before) and all(a is b for a, b in zip(current, before, strict=True))


def _difference(current: Iterable[Any], before: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """Members added and dropped, by identity, in the collection's order."""
    now = {id(member): member for member in current}
    then = {id(member): member for member in before}
    added = [member for key, member in now.items() if key not in then]
    dropped = [member for key, member in then.items() if key not in now]
    return added, dropped


def _link_row(relation: RelationMeta, owner: Any, target: Any) -> tuple[Any, Any]:
    """A link row's values in the link table's column order."""
    link = relation.link
    if link is not None and link.primary_key[0] is relation.link_owner:
        return (owner, target)
    return (target, owner)


def _key(meta: EntityMeta, entity: Any) -> Any:
    return entity_codec(meta).key(entity)
