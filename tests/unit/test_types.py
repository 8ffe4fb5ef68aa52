"""Unit tests of `mapper.types`: value rules (GUARANTEES B1-B8), conversions per dialect, DDL."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import typing
import uuid
from typing import Any, get_args

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mapper import types as t
from mapper.errors import ConfigurationError
from tests.strategies import aware_datetimes, decimal_from, decimals_fitting, storable_text

D = decimal.Decimal
UTC = dt.UTC
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
MINUS_ONE = dt.timezone(dt.timedelta(hours=-1))
DIALECTS: tuple[t.DialectName, ...] = ("postgresql", "sqlite", "mysql", "clickhouse", "memory")
ROUND_TRIP_DIALECTS: tuple[t.DialectName, ...] = ("postgresql", "sqlite")


# (precision, scale, a value that Decimal(precision, scale) must store exactly)
FITTING_DECIMALS = st.integers(min_value=1, max_value=38).flatmap(
    lambda precision: st.integers(min_value=0, max_value=precision).flatmap(
        lambda scale: st.tuples(
            st.just(precision), st.just(scale), decimals_fitting(precision, scale)
        )
    )
)


class Status(enum.Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


class Other(enum.Enum):
    ACTIVE = "active"


@attrs.frozen
class Address:
    street: str
    city: str


def _is_type(name: str) -> bool:
    value = getattr(t, name)
    return isinstance(value, type) and issubclass(value, t.ColumnType)


def store(column_type: t.ColumnType, dialect: t.DialectName, value: Any) -> Any:
    """What the driver is given for `value` (identity when the type has no binder)."""
    binder = column_type.binder(dialect)
    return value if binder is None else binder(value)


def load(column_type: t.ColumnType, dialect: t.DialectName, raw: Any) -> Any:
    """The Python value for the driver's `raw` (identity when the type has no loader)."""
    loader = column_type.loader(dialect)
    return raw if loader is None else loader(raw)


def round_trip(column_type: t.ColumnType, dialect: t.DialectName, value: Any) -> Any:
    """`value` bound for `dialect` and loaded back, in pure Python."""
    return load(column_type, dialect, store(column_type, dialect, value))


class TestText:
    @pytest.mark.parametrize("column_type", [t.Text(), t.String(10)], ids=repr)
    def test_a_nul_character_is_refused(self, column_type: t.ColumnType) -> None:
        """A NUL character is refused in a text column (B1)."""
        rule = column_type.check("ab\x00c")
        assert rule is not None
        assert "NUL" in rule

    @pytest.mark.parametrize("column_type", [t.Text(), t.String(10)], ids=repr)
    def test_a_nul_after_non_ascii_text_is_refused(self, column_type: t.ColumnType) -> None:
        """A NUL character is refused in non-ASCII text too (B1)."""
        assert column_type.check("é\x00") is not None

    @pytest.mark.parametrize("column_type", [t.Text(), t.String(10)], ids=repr)
    @pytest.mark.parametrize("surrogate", ["\ud800", "\udfff", "a\udc00b"])
    def test_a_lone_surrogate_is_refused(self, column_type: t.ColumnType, surrogate: str) -> None:
        """A lone surrogate is refused in a text column (B2)."""
        rule = column_type.check(surrogate)
        assert rule is not None
        assert "surrogate" in rule

    @pytest.mark.parametrize("column_type", [t.Text(), t.String(10)], ids=repr)
    def test_astral_characters_are_accepted(self, column_type: t.ColumnType) -> None:
        """Four-byte characters such as emoji are stored (B3)."""
        assert column_type.check("ok 😀") is None

    @pytest.mark.parametrize("value", [1, b"abc", None, ["a"], 1.5])
    def test_a_non_string_is_refused(self, value: object) -> None:
        """A value that is not a str is refused in a text column (B5)."""
        assert t.Text().check(value) is not None
        assert t.String(10).check(value) is not None

    def test_string_accepts_exactly_its_length(self) -> None:
        """String(5) accepts five characters."""
        assert t.String(5).check("abcde") is None

    def test_string_refuses_one_character_over_its_length(self) -> None:
        """String(5) refuses six characters and says how long the value is (B4)."""
        rule = t.String(5).check("abcdef")
        assert rule is not None
        assert "5" in rule
        assert "6" in rule

    def test_string_counts_code_points_not_bytes(self) -> None:
        """String(5) accepts five emoji: 20 UTF-8 bytes, 10 UTF-16 units, 5 code points (B4)."""
        assert t.String(5).check("😀" * 5) is None
        assert t.String(5).check("😀" * 6) is not None

    def test_string_counts_combining_marks_as_characters(self) -> None:
        """A decomposed é counts as two code points (what every backend counts)."""
        assert t.String(1).check("e\u0301") is not None

    @pytest.mark.parametrize("length", [0, -1, True, 2.0, "5"])
    def test_string_refuses_a_length_that_is_not_a_positive_int(self, length: Any) -> None:
        """String's length must be a positive int."""
        with pytest.raises(ConfigurationError, match="positive int"):
            t.String(length)

    @given(data=st.data(), length=st.integers(min_value=1, max_value=40))
    def test_any_storable_text_within_the_length_passes(
        self, data: st.DataObject, length: int
    ) -> None:
        """Any text without NUL or lone surrogates of at most n code points passes String(n)."""
        value = data.draw(storable_text(max_size=length))
        assert t.String(length).check(value) is None
        assert t.Text().check(value) is None

    @given(data=st.data(), length=st.integers(min_value=1, max_value=20))
    def test_any_text_longer_than_the_length_is_refused(
        self, data: st.DataObject, length: int
    ) -> None:
        """Any storable text of more than n code points is refused by String(n)."""
        value = data.draw(storable_text(min_size=length + 1, max_size=length + 10))
        assert t.String(length).check(value) is not None

    @given(
        text=storable_text(max_size=20),
        bad=st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
        data=st.data(),
    )
    def test_any_text_with_a_nul_or_surrogate_is_refused(
        self, text: str, bad: str, data: st.DataObject
    ) -> None:
        """A NUL or a lone surrogate anywhere in the text is refused, whatever surrounds it."""
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        value = text[:at] + bad + text[at:]
        assert t.Text().check(value) is not None
        assert t.String(len(value) + 1).check(value) is not None

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=storable_text(max_size=30))
    def test_text_round_trips(self, dialect: t.DialectName, value: str) -> None:
        """Text reads back equal on every dialect."""
        assert round_trip(t.Text(), dialect, value) == value


