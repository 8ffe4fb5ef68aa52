"""Unit tests of `mapper.uow.loading`'s many-to-one passes: collecting the foreign keys that
placeholders carry, and putting the held targets in their place."""

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mapper import Column, EntityMap, ManyToOne, Registry
from mapper import types as t
from mapper.mapping import EntityMeta
from mapper.placeholders import NotLoadedReference
from mapper.uow.identity_map import IdentityMap
from mapper.uow.loading import fill_references, foreign_keys_to_load, materialize


def _refuse(*_: Any) -> None:
    raise AssertionError("a validator ran")


# (class decorator, whether `team` has a validator, which gives attrs' own __setattr__)
STYLES: dict[str, tuple[Callable[[type], type], bool]] = {
    "slotted": (attrs.define, False),
    "dict": (attrs.define(slots=False), False),
    "frozen": (attrs.frozen, False),
    "validating": (attrs.define, True),
}


@pytest.fixture(params=sorted(STYLES))
def metas(request: pytest.FixtureRequest) -> tuple[EntityMeta, EntityMeta]:
    """(member, team) metadata: a member's many-to-one `team`, in each entity style."""
    style, validating = STYLES[request.param]

    @style
    class Team:
        name: str
        id: int | None = None

    @style
    class Member:
        name: str
        team: Any = attrs.field(default=None, validator=_refuse if validating else None)
        id: int | None = None

    registry = Registry()

    @registry.map
    class TeamMap(EntityMap[Team]):  # type: ignore[valid-type]
        __table__ = "teams"
        id = Column(t.Integer(), primary_key=True, generated=True)
        name = Column(t.String(20))

    @registry.map
    class MemberMap(EntityMap[Member]):  # type: ignore[valid-type]
        __table__ = "members"
        id = Column(t.Integer(), primary_key=True, generated=True)
        name = Column(t.String(20))
        team = ManyToOne(Team, column="team_id")

    return registry.meta(Member), registry.meta(Team)


def loaded_members(identity: IdentityMap, member: EntityMeta) -> list[Any]:
    """Four members as a query loads them: teams 7, 7, none and 8, not loaded."""
    rows = [(1, "ann", 7), (2, "bob", 7), (3, "cy", None), (4, "dee", 8)]
    return materialize(identity, member, rows)


def hold(identity: IdentityMap, team: EntityMeta, key: int, name: str) -> Any:
    entity = team.entity(name, key)
    identity.put(team, key, entity, (key, name))
    return entity


class TestForeignKeysToLoad:
    def test_distinct_keys_of_placeholders_in_owner_order(
        self, metas: tuple[EntityMeta, EntityMeta]
    ) -> None:
        """Each foreign key once, in the order owners carry them; a NULL one is no key."""
        member, _ = metas
        owners = loaded_members(IdentityMap(), member)
        assert foreign_keys_to_load(owners, member.relations["team"]) == [7, 8]

    def test_owners_holding_an_entity_ask_nothing(
        self, metas: tuple[EntityMeta, EntityMeta]
    ) -> None:
        """An owner whose relation holds an entity (loaded, or set by the user) is skipped."""
        member, team = metas
        owners = loaded_members(IdentityMap(), member)
        object.__setattr__(owners[3], "team", team.entity("new"))
        assert foreign_keys_to_load(owners, member.relations["team"]) == [7]


class TestFillReferences:
    def test_placeholders_become_the_held_targets(
        self, metas: tuple[EntityMeta, EntityMeta]
    ) -> None:
        """Every owner of a key gets the one held target; a NULL key stays None."""
        member, team = metas
        identity = IdentityMap()
        owners = loaded_members(identity, member)
        seven, eight = hold(identity, team, 7, "seven"), hold(identity, team, 8, "eight")
        fill_references(identity, owners, member.relations["team"])
        assert [owner.team for owner in owners] == [seven, seven, None, eight]
        assert owners[0].team is seven and owners[1].team is seven

    def test_a_target_row_gone_leaves_none(self, metas: tuple[EntityMeta, EntityMeta]) -> None:
        """A foreign key whose row the query did not find becomes None, not a placeholder."""
        member, team = metas
        identity = IdentityMap()
        owners = loaded_members(identity, member)
        hold(identity, team, 7, "seven")
        fill_references(identity, owners, member.relations["team"])
        assert owners[3].team is None

    def test_what_the_user_set_is_kept(self, metas: tuple[EntityMeta, EntityMeta]) -> None:
        """Only placeholders are replaced: a target the user assigned stays."""
        member, team = metas
        identity = IdentityMap()
        owners = loaded_members(identity, member)
        mine = team.entity("mine")
        object.__setattr__(owners[0], "team", mine)
        seven = hold(identity, team, 7, "seven")
        fill_references(identity, owners, member.relations["team"])
        assert owners[0].team is mine and owners[1].team is seven

    def test_a_subclass_setattr_is_bypassed(self, metas: tuple[EntityMeta, EntityMeta]) -> None:
        """An owner of a subclass with its own __setattr__ is written as the mapper writes."""
        member, team = metas

        class Strict(member.entity):  # type: ignore[name-defined,misc]
            def __setattr__(self, name: str, value: Any) -> None:
                _refuse()

        identity = IdentityMap()
        (owner,) = materialize(identity, member, [(1, "ann", 7)])
        strict = object.__new__(Strict)
        for field in attrs.fields(member.entity):
            object.__setattr__(strict, field.name, getattr(owner, field.name))
        assert isinstance(strict.team, NotLoadedReference)
        seven = hold(identity, team, 7, "seven")
        fill_references(identity, [strict, owner], member.relations["team"])
        assert strict.team is seven and owner.team is seven
