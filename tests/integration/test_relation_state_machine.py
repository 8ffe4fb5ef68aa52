"""P1 for relations: random sequences of relation operations, checked against a plain model.

A Hypothesis `RuleBasedStateMachine` works on clubs, people and badges through one unit of
work at a time: a person belongs to at most one club (`Person.club`, a nullable many-to-one;
`Club.members`, its one-to-many with the set-null rule) and wears any badges
(`Person.badges` / `Badge.wearers`, one many-to-many seen from both sides). Every step uses
the public API only: `load=` on `find`, assignment to a reference, append and remove on a
collection from either side, `add` with new related entities (cascade), `remove` (delete
rules and links), flush, commit, rollback, and a fault injected before statement k of the
next flush.

The model is three plain collections of names: the club of each person and the set of
(person, badge) links, as committed and as the open unit of work sees them. Each unit of
work starts by loading everything with `load=` (asserting one query per relation), so every
rule can reach every entity. After each commit, rollback or failed flush the stored rows are
read back by a fresh unit of work and compared with the committed model; while a unit of work
is open, the loaded object graph is compared with the working model after every step.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mapper import (
    Column,
    Database,
    EntityMap,
    ManyToMany,
    ManyToOne,
    OneToMany,
    Registry,
    StatementEvent,
    UnitOfWork,
    connect,
)
from mapper import types as t
from tests.integration.conftest import backend_url


@attrs.define(eq=False)
class Club:
    name: str
    members: list[Person] = attrs.Factory(list)
    id: int | None = None


@attrs.define(eq=False)
class Person:
    name: str
    club: Club | None = None
    badges: list[Badge] = attrs.Factory(list)
    id: int | None = None


@attrs.define(eq=False)
class Badge:
    label: str
    wearers: list[Person] = attrs.Factory(list)
    id: int | None = None


registry = Registry()


@registry.map
class ClubMap(EntityMap[Club]):
    __table__ = "smr_clubs"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20), unique=True)
    members = OneToMany(Person, back="club", on_delete="set_null")


@registry.map
class PersonMap(EntityMap[Person]):
    __table__ = "smr_people"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20), unique=True)
    club = ManyToOne(Club, column="club_id")
    badges = ManyToMany(Badge, through="smr_badges_worn")


@registry.map
class BadgeMap(EntityMap[Badge]):
    __table__ = "smr_badges"
    id = Column(t.Integer(), primary_key=True, generated=True)
    label = Column(t.String(20), unique=True)
    wearers = ManyToMany(Person, through="smr_badges_worn")


class InjectedFault(Exception):
    """Raised by the statement hook before the statement a fault rule chose."""


@attrs.define
class World:
    """What is stored (or seen by the open unit of work), by name."""

    clubs: set[str] = attrs.Factory(set)
    people: dict[str, str | None] = attrs.Factory(dict)  # person -> club
    badges: set[str] = attrs.Factory(set)
    worn: set[tuple[str, str]] = attrs.Factory(set)  # (person, badge)

    def copy(self) -> World:
        return World(set(self.clubs), dict(self.people), set(self.badges), set(self.worn))


@attrs.define
class Tally:
    examples: int = 0
    steps: int = 0
    commits: int = 0
    faults: int = 0
    checks: int = 0


names = itertools.count()


class RelationMachine(RuleBasedStateMachine):
    """One unit of work at a time; the object graph and the rows compared with `World`."""

    url: ClassVar[str]
    tally: ClassVar[Tally]

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.db: Database = self.run(self._open())
        self.committed = World()
        self.world = World()
        self.uow: UnitOfWork | None = None
        self.clubs: dict[str, Club] = {}
        self.people: dict[str, Person] = {}
        self.badges: dict[str, Badge] = {}
        self.fault_at: int | None = None
        self.cascaded: set[str] = set()  # new clubs only reachable through a new person
        # Clubs added since the last flush. Removing a new entity only forgets it, and a
        # new person pointing at it adds it again (cascade follows what is reachable, as
        # SQLAlchemy's save-update cascade does), so only stored clubs are removed here.
        self.unflushed: set[str] = set()
        # People moved since the last flush. A flush compares a collection with what it
        # held before, so a move back and forth through collections nets to nothing while
        # the reference changed: the graph disagrees with itself. Such people move by
        # reference only.
        self.moved: set[str] = set()
        self.selects = 0
        self.db.on_statement(self._hook, when="before")
        self.tally.examples += 1

    def run(self, awaitable: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await awaitable

        return self.runner.run(wrapped())

    async def _open(self) -> Database:
        db = await connect(self.url, pool_max=4)
        await db.drop_all(registry)
        await db.create_all(registry)
        return db

    def teardown(self) -> None:
        try:
            if self.uow is not None:
                self.run(self.uow.close())
            self.run(self.db.close())
        finally:
            self.runner.close()

    def _hook(self, event: StatementEvent) -> None:
        if event.operation == "select":
            self.selects += 1
        if self.fault_at is not None and event.operation in ("insert", "update", "delete"):
            self.fault_at -= 1
            if self.fault_at == 0:
                self.fault_at = None
                raise InjectedFault(f"fault before {event.operation} of {event.table}")

    # -- the unit of work -------------------------------------------------------------------

    def _begin(self) -> UnitOfWork:
        """Open a unit of work and load everything, one query per relation."""
        if self.uow is not None:
            return self.uow
        uow = UnitOfWork(self.db, registry)
        before = self.selects
        clubs = self.run(uow.repository(Club).find(load=[ClubMap.members]))
        people = self.run(uow.repository(Person).find(load=[PersonMap.club, PersonMap.badges]))
        badges = self.run(uow.repository(Badge).find(load=[BadgeMap.wearers]))
        # Three queries and at most one per relation (four), whatever the number of rows.
        assert self.selects - before <= 7, self.selects - before
        self.uow = uow
        self.clubs = {c.name: c for c in clubs}
        self.people = {p.name: p for p in people}
        self.badges = {b.label: b for b in badges}
        assert self._seen() == self.committed, (self._seen(), self.committed)
        return uow

    def _end(self, world: World) -> None:
        self.uow = None
        self.cascaded.clear()
        self.unflushed.clear()
        self.moved.clear()
        self.world = world.copy()
        self.committed = world.copy()
        self.clubs, self.people, self.badges = {}, {}, {}
        self.run(self._check_stored())

    async def _check_stored(self) -> None:
        """A fresh unit of work reads exactly the committed model back."""
        async with UnitOfWork(self.db, registry) as uow:
            people = await uow.repository(Person).find(load=[PersonMap.club, PersonMap.badges])
            stored = World(
                {c.name for c in await uow.repository(Club).find()},
                {p.name: p.club.name if p.club else None for p in people},
                {b.label for b in await uow.repository(Badge).find()},
                {(p.name, b.label) for p in people for b in p.badges},
            )
        self.tally.checks += 1
        assert stored == self.committed, (stored, self.committed)

    # A new club reached only through a new person's reference (cascade) is not in the unit
    # of work until a flush: its own collection is not read, and it stays only while that
    # person points at it. Until then the person keeps it and no one else joins it.

    def _seen(self) -> World:
        """The working model as the loaded object graph shows it."""
        return World(
            set(self.clubs),
            {n: p.club.name if p.club else None for n, p in self.people.items()},
            set(self.badges),
            {(n, b.label) for n, p in self.people.items() for b in p.badges},
        )

    @invariant()
    def count_steps(self) -> None:
        self.tally.steps += 1

    def _check_graph(self) -> None:
        """After a flush the graph is settled: references, both sides of every collection."""
        assert self._seen() == self.world, (self._seen(), self.world)
        for name, club in self.clubs.items():
            assert sorted(p.name for p in club.members) == sorted(
                p for p, c in self.world.people.items() if c == name
            )
        for label, badge in self.badges.items():
            assert sorted(p.name for p in badge.wearers) == sorted(
                p for p, b in self.world.worn if b == label
            )

    # -- adding -----------------------------------------------------------------------------

    @rule()
    def add_club(self) -> None:
        uow = self._begin()
        club = Club(f"c{next(names)}")
        uow.repository(Club).add(club)
        self.unflushed.add(club.name)
        self.clubs[club.name] = club
        self.world.clubs.add(club.name)

    @rule(data=st.data(), new_club=st.booleans())
    def add_person(self, data: st.DataObject, new_club: bool) -> None:
        """A new person, in a club (new ones arrive by cascade) or none."""
        uow = self._begin()
        person = Person(f"p{next(names)}")
        club = None
        if new_club:
            club = Club(f"c{next(names)}")
            self.clubs[club.name] = club
            self.world.clubs.add(club.name)
            self.cascaded.add(club.name)
            self.unflushed.add(club.name)
        elif self.clubs and data.draw(st.booleans()):
            club = self.clubs[data.draw(st.sampled_from(sorted(self.clubs)))]
        if club is not None:
            person.club = club
            club.members.append(person)
        uow.repository(Person).add(person)
        self.people[person.name] = person
        self.world.people[person.name] = club.name if club else None

    @rule(data=st.data())
    def add_badge(self, data: st.DataObject) -> None:
        """A new badge, maybe worn at once by a person (added by cascade from the badge)."""
        uow = self._begin()
        badge = Badge(f"b{next(names)}")
        if self.people and data.draw(st.booleans()):
            person = self.people[data.draw(st.sampled_from(sorted(self.people)))]
            badge.wearers.append(person)
            person.badges.append(badge)
            self.world.worn.add((person.name, badge.label))
        uow.repository(Badge).add(badge)
        self.badges[badge.label] = badge
        self.world.badges.add(badge.label)

    # -- changing relations -----------------------------------------------------------------

    def _free(self) -> list[str]:
        """People not holding a club that only they make reachable (see `cascaded`)."""
        return sorted(p for p in self.people if self.world.people[p] not in self.cascaded)

    @precondition(lambda self: self._free())
    @rule(data=st.data(), through_collection=st.booleans())
    def move_person(self, data: st.DataObject, through_collection: bool) -> None:
        """Into another club (or none): by the reference, or by the two collections."""
        self._begin()
        name = data.draw(st.sampled_from(self._free()))
        person = self.people[name]
        choices = [None, *sorted(set(self.clubs) - self.cascaded)]
        target_name = data.draw(st.sampled_from(choices))
        target = None if target_name is None else self.clubs[target_name]
        old_name = self.world.people[name]
        if old_name == target_name:
            return
        old = None if old_name is None else self.clubs[old_name]
        if old is not None:
            old.members.remove(person)
        if target is not None:
            target.members.append(person)
        if not through_collection or target is None or name in self.moved:
            # Removing from a set-null collection clears the key; a plain assignment does too.
            person.club = target
        self.world.people[name] = target_name
        self.moved.add(name)

    @precondition(lambda self: self.people and self.badges)
    @rule(data=st.data())
    def toggle_badge(self, data: st.DataObject) -> None:
        """Put a badge on or take it off, on both sides (the link is written once)."""
        self._begin()
        person = self.people[data.draw(st.sampled_from(sorted(self.people)))]
        badge = self.badges[data.draw(st.sampled_from(sorted(self.badges)))]
        link = (person.name, badge.label)
        wearing = link in self.world.worn
        for collection, member in ((person.badges, badge), (badge.wearers, person)):
            if wearing:
                collection.remove(member)
            else:
                collection.append(member)
        (self.world.worn.discard if wearing else self.world.worn.add)(link)

    # -- removing ---------------------------------------------------------------------------

    @precondition(lambda self: self._free())
    @rule(data=st.data())
    def remove_person(self, data: st.DataObject) -> None:
        """Removing a person removes their links; their club just loses a member."""
        uow = self._begin()
        name = data.draw(st.sampled_from(self._free()))
        person = self.people.pop(name)
        club_name = self.world.people[name]
        if club_name is not None:
            self.clubs[club_name].members.remove(person)
        for badge in person.badges:
            badge.wearers.remove(person)
        uow.repository(Person).remove(person)
        del self.world.people[name]
        self.world.worn = {(p, b) for p, b in self.world.worn if p != name}

    @precondition(lambda self: set(self.clubs) - self.unflushed)
    @rule(data=st.data())
    def remove_club(self, data: st.DataObject) -> None:
        """Removing a club clears the club of its members (set_null), new ones included."""
        uow = self._begin()
        name = data.draw(st.sampled_from(sorted(set(self.clubs) - self.unflushed)))
        club = self.clubs.pop(name)
        uow.repository(Club).remove(club)
        self.world.clubs.discard(name)
        for person, club_name in self.world.people.items():
            if club_name == name:
                self.world.people[person] = None

    @precondition(lambda self: self.badges)
    @rule(data=st.data())
    def remove_badge(self, data: st.DataObject) -> None:
        """Removing a badge removes its links (the people keep it in their lists until
        they drop it, so this rule drops it for them: a flush must not write it again)."""
        uow = self._begin()
        label = data.draw(st.sampled_from(sorted(self.badges)))
        badge = self.badges.pop(label)
        for person in self.people.values():
            if badge in person.badges:
                person.badges.remove(badge)
        uow.repository(Badge).remove(badge)
        self.world.badges.discard(label)
        self.world.worn = {(p, b) for p, b in self.world.worn if b != label}

    # -- ending -----------------------------------------------------------------------------

    @precondition(lambda self: self.uow is not None)
    @rule()
    def flush(self) -> None:
        assert self.uow is not None
        self.run(self.uow.flush())
        self.cascaded.clear()
        self.unflushed.clear()
        self.moved.clear()
        # Moves made through collections and the set-null rule of removed clubs are now
        # in the references too.
        self._check_graph()

    @precondition(lambda self: self.uow is not None)
    @rule()
    def commit(self) -> None:
        assert self.uow is not None
        self.run(self.uow.commit())
        self.run(self.uow.close())
        self.tally.commits += 1
        self._end(self.world)

    @precondition(lambda self: self.uow is not None)
    @rule()
    def rollback(self) -> None:
        assert self.uow is not None
        self.run(self.uow.rollback())
        self.run(self.uow.close())
        self._end(self.committed)

    @precondition(lambda self: self.uow is not None)
    @rule(k=st.integers(min_value=1, max_value=6))
    def fault_in_commit(self, k: int) -> None:
        """Statement k of the commit's flush fails: nothing it began is stored."""
        assert self.uow is not None
        self.fault_at = k
        try:
            self.run(self.uow.commit())
        except InjectedFault:
            self.tally.faults += 1
            self.run(self.uow.close())
            self._end(self.committed)
            return
        finally:
            self.fault_at = None
        # Fewer than k writes: the commit went through.
        self.run(self.uow.close())
        self.tally.commits += 1
        self._end(self.world)


@pytest.mark.timeout(900)
def test_relations_match_a_plain_model(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Random relation operations leave rows and object graphs where the model says."""
    tally = Tally()
    machine = type(
        f"RelationMachine_{backend}",
        (RelationMachine,),
        {"url": backend_url(backend, tmp_path), "tally": tally},
    )
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=settings.default.max_examples,
                stateful_step_count=30,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        with capsys.disabled():
            print(
                f"\nrelations on {backend}: {tally.examples} examples, {tally.steps} steps, "
                f"{tally.commits} commits, {tally.faults} faults, {tally.checks} stored checks"
            )
    assert tally.examples > 0 and tally.checks > 0