class TestIntegers:
    @pytest.mark.parametrize(
        ("column_type", "low", "high"),
        [
            (t.SmallInteger(), -(2**15), 2**15 - 1),
            (t.Integer(), -(2**31), 2**31 - 1),
            (t.BigInteger(), -(2**63), 2**63 - 1),
        ],
        ids=["SmallInteger", "Integer", "BigInteger"],
    )
    def test_range_is_enforced_at_the_exact_boundaries(
        self, column_type: t.ColumnType, low: int, high: int
    ) -> None:
        """Each integer type accepts its signed range and refuses one past either end (B5)."""
        assert column_type.check(low) is None
        assert column_type.check(high) is None
        assert column_type.check(0) is None
        below = column_type.check(low - 1)
        above = column_type.check(high + 1)
        assert below is not None
        assert "out of range" in below
        assert above is not None
        assert "out of range" in above

    @pytest.mark.parametrize("column_type", [t.SmallInteger(), t.Integer(), t.BigInteger()])
    @pytest.mark.parametrize("value", [True, False])
    def test_a_bool_is_refused(self, column_type: t.ColumnType, value: bool) -> None:
        """A bool is not an int for an integer column (B5)."""
        rule = column_type.check(value)
        assert rule is not None
        assert "bool" in rule

    @pytest.mark.parametrize("column_type", [t.SmallInteger(), t.Integer(), t.BigInteger()])
    @pytest.mark.parametrize("value", [1.0, "1", D(1), b"1"])
    def test_a_non_int_is_refused(self, column_type: t.ColumnType, value: object) -> None:
        """Floats, strings, decimals and bytes are refused by integer columns (B5)."""
        assert column_type.check(value) is not None

    @given(value=st.integers(min_value=-(2**31), max_value=2**31 - 1))
    def test_any_int32_passes_integer(self, value: int) -> None:
        """Every 32-bit signed value passes Integer."""
        assert t.Integer().check(value) is None

    @given(
        value=st.integers(min_value=2**63, max_value=2**200)
        | st.integers(min_value=-(2**200), max_value=-(2**63) - 1)
    )
    def test_any_int_outside_int64_is_refused_by_biginteger(self, value: int) -> None:
        """Every value outside the 64-bit signed range is refused by BigInteger."""
        assert t.BigInteger().check(value) is not None

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.integers(min_value=-(2**63), max_value=2**63 - 1))
    def test_bigint_round_trips(self, dialect: t.DialectName, value: int) -> None:
        """BigInteger values read back equal on every dialect."""
        assert round_trip(t.BigInteger(), dialect, value) == value

    @pytest.mark.parametrize("annotation", [int, Any])
    def test_integers_fit_int_annotations(self, annotation: Any) -> None:
        """An integer column fits an int (or Any) attribute."""
        assert t.Integer().accepts_annotation(annotation)

    @pytest.mark.parametrize("annotation", [bool, str, float])
    def test_integers_do_not_fit_other_annotations(self, annotation: Any) -> None:
        """An integer column does not fit a bool, str or float attribute."""
        assert not t.Integer().accepts_annotation(annotation)


class TestBoolean:
    @pytest.mark.parametrize("value", [True, False])
    def test_bools_are_accepted(self, value: bool) -> None:
        """True and False are stored."""
        assert t.Boolean().check(value) is None

    @pytest.mark.parametrize("value", [0, 1, "true", None, 1.0])
    def test_non_bools_are_refused(self, value: object) -> None:
        """Ints and strings are not booleans (B5)."""
        assert t.Boolean().check(value) is not None

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @pytest.mark.parametrize("value", [True, False])
    def test_bools_round_trip(self, dialect: t.DialectName, value: bool) -> None:
        """A bool reads back as the same bool."""
        assert round_trip(t.Boolean(), dialect, value) is value

    def test_sqlite_integers_load_as_bools(self) -> None:
        """SQLite's 0 and 1 load as False and True."""
        assert load(t.Boolean(), "sqlite", 1) is True
        assert load(t.Boolean(), "sqlite", 0) is False


class TestFloat:
    @pytest.mark.parametrize("value", [0.0, -1.5, 1e308, 5e-324, -0.0])
    def test_finite_floats_are_accepted(self, value: float) -> None:
        """Finite floats are stored."""
        assert t.Float().check(value) is None

    def test_an_int_is_accepted(self) -> None:
        """An int is accepted where a float is expected."""
        assert t.Float().check(3) is None

    @pytest.mark.parametrize("value", [True, "1.5", D("1.5"), None])
    def test_non_floats_are_refused(self, value: object) -> None:
        """Bools, strings and decimals are refused by a float column (B5)."""
        assert t.Float().check(value) is not None

    @pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 3**40])
    def test_an_int_a_float_cannot_hold_exactly_is_refused(self, value: int) -> None:
        """An int that would lose digits as a double is refused, not rounded."""
        rule = t.Float().check(value)
        assert rule is not None
        assert "cannot hold exactly" in rule

    @pytest.mark.parametrize("value", [2**53, -(2**53), 2**60, 10**20])
    def test_a_large_int_a_float_holds_exactly_is_accepted(self, value: int) -> None:
        """Large ints that are exact doubles (powers of two, 10**20) are accepted."""
        assert t.Float().check(value) is None

    def test_an_int_too_large_for_a_float_is_refused(self) -> None:
        """An int beyond the float range is refused rather than raising."""
        rule = t.Float().check(10**400)
        assert rule is not None
        assert "too large" in rule

    def test_nan_is_refused_by_default(self) -> None:
        """NaN is refused unless allowed, and the rule names the option (B6)."""
        rule = t.Float().check(float("nan"))
        assert rule is not None
        assert "allow_nan" in rule

    @pytest.mark.parametrize("value", [float("inf"), float("-inf")])
    def test_infinity_is_refused_by_default(self, value: float) -> None:
        """Infinities are refused unless allowed, and the rule names the option (B6)."""
        rule = t.Float().check(value)
        assert rule is not None
        assert "allow_infinity" in rule

    def test_nan_is_accepted_when_allowed(self) -> None:
        """Float(allow_nan=True) accepts NaN."""
        assert t.Float(allow_nan=True).check(float("nan")) is None

    @pytest.mark.parametrize("value", [float("inf"), float("-inf")])
    def test_infinity_is_accepted_when_allowed(self, value: float) -> None:
        """Float(allow_infinity=True) accepts both infinities."""
        assert t.Float(allow_infinity=True).check(value) is None

    def test_allowing_nan_does_not_allow_infinity(self) -> None:
        """allow_nan and allow_infinity are separate permissions."""
        assert t.Float(allow_nan=True).check(float("inf")) is not None
        assert t.Float(allow_infinity=True).check(float("nan")) is not None

    @pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
    def test_nan_is_unsupported_on_backends_that_cannot_store_it(
        self, dialect: t.DialectName
    ) -> None:
        """Allowing NaN is refused on SQLite and MySQL, which cannot keep it (B6)."""
        assert t.Float(allow_nan=True).unsupported_on(dialect) is not None

    def test_nan_is_supported_on_postgresql(self) -> None:
        """PostgreSQL stores NaN, so allowing it there is fine."""
        assert t.Float(allow_nan=True).unsupported_on("postgresql") is None
        assert t.Float().unsupported_on("sqlite") is None

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.floats(allow_nan=False, allow_infinity=False))
    def test_finite_floats_round_trip(self, dialect: t.DialectName, value: float) -> None:
        """Every finite float reads back equal."""
        assert t.Float().check(value) is None
        assert round_trip(t.Float(), dialect, value) == value

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.integers(min_value=-(2**80), max_value=2**80))
    def test_an_accepted_int_reads_back_equal(self, dialect: t.DialectName, value: int) -> None:
        """An int a float column accepts reads back equal (ints past 2**53 lose digits)."""
        assume(t.Float().check(value) is None)
        assert round_trip(t.Float(), dialect, value) == value


