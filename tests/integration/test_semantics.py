"""Query semantics every backend shares: one example test per documented rule.

Where SQL databases disagree by default (NULL order, case, collation, time zones, NaN, empty
IN lists, ...) mapper picks one behaviour, states it in docs/guide.md ("Queries and their
semantics"), and every backend follows it. Each test here pins one rule and runs on every
selected backend; `test_semantics_differential.py` compares random queries across all three.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

import attrs
import pytest

from mapper import Column, Database, EntityMap, Registry, UnitOfWork, ValidationError
from mapper import types as t
from mapper.criteria import Criterion
from tests.integration.conftest import fresh_schema
from tests.integration.helpers import statements

UTC = dt.UTC
D = decimal.Decimal
INF = math.inf


@attrs.define
class Sample:
    id: int
    n: int | None = None
    s: str | None = None
    amount: decimal.Decimal | None = None
    big: decimal.Decimal | None = None
    at: dt.datetime | None = None
    ratio: float | None = None
    level: float | None = None


registry = Registry()


@registry.map
class SampleMap(EntityMap[Sample]):
    __table__ = "semantics"
    id = Column(t.Integer(), primary_key=True)
    n = Column(t.Integer())
    s = Column(t.String(40))
    amount = Column(t.Decimal(10, 2))
    big = Column(t.Decimal(24, 4))  # beyond 15 digits: SQLite keeps it as ordered text
    at = Column(t.DateTime(tz=True))
    ratio = Column(t.Float())
    level = Column(t.Float(allow_infinity=True))


@pytest.fixture
async def table(db: Database) -> Database:
    """The database under test with an empty `semantics` table."""
    await fresh_schema(db, registry)
    return db


async def put(db: Database, *samples: Sample) -> None:
    async with UnitOfWork(db, registry) as uow:
        uow.repository(Sample).add_all(samples)


async def find(
    db: Database,
    *criteria: Criterion,
    order_by: Any = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[Sample]:
    async with UnitOfWork(db, registry) as uow:
        return await uow.repository(Sample).find(
            *criteria, order_by=order_by, limit=limit, offset=offset
        )


async def ids(db: Database, *criteria: Criterion, order_by: Any = SampleMap.id) -> list[int]:
    return [sample.id for sample in await find(db, *criteria, order_by=order_by)]


async def texts(db: Database, *values: str) -> None:
    """Rows 1, 2, ... holding `values` in `s`."""
    await put(db, *(Sample(id=i, s=v) for i, v in enumerate(values, 1)))


async def test_nulls_sort_first_ascending_and_last_descending(table: Database) -> None:
    """NULLs are the smallest value: first in ascending order, last in descending order."""
    await put(
        table,
        Sample(id=1, n=2, s="b"),
        Sample(id=2, n=None, s=None),
        Sample(id=3, n=1, s="a"),
        Sample(id=4, n=None, s="c"),
    )
    assert await ids(table, order_by=[SampleMap.n, SampleMap.id]) == [2, 4, 3, 1]
    assert await ids(table, order_by=[SampleMap.n.desc(), SampleMap.id]) == [1, 3, 2, 4]
    assert await ids(table, order_by=[SampleMap.s.asc()]) == [2, 3, 1, 4]
    assert await ids(table, order_by=[SampleMap.s.desc()]) == [4, 1, 3, 2]


async def test_equality_and_like_are_case_sensitive(table: Database) -> None:
    """== and like compare case-sensitively, for ASCII and accented letters alike."""
    # `s` has no index on purpose: SQLite answers a prefix LIKE on an indexed column from the
    # index's range, which can hide a case-insensitive like() function.
    await texts(table, "abc", "ABC", "Abc", "école", "École")
    assert await ids(table, SampleMap.s == "abc") == [1]
    assert await ids(table, SampleMap.s == "ABC") == [2]
    assert await ids(table, SampleMap.s.like("a%")) == [1]
    assert await ids(table, SampleMap.s.like("A%")) == [2, 3]
    assert await ids(table, SampleMap.s == "école") == [4]
    assert await ids(table, SampleMap.s.like("É%")) == [5]
    assert await ids(table, SampleMap.s.in_(["ABC", "ÉCOLE"])) == [2]


async def test_ilike_folds_case_with_unicode_lower_casing(table: Database) -> None:
    """ilike compares Python's str.lower() of value and pattern, beyond ASCII too."""
    await texts(table, "abc", "ABC", "Abc", "école", "École", "straße", "ΣΊΣΥΦΟΣ")
    assert await ids(table, SampleMap.s.ilike("aBc")) == [1, 2, 3]
    assert await ids(table, SampleMap.s.ilike("ÉCOLE")) == [4, 5]
    assert await ids(table, SampleMap.s.ilike("é%")) == [4, 5]
    assert await ids(table, SampleMap.s.ilike("STRASSE")) == []  # lower-casing, not case folding
    assert await ids(table, SampleMap.s.ilike("STRAßE")) == [6]
    assert await ids(table, SampleMap.s.ilike("Σίσυφος")) == [7]


