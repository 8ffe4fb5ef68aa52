"""Unit tests of `mapper.keys`: uuid7 layout (RFC 9562), ordering and time prefix."""

import itertools
import threading
import time
import uuid

from mapper import uuid7

COUNT = 10_000


def milliseconds(value: uuid.UUID) -> int:
    """The Unix time in milliseconds stored in the first 48 bits."""
    return value.int >> 80


def test_version_is_7() -> None:
    """uuid7() sets the version nibble to 7."""
    assert all(uuid7().version == 7 for _ in range(100))


def test_variant_is_rfc_9562() -> None:
    """uuid7() sets the variant bits to 10 (RFC 4122 / 9562)."""
    for _ in range(100):
        value = uuid7()
        assert value.variant == uuid.RFC_4122
        assert (value.int >> 62) & 0b11 == 0b10


def test_keys_increase_within_a_process() -> None:
    """10,000 keys made in a row are strictly increasing, as UUIDs and as text."""
    keys = [uuid7() for _ in range(COUNT)]
    assert all(a < b for a, b in itertools.pairwise(keys))
    texts = [str(k) for k in keys]
    assert texts == sorted(texts)
    assert len(set(keys)) == COUNT


def test_keys_increase_in_every_thread() -> None:
    """Keys made concurrently by several threads are unique and increase within each thread."""
    results: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(out: list[uuid.UUID]) -> None:
        out.extend(uuid7() for _ in range(2_500))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for keys in results:
        assert all(a < b for a, b in itertools.pairwise(keys))
    assert len({key for keys in results for key in keys}) == 10_000


def test_the_time_prefix_is_now() -> None:
    """The 48-bit prefix is the current Unix time in milliseconds."""
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    # A burst of keys in one millisecond may borrow the next millisecond or two.
    assert before - 1 <= milliseconds(value) <= after + 5


def test_a_burst_does_not_run_ahead_of_the_clock() -> None:
    """After 10,000 keys in a burst, the time prefix is still within a few ms of the clock."""
    keys = [uuid7() for _ in range(COUNT)]
    now = time.time_ns() // 1_000_000
    assert milliseconds(keys[-1]) <= now + 10
    assert milliseconds(keys[0]) >= now - 60_000


def test_the_low_bits_are_random() -> None:
    """Two keys made in the same millisecond differ in their random 62 bits."""
    first, second = uuid7(), uuid7()
    mask = (1 << 62) - 1
    assert first.int & mask != second.int & mask