class TestDecimal:
    def test_trailing_zeros_beyond_the_scale_fit(self) -> None:
        """Decimal("1.500") fits a scale of 2: only significant places count (B7)."""
        assert t.Decimal(10, 2).check(D("1.500")) is None

    def test_a_significant_place_beyond_the_scale_is_refused(self) -> None:
        """Decimal("1.005") does not fit a scale of 2 and is refused, not rounded (B7)."""
        rule = t.Decimal(10, 2).check(D("1.005"))
        assert rule is not None
        assert "scale" in rule

    def test_a_place_beyond_the_scale_is_refused_in_a_long_value(self) -> None:
        """A 31-digit value with a third place is refused by Decimal(38, 2), not rounded (B7)."""
        assert t.Decimal(38, 2).check(D("1234567890123456789012345678.901")) is not None

    def test_zero_with_many_places_fits(self) -> None:
        """0E-10 is zero and fits any scale."""
        assert t.Decimal(5, 2).check(D("0E-10")) is None

    @pytest.mark.parametrize("value", ["999.99", "-999.99", "0.01", "0", "999"])
    def test_values_within_precision_are_accepted(self, value: str) -> None:
        """Decimal(5, 2) holds up to three digits before the point."""
        assert t.Decimal(5, 2).check(D(value)) is None

    @pytest.mark.parametrize("value", ["1000", "1000.00", "-1000", "1E+3", "12345.6"])
    def test_digits_beyond_precision_are_refused(self, value: str) -> None:
        """Decimal(5, 2) refuses a fourth digit before the point (B7)."""
        rule = t.Decimal(5, 2).check(D(value))
        assert rule is not None
        assert "digits" in rule

    def test_an_int_within_precision_is_accepted(self) -> None:
        """An int is accepted as an exact decimal."""
        assert t.Decimal(5, 2).check(999) is None
        assert t.Decimal(5, 2).check(1000) is not None

    @pytest.mark.parametrize("value", [1.5, True, "1.5", None])
    def test_non_decimals_are_refused(self, value: object) -> None:
        """Floats, bools and strings are refused by a decimal column (B5)."""
        assert t.Decimal().check(value) is not None

    @pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
    def test_non_finite_decimals_are_refused(self, value: str) -> None:
        """NaN and infinite decimals are refused (B6)."""
        assert t.Decimal().check(D(value)) is not None

    def test_thirty_eight_digits_fit_the_largest_precision(self) -> None:
        """Decimal(38, 0) holds 38 nines and refuses 39, past the default context's 28 digits."""
        assert t.Decimal(38, 0).check(D("9" * 38)) is None
        assert t.Decimal(38, 0).check(D("9" * 39)) is not None

    @pytest.mark.parametrize(("precision", "scale"), [(0, 0), (39, 2), (5, 6), (5, -1)])
    def test_bad_precision_or_scale_is_a_configuration_error(
        self, precision: int, scale: int
    ) -> None:
        """Precision must be 1-38 and scale 0-precision."""
        with pytest.raises(ConfigurationError):
            t.Decimal(precision, scale)

    @given(case=FITTING_DECIMALS)
    def test_any_decimal_within_scale_and_precision_passes(
        self, case: tuple[int, int, decimal.Decimal]
    ) -> None:
        """Any decimal with at most `scale` significant places and `precision` digits passes."""
        precision, scale, value = case
        assert t.Decimal(precision, scale).check(value) is None

    @given(
        data=st.data(),
        precision=st.integers(min_value=1, max_value=38),
    )
    def test_any_decimal_with_more_places_than_the_scale_is_refused(
        self, data: st.DataObject, precision: int
    ) -> None:
        """A decimal whose last significant place is beyond the scale is refused (B7)."""
        scale = data.draw(st.integers(min_value=0, max_value=precision))
        places = data.draw(st.integers(min_value=scale + 1, max_value=scale + 5))
        coefficient = data.draw(st.integers(min_value=1, max_value=10**precision))
        assume(coefficient % 10 != 0)
        value = decimal_from(coefficient, -places)
        assert t.Decimal(precision, scale).check(value) is not None

    @given(
        data=st.data(),
        precision=st.integers(min_value=1, max_value=38),
    )
    def test_any_decimal_with_too_many_whole_digits_is_refused(
        self, data: st.DataObject, precision: int
    ) -> None:
        """A decimal with more than precision - scale whole digits is refused (B7)."""
        scale = data.draw(st.integers(min_value=0, max_value=precision))
        whole = data.draw(st.integers(min_value=10 ** (precision - scale), max_value=10**40))
        sign = data.draw(st.sampled_from([1, -1]))
        assert t.Decimal(precision, scale).check(D(sign * whole)) is not None

    def test_sqlite_binds_quantized_text(self) -> None:
        """SQLite gets canonical text with exactly `scale` places."""
        assert store(t.Decimal(10, 2), "sqlite", D("1.5")) == "1.50"
        assert store(t.Decimal(10, 2), "sqlite", D("1.500")) == "1.50"
        assert store(t.Decimal(10, 2), "sqlite", 7) == "7.00"

    def test_postgresql_binds_a_quantized_decimal(self) -> None:
        """PostgreSQL gets a Decimal with exactly `scale` places."""
        bound = store(t.Decimal(10, 2), "postgresql", D("1.5"))
        assert isinstance(bound, D)
        assert str(bound) == "1.50"

    @pytest.mark.parametrize(("raw", "expected"), [(1.5, "1.50"), (5, "5.00"), ("0.10", "0.10")])
    def test_sqlite_numeric_affinity_values_load_exactly(self, raw: Any, expected: str) -> None:
        """SQLite's REAL, INTEGER and TEXT forms of a numeric load with `scale` places."""
        loaded = load(t.Decimal(10, 2), "sqlite", raw)
        assert isinstance(loaded, D)
        assert str(loaded) == expected

    def test_a_thirty_digit_value_round_trips_through_sqlite(self) -> None:
        """Decimal(38, 2) values longer than the default 28-digit context read back exactly."""
        value = D("123456789012345678901234567890.12")
        column_type = t.Decimal(38, 2)
        assert column_type.check(value) is None
        assert round_trip(column_type, "sqlite", value) == value

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(case=FITTING_DECIMALS)
    def test_accepted_decimals_round_trip(
        self, dialect: t.DialectName, case: tuple[int, int, decimal.Decimal]
    ) -> None:
        """loader(binder(v)) == v for every decimal the column accepts (B7)."""
        precision, scale, value = case
        column_type = t.Decimal(precision, scale)
        assert column_type.check(value) is None
        assert round_trip(column_type, dialect, value) == value

    @pytest.mark.parametrize(
        ("column_type", "ddl"),
        [
            (t.Decimal(15, 2), "DECIMAL(15, 2)"),
            (t.Decimal(15, 0), "DECIMAL(15, 0)"),
            (t.Decimal(16, 2), "TEXT"),
            (t.Decimal(), "TEXT"),
            (t.Decimal(38, 10), "TEXT"),
        ],
        ids=repr,
    )
    def test_sqlite_keeps_numeric_affinity_up_to_fifteen_digits(
        self, column_type: t.Decimal, ddl: str
    ) -> None:
        """SQLite stores at most 15 digits as DECIMAL(p, s); longer decimals as TEXT."""
        assert column_type.ddl("sqlite") == ddl

    def test_the_default_decimal_is_eighteen_two(self) -> None:
        """Decimal() is Decimal(18, 2): text on SQLite, numeric(18, 2) on PostgreSQL."""
        assert t.Decimal() == t.Decimal(18, 2)
        assert t.Decimal().ddl("postgresql") == "numeric(18, 2)"
        assert t.Decimal().ddl("sqlite") == "TEXT"

    def test_sqlite_text_decimals_bind_as_fixed_width_text(self) -> None:
        """A decimal past 15 digits binds as text of one width, whatever its value."""
        column_type = t.Decimal(18, 2)
        values = [D("-9999999999999999.99"), D("-1"), D("0"), D("0.01"), D("1.5")]
        bound = [store(column_type, "sqlite", v) for v in values]
        assert all(isinstance(b, str) for b in bound)
        assert {len(b) for b in bound} == {19}
        assert store(column_type, "sqlite", D("1.5")) == store(column_type, "sqlite", D("1.50"))

    @given(
        pair=st.tuples(decimals_fitting(18, 2), decimals_fitting(18, 2)),
    )
    def test_sqlite_text_decimals_sort_like_the_numbers(
        self, pair: tuple[decimal.Decimal, decimal.Decimal]
    ) -> None:
        """Comparing the bound texts gives the numbers' order, so ORDER BY and < still work."""
        column_type = t.Decimal(18, 2)
        low, high = sorted(pair)
        low_text, high_text = (store(column_type, "sqlite", v) for v in (low, high))
        assert (low_text < high_text) == (low < high)
        assert (low_text == high_text) == (low == high)

    def test_only_decimal_annotations_fit(self) -> None:
        """A decimal column fits a Decimal attribute, not a float one."""
        assert t.Decimal().accepts_annotation(D)
        assert not t.Decimal().accepts_annotation(float)