async def test_trailing_spaces_are_significant(table: Database) -> None:
    """Trailing spaces are kept and compared: 'abc' and 'abc ' are different values."""
    await texts(table, "abc", "abc ", "abc  ", " abc")
    loaded = await find(table, order_by=SampleMap.id)
    assert [sample.s for sample in loaded] == ["abc", "abc ", "abc  ", " abc"]
    assert await ids(table, SampleMap.s == "abc") == [1]
    assert await ids(table, SampleMap.s == "abc ") == [2]
    assert await ids(table, SampleMap.s.like("abc")) == [1]
    assert await ids(table, SampleMap.s.like("abc_")) == [2]
    assert await ids(table, SampleMap.s > "abc") == [2, 3]
    assert await ids(table, order_by=SampleMap.s) == [4, 1, 2, 3]


UNICODE = ["b", "B", "a", "é", "e\u0301", "z", "Z", "ß", "😀", "中文", "ǅ", "", "\U0010fffd", "~"]


async def test_text_round_trips_and_sorts_by_code_point(table: Database) -> None:
    """Text reads back unchanged (no normalisation) and sorts and compares by code point."""
    await texts(table, *UNICODE)
    loaded = await find(table, order_by=SampleMap.id)
    assert [sample.s for sample in loaded] == UNICODE
    by_code_point = [UNICODE.index(v) + 1 for v in sorted(UNICODE)]
    assert await ids(table, order_by=SampleMap.s) == by_code_point
    assert await ids(table, order_by=SampleMap.s.desc()) == by_code_point[::-1]
    assert await ids(table, SampleMap.s == "é") == [4]  # NFC and NFD stay distinct
    above = [i for i, v in enumerate(UNICODE, 1) if v > "z"]
    assert await ids(table, SampleMap.s > "z") == above
    assert await ids(table, SampleMap.s.between("Z", "é")) == [
        i for i, v in enumerate(UNICODE, 1) if "Z" <= v <= "é"
    ]


def zone(hours: float) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


async def test_aware_datetimes_are_stored_as_utc_and_compared_as_instants(
    table: Database,
) -> None:
    """Aware values are stored as UTC, come back aware in UTC, and compare as instants."""
    # Wall-clock order (03:00, 08:00, 12:00) is the reverse of instant order.
    at_7z = dt.datetime(2024, 3, 1, 12, 0, 0, 250_001, tzinfo=zone(5))
    at_8z = dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    at_9z = dt.datetime(2024, 3, 1, 3, 0, tzinfo=zone(-6))
    await put(table, Sample(id=1, at=at_9z), Sample(id=2, at=at_7z), Sample(id=3, at=at_8z))
    loaded = {sample.id: sample.at for sample in await find(table)}
    assert loaded == {1: at_9z, 2: at_7z, 3: at_8z}
    for value in loaded.values():
        assert value is not None and value.tzinfo == UTC and value.utcoffset() == dt.timedelta(0)
    assert loaded[2] == dt.datetime(2024, 3, 1, 7, 0, 0, 250_001, tzinfo=UTC)
    assert await ids(table, order_by=SampleMap.at) == [2, 3, 1]
    assert await ids(table, SampleMap.at == dt.datetime(2024, 3, 1, 9, tzinfo=UTC)) == [1]
    assert await ids(table, SampleMap.at > dt.datetime(2024, 3, 1, 9, 30, tzinfo=zone(2))) == [1, 3]
    with pytest.raises(ValidationError, match="naive datetime"):
        await find(table, SampleMap.at < dt.datetime(2024, 3, 1, 9))


