"""Removals: entities to delete at the next flush, per mapping (`uow/removals.py`)."""

from __future__ import annotations

import attrs
import pytest

from mapper import Column, EntityMap, Registry
from mapper import types as t
from mapper.uow.removals import Removals


@attrs.define
class Crate:
    id: int


@attrs.define
class Pallet:
    id: int


registry = Registry()


@registry.map
class CrateMap(EntityMap[Crate]):
    __table__ = "crates"
    id = Column(t.Integer(), primary_key=True)


@registry.map
class PalletMap(EntityMap[Pallet]):
    __table__ = "pallets"
    id = Column(t.Integer(), primary_key=True)


crates, pallets = registry.meta(Crate), registry.meta(Pallet)


def test_removals_are_kept_per_mapping_by_key() -> None:
    """add_all and add file entities under their mapping and key; of() gives them back."""
    removals = Removals()
    first, second, pallet = Crate(1), Crate(2), Pallet(1)
    removals.add_all(crates, [1, 2], [first, second])
    removals.add(pallets, 1, pallet)
    assert dict(removals.of(crates)) == {1: first, 2: second}
    assert (crates, 2) in removals
    assert (pallets, 2) not in removals
    assert len(removals) == 3
    assert [meta for meta, _ in removals.by_mapping()] == [crates, pallets]
    assert removals.entities() == [(crates, first), (crates, second), (pallets, pallet)]


def test_entities_come_back_in_the_order_they_were_removed() -> None:
    """Across mappings, entities() follows the calls; one removed again after it was added
    back comes where it was removed again."""
    removals = Removals()
    first, second, third, pallet = Crate(1), Crate(2), Crate(3), Pallet(1)
    removals.add(crates, 1, first)
    removals.add(pallets, 1, pallet)
    removals.add_all(crates, [2, 3], [second, third])
    assert removals.entities() == [
        (crates, first),
        (pallets, pallet),
        (crates, second),
        (crates, third),
    ]
    removals.discard(crates, 1)
    assert removals.entities() == [(pallets, pallet), (crates, second), (crates, third)]
    removals.add(crates, 1, first)
    assert removals.entities() == [
        (pallets, pallet),
        (crates, second),
        (crates, third),
        (crates, first),
    ]


def test_add_all_refuses_keys_and_entities_of_different_lengths() -> None:
    """A mismatch changes nothing."""
    removals = Removals()
    with pytest.raises(ValueError, match="1 keys for 0 entities"):
        removals.add_all(crates, [1], [])
    assert not removals
    assert removals.entities() == []


def test_a_mapping_with_nothing_left_to_remove_disappears() -> None:
    """Discarding a mapping's last removal leaves no empty entry: the removals are false."""
    removals = Removals()
    assert not removals
    assert dict(removals.of(crates)) == {}
    removals.add_all(crates, [], [])
    assert not removals
    removals.add_all(crates, [1, 2, 3], [Crate(1), Crate(2), Crate(3)])
    removals.add(pallets, 1, Pallet(1))
    removals.discard(pallets, 1)
    removals.discard(pallets, 9)
    assert [meta for meta, _ in removals.by_mapping()] == [crates]
    removals.discard_all(crates, [1, 3, 7])
    assert list(removals.of(crates)) == [2]
    removals.discard_all(crates, [2])
    assert not removals
    assert len(removals) == 0


def test_a_copy_is_independent_and_replace_takes_one_back() -> None:
    """copy() shares no dict with the original; replace() restores what was copied."""
    removals = Removals()
    removals.add(crates, 1, Crate(1))
    saved = removals.copy()
    removals.add(crates, 2, Crate(2))
    removals.add(pallets, 1, Pallet(1))
    assert len(saved) == 1
    removals.replace(saved)
    assert list(removals.of(crates)) == [1]
    assert (pallets, 1) not in removals
    removals.add(crates, 3, Crate(3))
    assert len(saved) == 1
    removals.clear()
    assert not removals