class TestDateTime:
    def test_aware_values_are_accepted_by_an_aware_column(self) -> None:
        """DateTime(tz=True) accepts an aware datetime (B8)."""
        assert t.DateTime(tz=True).check(dt.datetime(2024, 1, 2, 12, tzinfo=PLUS_TWO)) is None

    def test_naive_values_are_refused_by_an_aware_column(self) -> None:
        """DateTime(tz=True) refuses a naive datetime and says how to fix it (B8)."""
        rule = t.DateTime(tz=True).check(dt.datetime(2024, 1, 2, 12))
        assert rule is not None
        assert "naive" in rule
        assert "tz=False" in rule

    def test_naive_values_are_accepted_by_a_naive_column(self) -> None:
        """DateTime(tz=False) accepts a naive datetime (B8)."""
        assert t.DateTime(tz=False).check(dt.datetime(2024, 1, 2, 12)) is None

    def test_aware_values_are_refused_by_a_naive_column(self) -> None:
        """DateTime(tz=False) refuses an aware datetime (B8)."""
        rule = t.DateTime(tz=False).check(dt.datetime(2024, 1, 2, 12, tzinfo=UTC))
        assert rule is not None
        assert "aware" in rule

    def test_the_default_is_aware(self) -> None:
        """A bare DateTime() is timezone-aware."""
        assert t.DateTime().tz is True

    @pytest.mark.parametrize("value", [dt.date(2024, 1, 2), "2024-01-02 12:00", 1700000000])
    def test_non_datetimes_are_refused(self, value: object) -> None:
        """Dates, strings and timestamps are refused by a datetime column (B5)."""
        assert t.DateTime().check(value) is not None
        assert t.DateTime(tz=False).check(value) is not None

    @pytest.mark.parametrize(
        "value",
        [dt.datetime.max.replace(tzinfo=MINUS_ONE), dt.datetime.min.replace(tzinfo=PLUS_TWO)],
    )
    def test_values_out_of_range_in_utc_are_refused(self, value: dt.datetime) -> None:
        """An aware value that overflows once converted to UTC is refused, not raised."""
        rule = t.DateTime().check(value)
        assert rule is not None
        assert "UTC" in rule

    def test_sqlite_stores_utc_text(self) -> None:
        """SQLite stores an aware value as its UTC time in fixed-width text."""
        value = dt.datetime(2024, 1, 2, 12, 30, tzinfo=PLUS_TWO)
        assert store(t.DateTime(), "sqlite", value) == "2024-01-02 10:30:00.000000"

    def test_sqlite_returns_aware_utc(self) -> None:
        """An aware value read back from SQLite is the same instant, in UTC."""
        value = dt.datetime(2024, 1, 2, 12, 30, 0, 17, tzinfo=PLUS_TWO)
        loaded = round_trip(t.DateTime(), "sqlite", value)
        assert loaded == value
        assert loaded.tzinfo is not None
        assert loaded.utcoffset() == dt.timedelta(0)

    def test_sqlite_keeps_naive_values_unchanged(self) -> None:
        """A naive value is stored as written and read back naive."""
        value = dt.datetime(2024, 1, 2, 12, 30, 0, 5)
        assert store(t.DateTime(tz=False), "sqlite", value) == "2024-01-02 12:30:00.000005"
        loaded = round_trip(t.DateTime(tz=False), "sqlite", value)
        assert loaded == value
        assert loaded.tzinfo is None

    @given(value=aware_datetimes())
    def test_sqlite_aware_values_round_trip(self, value: dt.datetime) -> None:
        """loader(binder(v)) is v's instant in UTC for every accepted aware datetime (B8)."""
        assume(t.DateTime().check(value) is None)
        loaded = round_trip(t.DateTime(), "sqlite", value)
        assert loaded == value.astimezone(UTC)
        assert loaded.utcoffset() == dt.timedelta(0)

    @given(value=st.datetimes())
    def test_sqlite_naive_values_round_trip(self, value: dt.datetime) -> None:
        """loader(binder(v)) == v for every naive datetime."""
        assert round_trip(t.DateTime(tz=False), "sqlite", value) == value

    @given(
        first=aware_datetimes(),
        second=aware_datetimes(),
    )
    def test_sqlite_text_sorts_by_time(self, first: dt.datetime, second: dt.datetime) -> None:
        """SQLite text is fixed-width and sorts in the order of the instants it stores."""
        assume(t.DateTime().check(first) is None and t.DateTime().check(second) is None)
        first_text = store(t.DateTime(), "sqlite", first)
        second_text = store(t.DateTime(), "sqlite", second)
        assert len(first_text) == len(second_text) == 26
        first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
        assert (first_text < second_text) == (first_utc < second_utc)
        assert (first_text == second_text) == (first_utc == second_utc)

    @pytest.mark.parametrize("dialect", ["mysql", "clickhouse"])
    def test_backends_without_offsets_get_naive_utc(self, dialect: t.DialectName) -> None:
        """MySQL and ClickHouse are sent naive UTC and the value comes back aware UTC."""
        value = dt.datetime(2024, 1, 2, 12, tzinfo=PLUS_TWO)
        bound = store(t.DateTime(), dialect, value)
        assert bound == dt.datetime(2024, 1, 2, 10)
        loaded = load(t.DateTime(), dialect, bound)
        assert loaded == value
        assert loaded.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize("tz", [True, False])
    def test_postgresql_passes_datetimes_through(self, tz: bool) -> None:
        """asyncpg takes and returns datetimes as they are."""
        zone = UTC if tz else None
        value = dt.datetime(2024, 1, 2, 12, tzinfo=zone)
        assert round_trip(t.DateTime(tz=tz), "postgresql", value) == value

    def test_a_date_annotation_does_not_fit(self) -> None:
        """A datetime column fits a datetime attribute, not a date one."""
        assert t.DateTime().accepts_annotation(dt.datetime)
        assert not t.DateTime().accepts_annotation(dt.date)