async def test_decimals_are_exact_and_compare_and_sort_as_numbers(table: Database) -> None:
    """Decimals are exact, never rounded, and compare and sort numerically (not as text)."""
    values = [D("10.00"), D("9.5"), D("-1.25"), D("100.1"), D("-10"), D("0.1")]
    bigs = [D("123456789012345678.9991"), D("-0.0001"), D("9.5"), D("-99999999999999999999")]
    await put(
        table,
        *(Sample(id=i, amount=v) for i, v in enumerate(values, 1)),
        *(Sample(id=10 + i, big=v) for i, v in enumerate(bigs, 1)),
    )
    loaded = {sample.id: sample for sample in await find(table)}
    assert [str(loaded[i].amount) for i in range(1, 7)] == [
        "10.00",
        "9.50",
        "-1.25",
        "100.10",
        "-10.00",
        "0.10",
    ]
    assert [loaded[10 + i].big for i in range(1, 5)] == bigs
    assert str(loaded[11].big) == "123456789012345678.9991"
    assert await ids(table, SampleMap.amount.is_not_null(), order_by=SampleMap.amount) == [
        5,
        3,
        6,
        2,
        1,
        4,
    ]
    assert await ids(table, SampleMap.big.is_not_null(), order_by=SampleMap.big.desc()) == [
        11,
        13,
        12,
        14,
    ]
    assert await ids(table, SampleMap.amount == D("9.50")) == [2]
    assert await ids(table, SampleMap.amount == 10) == [1]
    assert await ids(table, SampleMap.amount > D("9.99")) == [1, 4]
    assert await ids(table, SampleMap.amount.in_([D("0.10"), D("-1.250")])) == [3, 6]
    assert await ids(table, SampleMap.big == D("123456789012345678.9991")) == [11]
    assert await ids(table, SampleMap.big < 0) == [12, 14]
    with pytest.raises(ValidationError, match="decimal places"):
        await put(table, Sample(id=99, amount=D("1.005")))


async def test_nan_is_refused_and_infinities_need_allow_infinity(table: Database) -> None:
    """NaN is refused everywhere; ±inf only in Float(allow_infinity=True), sorted at the ends."""
    for bad in (
        Sample(id=9, ratio=math.nan),
        Sample(id=9, ratio=INF),
        Sample(id=9, level=math.nan),
    ):
        with statements(table) as log, pytest.raises(ValidationError):
            await put(table, bad)
        assert log.count() == 0
    with pytest.raises(ValidationError, match="NaN"):
        await find(table, SampleMap.ratio == math.nan)  # noqa: PLW0177 - builds a criterion
    with pytest.raises(ValidationError, match="infinity"):
        await find(table, SampleMap.ratio < INF)
    await put(
        table,
        Sample(id=1, level=INF),
        Sample(id=2, level=-INF),
        Sample(id=3, level=1.5),
        Sample(id=4, level=None),
        Sample(id=5, level=-1e308),
    )
    loaded = {sample.id: sample.level for sample in await find(table)}
    assert loaded == {1: INF, 2: -INF, 3: 1.5, 4: None, 5: -1e308}
    assert await ids(table, order_by=SampleMap.level) == [4, 2, 5, 3, 1]
    assert await ids(table, SampleMap.level == INF) == [1]
    assert await ids(table, SampleMap.level > 1e308) == [1]
    assert await ids(table, SampleMap.level.in_([-INF, 1.5])) == [2, 3]


