"""Tests for the cycle-collector pause around bulk passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mapper.uow.collector import BULK_ROWS, collector_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_bulk_pass_runs_with_the_collector_off_and_turns_it_back_on() -> None:
    """A pass over BULK_ROWS rows or more runs without the collector, which comes back."""
    with collector_paused(BULK_ROWS):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_small_pass_keeps_the_collector() -> None:
    """A pass over fewer rows leaves the collector on."""
    with collector_paused(BULK_ROWS - 1):
        assert gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_after_an_error() -> None:
    """An exception in the pass still turns the collector back on, and goes through."""
    with pytest.raises(ValueError, match="bad row"), collector_paused(BULK_ROWS):
        raise ValueError("bad row")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    """When the caller turned the collector off, the pass leaves it off."""
    gc.disable()
    with collector_paused(BULK_ROWS * 10):
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_nested_pause_leaves_the_collector_to_the_outer_one() -> None:
    """A pass inside a pass neither turns the collector on early nor leaves it off."""
    with collector_paused(BULK_ROWS):
        with collector_paused(BULK_ROWS):
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