class TestDate:
    def test_a_date_is_accepted(self) -> None:
        """A date is stored."""
        assert t.Date().check(dt.date(2024, 2, 29)) is None

    def test_a_datetime_is_refused(self) -> None:
        """A datetime is a date subclass but is refused: its time would be lost."""
        rule = t.Date().check(dt.datetime(2024, 2, 29, 12))
        assert rule is not None
        assert "datetime" in rule

    @pytest.mark.parametrize("value", ["2024-02-29", 20240229])
    def test_non_dates_are_refused(self, value: object) -> None:
        """Strings and ints are refused by a date column (B5)."""
        assert t.Date().check(value) is not None

    def test_only_date_annotations_fit(self) -> None:
        """A date column fits a date attribute, not a datetime one."""
        assert t.Date().accepts_annotation(dt.date)
        assert not t.Date().accepts_annotation(dt.datetime)

    def test_sqlite_stores_iso_text(self) -> None:
        """SQLite gets ISO 8601 text."""
        assert store(t.Date(), "sqlite", dt.date(2024, 2, 29)) == "2024-02-29"

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.dates())
    def test_dates_round_trip(self, dialect: t.DialectName, value: dt.date) -> None:
        """Every date reads back equal."""
        assert round_trip(t.Date(), dialect, value) == value


class TestTime:
    def test_a_naive_time_is_accepted(self) -> None:
        """A time of day without zone is stored."""
        assert t.Time().check(dt.time(23, 59, 59, 999999)) is None

    def test_an_aware_time_is_refused(self) -> None:
        """An aware time is refused (B8)."""
        rule = t.Time().check(dt.time(12, tzinfo=UTC))
        assert rule is not None
        assert "aware" in rule

    @pytest.mark.parametrize("value", [dt.datetime(2024, 1, 1, 12), "12:00", 3600])
    def test_non_times_are_refused(self, value: object) -> None:
        """Datetimes, strings and ints are refused by a time column (B5)."""
        assert t.Time().check(value) is not None

    def test_sqlite_stores_fixed_width_text(self) -> None:
        """SQLite gets the time with microseconds, always the same width."""
        assert store(t.Time(), "sqlite", dt.time(7, 5)) == "07:05:00.000000"

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.times())
    def test_times_round_trip(self, dialect: t.DialectName, value: dt.time) -> None:
        """Every naive time reads back equal."""
        assert round_trip(t.Time(), dialect, value) == value


class TestEnum:
    def test_a_member_is_accepted(self) -> None:
        """A member of the enum is stored."""
        assert t.Enum(Status).check(Status.ACTIVE) is None

    @pytest.mark.parametrize("value", ["active", Other.ACTIVE, 1, None])
    def test_anything_else_is_refused(self, value: object) -> None:
        """Raw values and members of other enums are refused (B5)."""
        rule = t.Enum(Status).check(value)
        assert rule is not None
        assert "Status" in rule

    @pytest.mark.parametrize("dialect", ["postgresql", "sqlite", "mysql", "clickhouse"])
    def test_sql_backends_store_the_value(self, dialect: t.DialectName) -> None:
        """SQL backends get the member's value and load the member back."""
        assert store(t.Enum(Status), dialect, Status.BLOCKED) == "blocked"
        assert load(t.Enum(Status), dialect, "blocked") is Status.BLOCKED
        assert store(t.Enum(Level), dialect, Level.HIGH) == 2
        assert load(t.Enum(Level), dialect, 2) is Level.HIGH

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @pytest.mark.parametrize("member", [*Status, *Level])
    def test_members_round_trip(self, dialect: t.DialectName, member: enum.Enum) -> None:
        """Every member reads back as itself."""
        assert round_trip(t.Enum(type(member)), dialect, member) is member

    def test_text_enums_get_a_column_as_wide_as_the_longest_value(self) -> None:
        """A text enum is a varchar as wide as its longest value."""
        assert t.Enum(Status).ddl("postgresql") == "varchar(7)"
        assert t.Enum(Status).ddl("sqlite") == "VARCHAR(7)"

    def test_int_enums_get_an_integer_column(self) -> None:
        """An int enum is an integer column."""
        assert t.Enum(Level).ddl("postgresql") == "integer"
        assert t.Enum(Level).ddl("sqlite") == "INTEGER"

    def test_an_enum_with_only_an_empty_value_has_ddl(self) -> None:
        """An enum whose only value is "" still gets a column type on every backend."""
        empty = enum.Enum("Empty", {"NONE": ""})
        column_type = t.Enum(empty)
        for dialect in DIALECTS:
            assert column_type.ddl(dialect)

    def test_a_non_enum_class_is_refused(self) -> None:
        """Enum needs an enum.Enum subclass."""
        with pytest.raises(ConfigurationError, match=r"enum\.Enum subclass"):
            t.Enum(str)  # type: ignore[arg-type]

    def test_an_empty_enum_is_refused(self) -> None:
        """An enum without members cannot be stored."""
        empty = enum.Enum("Nothing", {})
        with pytest.raises(ConfigurationError, match="no members"):
            t.Enum(empty)

    @pytest.mark.parametrize(
        "values", [{"A": "a", "B": 1}, {"A": 1.5}, {"A": True, "B": False}], ids=str
    )
    def test_mixed_or_non_text_int_values_are_refused(self, values: dict[str, Any]) -> None:
        """Enum values must be all str or all int (bools are not ints here)."""
        with pytest.raises(ConfigurationError, match="all-str or all-int"):
            t.Enum(enum.Enum("Mixed", values))

    def test_values_no_column_can_hold_are_refused(self) -> None:
        """An enum value with a NUL cannot be stored, so the enum is refused."""
        with pytest.raises(ConfigurationError, match="no column can hold"):
            t.Enum(enum.Enum("Bad", {"A": "a\x00"}))

    def test_only_its_own_enum_annotation_fits(self) -> None:
        """An enum column fits an attribute of that enum, not of another or str."""
        assert t.Enum(Status).accepts_annotation(Status)
        assert not t.Enum(Status).accepts_annotation(Other)
        assert not t.Enum(Status).accepts_annotation(str)