async def test_in_and_not_in_refuse_none_and_treat_empty_lists_as_sql_would(
    table: Database,
) -> None:
    """in_/not_in refuse None; in_([]) matches no row, not_in([]) every row (NULLs too)."""
    await put(table, Sample(id=1, n=1), Sample(id=2, n=2), Sample(id=3, n=None))
    assert await ids(table, SampleMap.n.in_([1, 2])) == [1, 2]
    assert await ids(table, SampleMap.n.in_([])) == []
    assert await ids(table, SampleMap.n.not_in([])) == [1, 2, 3]
    assert await ids(table, SampleMap.n.not_in([1])) == [2]  # NULL is not "not 1": unknown
    assert await ids(table, ~SampleMap.n.in_([1])) == [2]
    assert await ids(table, ~SampleMap.n.in_([])) == [1, 2, 3]
    for refused in (SampleMap.n.in_([1, None]), SampleMap.n.not_in([None])):
        with pytest.raises(ValidationError, match="is_null"):
            await find(table, refused)


async def test_like_wildcards_and_backslash_escapes(table: Database) -> None:
    """like: % any run (newlines too), _ one code point, backslash escapes %, _ and itself."""
    await texts(table, "100%", "1000", "a_b", "axb", "a\\b", "line\nbreak", "é", "😀", "")
    assert await ids(table, SampleMap.s.like("100\\%")) == [1]
    assert await ids(table, SampleMap.s.like("100%")) == [1, 2]
    assert await ids(table, SampleMap.s.like("a\\_b")) == [3]
    assert await ids(table, SampleMap.s.like("a_b")) == [3, 4, 5]
    assert await ids(table, SampleMap.s.like("a\\\\b")) == [5]
    assert await ids(table, SampleMap.s.like("line%")) == [6]
    assert await ids(table, SampleMap.s.like("%")) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert await ids(table, SampleMap.s.like("_")) == [7, 8]
    assert await ids(table, SampleMap.s.like("")) == [9]
    assert await ids(table, ~SampleMap.s.like("%\\%%")) == [2, 3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(ValidationError, match="lone escape"):
        await find(table, SampleMap.s.like("ab\\"))


async def test_limit_and_offset_window_the_ordered_rows(table: Database) -> None:
    """limit/offset cut the ordered result; 0 and windows past the end give []; <0 is refused."""
    await put(table, *(Sample(id=i) for i in (5, 3, 1, 4, 2)))

    async def window(limit: int | None, offset: int | None) -> list[int]:
        found = await find(table, order_by=SampleMap.id.desc(), limit=limit, offset=offset)
        return [sample.id for sample in found]

    assert await window(2, None) == [5, 4]
    assert await window(2, 1) == [4, 3]
    assert await window(None, 3) == [2, 1]
    assert await window(0, None) == []
    assert await window(3, 10) == []
    assert await window(10, 4) == [1]
    for limit, offset in ((-1, None), (None, -1)):
        with pytest.raises(ValueError, match="non-negative"):
            await window(limit, offset)


async def test_null_follows_three_valued_logic(table: Database) -> None:
    """A comparison with NULL is unknown: neither `col != x` nor `~(col == x)` matches it."""
    await put(
        table,
        Sample(id=1, n=1, s="x"),
        Sample(id=2, n=2, s="x"),
        Sample(id=3, n=None, s="y"),
        Sample(id=4, n=None, s="x"),
    )
    n, s = SampleMap.n, SampleMap.s
    assert await ids(table, n != 1) == [2]
    assert await ids(table, ~(n == 1)) == [2]
    assert await ids(table, ~~(n == 1)) == [1]
    assert await ids(table, (n == 1) | (n != 1)) == [1, 2]
    assert await ids(table, ~(n == 1) | n.is_null()) == [2, 3, 4]
    assert await ids(table, ~((n == 1) & (s == "x"))) == [2, 3]  # unknown AND false is false
    assert await ids(table, (n == 1) | (s == "y")) == [1, 3]  # unknown OR true is true
    assert await ids(table, ~n.between(0, 1)) == [2]
    assert await ids(table, n == None) == [3, 4]  # noqa: E711 - builds IS NULL
    assert await ids(table, n != None) == [1, 2]  # noqa: E711 - builds IS NOT NULL