class TestUUID:
    def test_a_uuid_is_accepted(self) -> None:
        """A UUID is stored."""
        assert t.UUID().check(uuid.uuid4()) is None

    @pytest.mark.parametrize("value", [str(uuid.UUID(int=1)), uuid.UUID(int=1).bytes, 1])
    def test_non_uuids_are_refused(self, value: object) -> None:
        """The text, bytes or int of a UUID are refused (B5)."""
        assert t.UUID().check(value) is not None

    def test_sqlite_stores_36_character_text(self) -> None:
        """SQLite gets the canonical 36-character form."""
        value = uuid.UUID(int=2**128 - 1)
        bound = store(t.UUID(), "sqlite", value)
        assert bound == "ffffffff-ffff-ffff-ffff-ffffffffffff"

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.uuids())
    def test_uuids_round_trip(self, dialect: t.DialectName, value: uuid.UUID) -> None:
        """Every UUID reads back equal."""
        assert round_trip(t.UUID(), dialect, value) == value


class TestBytes:
    @pytest.mark.parametrize("value", [b"", b"\x00\xff", bytearray(b"ab")])
    def test_bytes_and_bytearrays_are_accepted(self, value: bytes) -> None:
        """Binary data is stored, NUL bytes included (B1 applies to text only)."""
        assert t.Bytes().check(value) is None

    @pytest.mark.parametrize("value", ["abc", memoryview(b"abc"), 1, [1, 2]])
    def test_non_bytes_are_refused(self, value: object) -> None:
        """Text, memoryviews, ints and lists are refused by a bytes column (B5)."""
        assert t.Bytes().check(value) is not None

    def test_length_is_enforced_in_bytes(self) -> None:
        """Bytes(3) accepts three bytes and refuses four."""
        assert t.Bytes(3).check(b"abc") is None
        rule = t.Bytes(3).check(b"abcd")
        assert rule is not None
        assert "3 bytes" in rule

    def test_a_bytearray_is_bound_as_bytes(self) -> None:
        """Drivers get immutable bytes even for a bytearray."""
        bound = store(t.Bytes(), "sqlite", bytearray(b"ab"))
        assert type(bound) is bytes
        assert bound == b"ab"

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(value=st.binary(max_size=64))
    def test_bytes_round_trip(self, dialect: t.DialectName, value: bytes) -> None:
        """Every byte string reads back equal."""
        assert round_trip(t.Bytes(), dialect, value) == value


class TestJSON:
    @pytest.mark.parametrize(
        "value",
        [{"a": [1, 2.5, None, True]}, [], "text", 3, None, {"nested": {"é": "😀"}}],
        ids=repr,
    )
    def test_json_values_are_accepted(self, value: object) -> None:
        """Dicts, lists and scalars are stored."""
        assert t.JSON().check(value) is None

    @pytest.mark.parametrize(
        "value", [{1, 2}, object(), {"a": float("nan")}, [float("inf")]], ids=repr
    )
    def test_non_serialisable_values_are_refused(self, value: object) -> None:
        """Sets, arbitrary objects, NaN and infinities are refused before any SQL."""
        rule = t.JSON().check(value)
        assert rule is not None
        assert "JSON" in rule

    def test_a_lone_surrogate_inside_json_is_refused(self) -> None:
        """A lone surrogate in a JSON string is refused (B2)."""
        assert t.JSON().check({"a": "\ud800"}) is not None

    def test_a_nul_inside_json_is_refused(self) -> None:
        """A NUL in a JSON string is refused: PostgreSQL's jsonb cannot hold \\u0000 (B1)."""
        assert t.JSON().check({"a": "x\x00y"}) is not None

    def test_an_attrs_value_object_is_accepted(self) -> None:
        """JSON(Address) accepts an Address through cattrs."""
        assert t.JSON(Address).check(Address("Main St 1", "Springfield")) is None

    @pytest.mark.parametrize("value", [{"street": "x"}, 42, "Main St", ["a"]], ids=repr)
    def test_a_wrong_value_for_a_value_object_is_refused(self, value: object) -> None:
        """A value that is not an Address gives a rule for JSON(Address), never an exception."""
        assert t.JSON(Address).check(value) is not None

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    def test_value_objects_round_trip(self, dialect: t.DialectName) -> None:
        """An Address is stored as a JSON object and structured back into an Address."""
        value = Address("Main St 1", "Zürich")
        bound = store(t.JSON(Address), dialect, value)
        assert bound == '{"street":"Main St 1","city":"Zürich"}'
        assert round_trip(t.JSON(Address), dialect, value) == value

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    def test_lists_of_value_objects_round_trip(self, dialect: t.DialectName) -> None:
        """list[Address] reads back as a list of Address."""
        column_type = t.JSON(list[Address])
        value = [Address("a", "b"), Address("c", "d")]
        assert column_type.check(value) is None
        assert round_trip(column_type, dialect, value) == value

    def test_a_value_that_does_not_read_back_equal_is_refused(self) -> None:
        """An untyped JSON dict with int keys would read back with str keys, so it is refused."""
        rule = t.JSON().check({1: "a"})
        assert rule is not None
        assert "read back equal" in rule
        assert t.JSON().check({"1": "a"}) is None

    @pytest.mark.parametrize(
        ("column_type", "value"),
        [
            pytest.param(t.JSON(dict[str, Any]), [0], id="list_for_dict"),
            pytest.param(t.JSON(dict[str, Any]), "text", id="str_for_dict"),
            pytest.param(t.JSON(list[str]), [0], id="int_item_for_str_item"),
            pytest.param(t.JSON(dict[str, int]), {"a": "1"}, id="str_value_for_int_value"),
        ],
    )
    def test_a_value_not_of_the_annotated_type_is_refused(
        self, column_type: t.JSON, value: object
    ) -> None:
        """JSON(T) refuses what is not a T, though an untyped JSON column would take it."""
        assert column_type.check(value) is not None
        assert t.JSON().check(value) is None

    def test_a_nul_inside_typed_json_is_refused(self) -> None:
        """A NUL inside a JSON(dict[str, Any]) value is refused too (B1)."""
        rule = t.JSON(dict[str, Any]).check({"a": ["x\x00"]})
        assert rule is not None
        assert "NUL" in rule

    def test_snapshots_tell_json_documents_apart_that_python_finds_equal(self) -> None:
        """1 and True, or 0 and False, are equal in Python but different JSON documents."""
        column_type = t.JSON()
        assert column_type.snapshot_form({"a": 1}) != column_type.snapshot_form({"a": True})
        assert column_type.snapshot_form([0]) != column_type.snapshot_form([False])
        assert column_type.snapshot_form({"b": 1, "a": [2]}) == column_type.snapshot_form(
            {"a": [2], "b": 1}
        )

    def test_memory_stores_the_text_too(self) -> None:
        """The memory backend stores JSON text, so stored rows are copies and 1 is not true."""
        binder, loader = t.JSON().binder("memory"), t.JSON().loader("memory")
        assert binder is not None and loader is not None
        document = {"a": [1, True]}
        stored = binder(document)
        assert isinstance(stored, str)
        assert loader(stored) == document and loader(stored) is not document

    def test_json_is_only_tested_for_null(self) -> None:
        """JSON documents compare differently per backend, so criteria refuse them."""
        rule = t.JSON().check_operand({"a": 1})
        assert rule is not None and "is_null" in rule
        assert t.JSON().comparable is False

    @pytest.mark.parametrize("dialect", ROUND_TRIP_DIALECTS)
    @given(
        value=st.recursive(
            st.none()
            | st.booleans()
            | st.integers(min_value=-(2**53), max_value=2**53)
            | st.floats(allow_nan=False, allow_infinity=False)
            | storable_text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(storable_text(max_size=5), inner, max_size=4)
            ),
            max_leaves=12,
        )
    )
    def test_plain_json_round_trips(self, dialect: t.DialectName, value: Any) -> None:
        """Every JSON document of dicts, lists and scalars reads back equal."""
        assert t.JSON().check(value) is None
        assert round_trip(t.JSON(), dialect, value) == value

    def test_the_annotation_specialises_an_untyped_json_column(self) -> None:
        """Column(t.JSON()) on an Address attribute becomes JSON(Address)."""
        assert t.JSON().for_annotation(Address) == t.JSON(Address)
        assert t.JSON(dict[str, int]).for_annotation(Address) == t.JSON(dict[str, int])
        assert t.JSON().for_annotation(Any) == t.JSON()

    def test_json_is_the_only_mutable_type(self) -> None:
        """Only JSON values can change in place (change tracking snapshots them as JSON text)."""
        mutable = {name for name in t.__all__ if _is_type(name) and getattr(t, name).mutable}
        assert mutable == {"JSON"}


class TestCheckOperand:
    def test_a_too_long_string_is_allowed_in_a_comparison(self) -> None:
        """A query may compare a String(3) column with a longer string."""
        assert t.String(3).check_operand("abcdef") is None

    @pytest.mark.parametrize("column_type", [t.String(3), t.Text()], ids=repr)
    def test_a_nul_is_refused_in_a_comparison(self, column_type: t.ColumnType) -> None:
        """A NUL can never be sent, so it is refused in a comparison too (B1)."""
        assert column_type.check_operand("a\x00") is not None

    def test_a_surrogate_is_refused_in_a_comparison(self) -> None:
        """A lone surrogate can never be sent, so it is refused in a comparison too (B2)."""
        assert t.String(3).check_operand("\ud800") is not None

    @pytest.mark.parametrize("column_type", [t.String(3), t.Text()], ids=repr)
    def test_like_is_allowed_on_text_columns(self, column_type: t.ColumnType) -> None:
        """LIKE patterns may be used on text columns, even longer than the column."""
        assert column_type.check_operand("%abcdef%", pattern=True) is None

    @pytest.mark.parametrize(
        ("column_type", "value"),
        [
            (t.Integer(), "1%"),
            (t.Enum(Status), "act%"),
            (t.UUID(), "abc%"),
            (t.DateTime(), "2024%"),
        ],
        ids=repr,
    )
    def test_like_on_a_non_text_column_is_refused(
        self, column_type: t.ColumnType, value: str
    ) -> None:
        """LIKE on a non-text column is refused, naming the rule."""
        rule = column_type.check_operand(value, pattern=True)
        assert rule is not None
        assert "text" in rule

    def test_comparisons_with_non_text_columns_use_the_column_rules(self) -> None:
        """A comparison operand must still be a valid value of the column's type."""
        assert t.Integer().check_operand(5) is None
        assert t.Integer().check_operand("5") is not None
        assert t.Integer().check_operand(2**31) is not None
        assert t.DateTime().check_operand(dt.datetime(2024, 1, 1)) is not None


class TestTypeForAnnotation:
    @pytest.mark.parametrize(
        ("annotation", "expected"),
        [
            (bool, t.Boolean()),
            (int, t.Integer()),
            (float, t.Float()),
            (str, t.Text()),
            (bytes, t.Bytes()),
            (dt.datetime, t.DateTime(tz=True)),
            (dt.date, t.Date()),
            (dt.time, t.Time()),
            (uuid.UUID, t.UUID()),
            (Status, t.Enum(Status)),
            (Address, t.JSON(Address)),
            (list[int], t.JSON(list[int])),
            (dict[str, Any], t.JSON(dict[str, Any])),
            (list, t.JSON(list)),
            (dict, t.JSON(dict)),
            (typing.List[Address], t.JSON(typing.List[Address])),  # noqa: UP006
        ],
        ids=repr,
    )
    def test_obvious_annotations_give_a_type(self, annotation: Any, expected: t.ColumnType) -> None:
        """A bare Column() gets the type its annotation makes obvious."""
        assert t.type_for_annotation(annotation) == expected

    @pytest.mark.parametrize("annotation", [D, object, Any, tuple[int, int], set[str]], ids=repr)
    def test_ambiguous_annotations_give_none(self, annotation: Any) -> None:
        """Annotations with no obvious column type (Decimal needs a precision) give None."""
        assert t.type_for_annotation(annotation) is None

    @pytest.mark.parametrize(
        "annotation", [bool, int, float, str, bytes, dt.datetime, dt.date, dt.time, uuid.UUID]
    )
    def test_inferred_types_fit_their_annotation(self, annotation: Any) -> None:
        """The inferred type of every plain annotation accepts that annotation."""
        inferred = t.type_for_annotation(annotation)
        assert inferred is not None
        assert inferred.accepts_annotation(annotation)


class TestSplitOptional:
    @pytest.mark.parametrize(
        "annotation",
        [int | None, typing.Optional[int], typing.Union[int, None], typing.Union[None, int]],  # noqa: UP007, UP045
        ids=repr,
    )
    def test_optional_annotations_are_split(self, annotation: Any) -> None:
        """`X | None` in any spelling becomes (X, True)."""
        assert t.split_optional(annotation) == (int, True)

    @pytest.mark.parametrize("annotation", [int, str, Address, list[int], Any], ids=repr)
    def test_plain_annotations_are_not_optional(self, annotation: Any) -> None:
        """An annotation without None is returned unchanged, not optional."""
        assert t.split_optional(annotation) == (annotation, False)

    def test_a_union_keeps_its_other_members(self) -> None:
        """`int | str | None` becomes (int | str, True)."""
        rest, optional = t.split_optional(int | str | None)
        assert optional is True
        assert get_args(rest) == (int, str)

    def test_a_union_without_none_is_not_optional(self) -> None:
        """`int | str` is not optional."""
        rest, optional = t.split_optional(int | str)
        assert optional is False
        assert set(get_args(rest)) == {int, str}


class TestDDL:
    @pytest.mark.parametrize(
        ("column_type", "expected"),
        [
            (t.SmallInteger(), ("smallint", "INTEGER", "SMALLINT", "Int16", "smallint")),
            (t.Integer(), ("integer", "INTEGER", "INT", "Int32", "integer")),
            (t.BigInteger(), ("bigint", "INTEGER", "BIGINT", "Int64", "bigint")),
            (t.Text(), ("text", "TEXT", "LONGTEXT", "String", "text")),
            (t.String(20), ("varchar(20)", "VARCHAR(20)", "varchar(20)", "String", "varchar(20)")),
            (t.Boolean(), ("boolean", "BOOLEAN", "BOOLEAN", "UInt8", "boolean")),
            (t.Float(), ("double precision", "REAL", "DOUBLE", "Float64", "double")),
            (
                t.Decimal(12, 3),
                (
                    "numeric(12, 3)",
                    "DECIMAL(12, 3)",
                    "numeric(12, 3)",
                    "Decimal(12, 3)",
                    "numeric(12, 3)",
                ),
            ),
            (t.Date(), ("date", "DATE", "DATE", "Date", "date")),
            (t.Time(), ("time", "TIME", "TIME(6)", "String", "time")),
            (
                t.DateTime(tz=True),
                (
                    "timestamptz",
                    "TIMESTAMP",
                    "DATETIME(6)",
                    "DateTime64(6, 'UTC')",
                    "timestamptz",
                ),
            ),
            (
                t.DateTime(tz=False),
                ("timestamp", "TIMESTAMP", "DATETIME(6)", "DateTime64(6)", "timestamp"),
            ),
            (t.UUID(), ("uuid", "CHAR(36)", "CHAR(36)", "UUID", "uuid")),
            (t.Bytes(), ("bytea", "BLOB", "LONGBLOB", "String", "bytea")),
            (t.JSON(), ("jsonb", "TEXT", "JSON", "String", "json")),
        ],
        ids=repr,
    )
    def test_each_type_names_its_ddl_per_dialect(
        self, column_type: t.ColumnType, expected: tuple[str, ...]
    ) -> None:
        """Every column type has the DDL type agreed for each dialect."""
        assert tuple(column_type.ddl(d) for d in DIALECTS) == expected

    @pytest.mark.parametrize(
        ("column_type", "expected"),
        [
            (t.String(20), "text"),
            (t.Text(), "text"),
            (t.Enum(Status), "text"),
            (t.Enum(Level), "integer"),
            (t.Decimal(10, 2), "numeric"),
            (t.Decimal(), "numeric"),
            (t.Integer(), "integer"),
            (t.DateTime(), "timestamptz"),
            (t.JSON(), "jsonb"),
        ],
        ids=repr,
    )
    def test_postgres_parameters_are_cast_to_the_unbounded_type(
        self, column_type: t.ColumnType, expected: str
    ) -> None:
        """Batch arrays are cast without length or scale, which would truncate or round."""
        assert column_type.parameter_ddl("postgresql") == expected

    def test_an_unknown_dialect_is_a_configuration_error(self) -> None:
        """Asking for a dialect a type does not know raises ConfigurationError naming both."""
        with pytest.raises(ConfigurationError, match=r"Integer.*oracle"):
            t.Integer().ddl("oracle")  # type: ignore[arg-type]

    def test_types_compare_by_value(self) -> None:
        """Column types are values: equal arguments make equal types."""
        assert t.String(5) == t.String(5)
        assert t.String(5) != t.String(6)
        assert t.Decimal(10, 2) == t.Decimal(10, 2)
        assert t.DateTime(tz=True) != t.DateTime(tz=False)
        assert hash(t.String(5)) == hash(t.String(5))


class TestEnumIntegerWidth:
    def test_small_int_values_use_a_32_bit_column(self) -> None:
        """An int-valued enum whose values fit 32 bits is an integer column."""
        import enum

        class Small(enum.Enum):
            A = 1
            B = 2**31 - 1

        assert t.Enum(Small).ddl("postgresql") == "integer"

    def test_large_int_values_use_a_64_bit_column(self) -> None:
        """An int-valued enum with a value past 32 bits gets a bigint column, not an overflow."""
        import enum

        class Large(enum.Enum):
            A = 1
            B = 2**40

        assert t.Enum(Large).ddl("postgresql") == "bigint"
        assert t.Enum(Large).ddl("sqlite") == "INTEGER"

    def test_values_past_64_bits_are_refused_when_declared(self) -> None:
        """An enum value no integer column can hold is a ConfigurationError."""
        import enum

        from mapper import ConfigurationError

        class Huge(enum.Enum):
            A = 2**70

        with pytest.raises(ConfigurationError, match="64-bit"):
            t.Enum(Huge)
