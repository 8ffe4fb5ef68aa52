"""Hypothesis strategies for column values, and a model of the value rules (GUARANTEES B1-B8).

For each column type of `mapper.types`:

- `valid_values(column_type)` draws values that every backend must store and give back equal;
- `invalid_values(column_type)` maps each rule to a strategy of values that break it;
- `column_values(column_type)` mixes both with broad strategies (any `st.text()`, any float,
  any datetime in any time zone, values of the wrong Python type) whose fate the model decides;
- `rule_broken(column_type, value)` is that model: the rule a value breaks, or None if it must
  be accepted. It is written from GUARANTEES and DESIGN, not from `mapper.types`, so a test can
  hold the library's checks against it.

JSON columns take an attrs value type; strategies and model follow its annotations (str, int,
float, bool, `X | None`, `list[X]`, `dict[str, X]`, nested attrs classes).

Used by `tests/integration/test_bad_input.py`; other suites may draw entity values from here.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import types
import typing
import uuid
from typing import Any

import attrs
from hypothesis import strategies as st

from mapper import types as t

__all__ = [
    "INJECTION_STRINGS",
    "INTEGER_BITS",
    "aware_datetimes",
    "column_values",
    "decimal_from",
    "decimals_fitting",
    "float_exact",
    "foreign_values",
    "invalid_values",
    "naive_datetimes",
    "non_finite_floats",
    "rule_broken",
    "storable_characters",
    "storable_text",
    "surrogates",
    "text_with_nul",
    "text_with_surrogate",
    "time_zones",
    "valid_values",
]

UTC = dt.UTC

storable_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
"""Any code point a text column must hold: everything but NUL and lone surrogates."""

surrogates = st.characters(categories=["Cs"])
"""Lone surrogates (U+D800-U+DFFF): no driver can encode them (B2)."""

INJECTION_STRINGS = (
    "x'); drop table t; --",
    "'; DROP TABLE holders; --",
    "a\\' OR 1=1 -- ",
    '" OR ""="',
    "1; SELECT pg_sleep(1)",
    "Robert'); DELETE FROM holders WHERE ('1'='1",
    "$1",
    "?",
    "%s",
    "%(p1)s",
    "\\",
    "'",
    "`",
    "/* */ --",
)
"""Values that would break SQL if they were ever pasted into its text (B9)."""

INTEGER_BITS: dict[type, int] = {t.SmallInteger: 16, t.Integer: 32, t.BigInteger: 64}

_MAX_OFFSET = dt.timedelta(hours=24) - dt.timedelta(microseconds=1)


def storable_text(min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Text every backend must store (B1-B3): astral characters in, NUL and surrogates out."""
    return st.text(storable_characters, min_size=min_size, max_size=max_size)


@st.composite
def _inserted(draw: st.DrawFn, base: st.SearchStrategy[str], piece: st.SearchStrategy[str]) -> str:
    text = draw(base)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(piece) + text[at:]


def text_with_nul(max_size: int = 10) -> st.SearchStrategy[str]:
    """Storable text with at least one NUL somewhere (B1)."""
    return _inserted(storable_text(max_size=max_size), st.just("\x00"))


def text_with_surrogate(max_size: int = 10) -> st.SearchStrategy[str]:
    """Storable text with at least one lone surrogate somewhere (B2)."""
    return _inserted(storable_text(max_size=max_size), surrogates)


def decimal_from(coefficient: int, exponent: int) -> decimal.Decimal:
    """`coefficient * 10**exponent`, exactly (no context rounding, whatever the digit count)."""
    return decimal.Decimal(f"{coefficient}E{exponent:+d}")


def non_finite_floats() -> st.SearchStrategy[float]:
    """NaN (with any payload and sign) and the infinities (B6)."""
    return st.one_of(
        st.sampled_from([math.nan, -math.nan, math.inf, -math.inf]),
        st.floats().filter(lambda x: not math.isfinite(x)),
    )


def time_zones() -> st.SearchStrategy[dt.tzinfo]:
    """IANA zones (with their historic odd offsets), UTC and fixed offsets to the microsecond."""
    fixed = st.timedeltas(min_value=-_MAX_OFFSET, max_value=_MAX_OFFSET).map(dt.timezone)
    return st.one_of(st.just(UTC), st.timezones(), fixed)


def _utc_in_range(value: dt.datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def _storable_instant(value: dt.datetime) -> bool:
    """In UTC's range and not one of the two extreme instants (reserved: ±infinity on PG)."""
    if not _utc_in_range(value):
        return False
    instant = value.astimezone(UTC).replace(tzinfo=None)
    return instant not in (dt.datetime.min, dt.datetime.max)


def aware_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes that can be stored, the nearest edges of the range included."""
    edges = st.sampled_from(
        [
            (dt.datetime.min + dt.timedelta(microseconds=1)).replace(tzinfo=UTC),
            (dt.datetime.max - dt.timedelta(microseconds=1)).replace(tzinfo=UTC),
            dt.datetime(1970, 1, 1, tzinfo=UTC),
            dt.datetime(2000, 1, 1, tzinfo=UTC),
            dt.datetime(1, 1, 2, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))),
        ]
    )
    return st.one_of(edges, st.datetimes(timezones=time_zones()).filter(_storable_instant))


def naive_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Naive datetimes over the whole range, edges included."""
    return st.one_of(st.sampled_from([dt.datetime.min, dt.datetime.max]), st.datetimes())


@st.composite
def _aware_out_of_utc_range(draw: st.DrawFn) -> dt.datetime:
    """Aware datetimes that fall before year 1 or after year 9999 once converted to UTC."""
    hours = draw(st.integers(1, 23))
    if draw(st.booleans()):
        moment = dt.datetime.min + dt.timedelta(minutes=draw(st.integers(0, hours * 60 - 1)))
        return moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=hours)))
    moment = dt.datetime.max - dt.timedelta(minutes=draw(st.integers(0, hours * 60 - 1)))
    return moment.replace(tzinfo=dt.timezone(-dt.timedelta(hours=hours)))


def decimals_fitting(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    """Decimals a `Decimal(precision, scale)` column must store exactly (B7).

    Trailing zeros past the scale are fine (1.500 fits a scale of 2): only significant places
    count. Built from integers, so no decimal context rounds them on the way.
    """
    whole = precision - scale
    largest = 10**precision - 1
    coefficients = st.integers(-largest, largest)
    at_scale = st.builds(decimal_from, coefficients, st.just(-scale))
    padded = st.builds(
        lambda c, zeros: decimal_from(c * 10**zeros, -scale - zeros),
        coefficients,
        st.integers(1, 12),
    )
    fewer_places = st.integers(0, scale).flatmap(
        lambda places: st.builds(
            decimal_from,
            st.integers(-(10 ** (whole + places) - 1), 10 ** (whole + places) - 1),
            st.just(-places),
        )
    )
    positive_exponent = st.integers(0, max(whole - 1, 0)).flatmap(
        lambda exponent: st.builds(
            decimal_from,
            st.integers(-(10 ** (whole - exponent) - 1), 10 ** (whole - exponent) - 1),
            st.just(exponent),
        )
    )
    bound = decimal_from(largest, -scale)
    # copy_negate, not unary minus: minus rounds to the context's 28 digits.
    library = st.decimals(
        min_value=bound.copy_negate(),
        max_value=bound,
        places=scale,
        allow_nan=False,
        allow_infinity=False,
    )
    edges = st.sampled_from(
        [
            bound,
            bound.copy_negate(),
            decimal.Decimal(0),
            decimal.Decimal("-0"),
            decimal_from(1, -scale),
        ]
    )
    return st.one_of(edges, at_scale, padded, fewer_places, positive_exponent, library)


def _decimals_too_precise(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    """A fitting value plus one more significant digit somewhere past the scale.

    Places run to 45, so the digit count passes the 28 of Python's default decimal context.
    """

    def build(coefficient: int, places: int, digit: int) -> decimal.Decimal:
        sign = -1 if coefficient < 0 else 1
        return decimal_from(coefficient * 10 ** (places - scale) + sign * digit, -places)

    largest = 10**precision - 1
    return st.builds(
        build,
        st.integers(-largest, largest),
        st.integers(scale + 1, 45),
        st.integers(1, 9),
    )


def _decimals_too_large(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    """Decimals with more digits before the point than `precision - scale`."""
    whole = precision - scale
    big = st.integers(min_value=10**whole, max_value=10 ** (whole + 30))
    signed = st.tuples(big, st.booleans()).map(lambda pair: -pair[0] if pair[1] else pair[0])
    return st.one_of(
        st.sampled_from([decimal_from(1, whole), decimal_from(-1, whole)]),
        st.builds(
            lambda n, places: decimal_from(n * 10**places, -places), signed, st.integers(0, scale)
        ),
        st.builds(decimal_from, st.integers(1, 99), st.integers(whole, whole + 400)),
    )


def foreign_values() -> st.SearchStrategy[Any]:
    """Values of many Python types: mostly the wrong type for any given column (B5)."""
    return st.one_of(
        st.integers(),
        st.floats(),
        storable_text(max_size=8),
        st.binary(max_size=8),
        st.booleans(),
        st.dates(),
        st.times(),
        st.datetimes(),
        st.uuids(),
        st.decimals(allow_nan=False, places=3, min_value=-1000, max_value=1000),
        st.lists(st.integers(), max_size=3),
        st.tuples(st.integers()),
        st.dictionaries(storable_text(max_size=3), st.integers(), max_size=3),
        st.builds(object),
        st.just(b"x").map(memoryview),
    )


# -- per column type ---------------------------------------------------------------------


def valid_values(column_type: t.ColumnType) -> st.SearchStrategy[Any]:
    """Values `column_type` must accept on every backend and give back equal."""
    ct = column_type
    if isinstance(ct, t.String):
        return st.one_of(
            storable_text(max_size=ct.length),
            st.text(st.characters(min_codepoint=0x10000), min_size=ct.length, max_size=ct.length),
        )
    if isinstance(ct, t.Text):
        return st.one_of(
            storable_text(),
            st.text(st.characters(min_codepoint=0x10000), max_size=20),
            st.sampled_from(INJECTION_STRINGS),
        )
    if isinstance(ct, t.IntegerType):
        low, high = _int_range(ct)
        return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, -1, 1]))
    if isinstance(ct, t.Float):
        return st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from([0.0, -0.0, 5e-324, -1.7976931348623157e308, 2.0**53]),
            st.integers(-(2**53), 2**53),
        )
    if isinstance(ct, t.Decimal):
        return decimals_fitting(ct.precision, ct.scale)
    if isinstance(ct, t.DateTime):
        return aware_datetimes() if ct.tz else naive_datetimes()
    if isinstance(ct, t.Date):
        return st.one_of(st.sampled_from([dt.date.min, dt.date.max]), st.dates())
    if isinstance(ct, t.Time):
        return st.one_of(st.sampled_from([dt.time.min, dt.time.max]), st.times())
    if isinstance(ct, t.UUID):
        return st.one_of(st.uuids(), st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]))
    if isinstance(ct, t.Bytes):
        size = ct.length

        def fit(data: bytes) -> bytes:
            return data if size is None else data[:size]

        return st.one_of(
            st.binary(max_size=64).map(fit),
            st.binary(max_size=8).map(lambda b: fit(b"\x00" + b + b"\x00")),
            st.binary(max_size=8).map(lambda b: bytearray(fit(b))),
        )
    if isinstance(ct, t.Boolean):
        return st.booleans()
    if isinstance(ct, t.Enum):
        return st.sampled_from(ct.enum_class)
    if isinstance(ct, t.JSON):
        return _json_valid(ct.value_type)
    raise TypeError(f"no strategy for {ct!r}")


def invalid_values(column_type: t.ColumnType) -> dict[str, st.SearchStrategy[Any]]:
    """Per rule of `column_type`, a strategy of values that break it."""
    ct = column_type
    if isinstance(ct, (t.String, t.Text)):
        rules: dict[str, st.SearchStrategy[Any]] = {
            "NUL in text (B1)": text_with_nul(),
            "lone surrogate (B2)": text_with_surrogate(),
            "wrong type (B5)": st.one_of(
                st.integers(),
                st.binary(max_size=5),
                st.lists(storable_text(max_size=2), max_size=2),
            ),
        }
        if isinstance(ct, t.String):
            rules["too long (B4)"] = st.one_of(
                storable_text(min_size=ct.length + 1, max_size=ct.length + 8),
                st.text(
                    st.characters(min_codepoint=0x10000),
                    min_size=ct.length + 1,
                    max_size=ct.length + 3,
                ),
            )
        return rules
    if isinstance(ct, t.IntegerType):
        low, high = _int_range(ct)
        return {
            "out of range (B5)": st.one_of(
                st.sampled_from([low - 1, high + 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
                st.integers(max_value=low - 1),
                st.integers(min_value=high + 1),
            ),
            "wrong type (B5)": st.one_of(
                st.booleans(),
                st.integers(low, high).map(str),
                st.floats(),
                st.integers(-100, 100).map(decimal.Decimal),
            ),
        }
    if isinstance(ct, t.Float):
        inexact = st.integers(min_value=2**53 + 1, max_value=2**1100).filter(
            lambda n: float_exact(n) is False
        )
        return {
            "NaN or infinity (B6)": non_finite_floats(),
            "int a float cannot hold (B5)": st.one_of(
                st.sampled_from([2**53 + 1, -(2**53) - 1, 10**400]),
                inexact,
                inexact.map(lambda n: -n),
            ),
            "wrong type (B5)": st.one_of(
                st.booleans(),
                st.floats(allow_nan=False).map(str),
                st.decimals(
                    allow_nan=False,
                    allow_infinity=False,
                    places=2,
                    max_value=10**6,
                    min_value=-(10**6),
                ),
            ),
        }
    if isinstance(ct, t.Decimal):
        return {
            "more places than the scale (B7)": _decimals_too_precise(ct.precision, ct.scale),
            "more digits than the precision (B7)": _decimals_too_large(ct.precision, ct.scale),
            "not finite (B7)": st.sampled_from(
                [decimal.Decimal(x) for x in ("NaN", "-NaN", "sNaN", "Infinity", "-Infinity")]
            ),
            "wrong type (B5)": st.one_of(
                st.floats(),
                st.booleans(),
                decimals_fitting(ct.precision, ct.scale).map(str),
            ),
        }
    if isinstance(ct, t.DateTime):
        rules = {"wrong type (B5)": st.one_of(st.dates(), st.times(), st.datetimes().map(str))}
        if ct.tz:
            rules["naive for an aware column (B8)"] = naive_datetimes()
            rules["outside UTC's range (B8)"] = _aware_out_of_utc_range()
            rules["an extreme instant, reserved (B8)"] = st.sampled_from(
                [
                    dt.datetime.min.replace(tzinfo=UTC),
                    dt.datetime.max.replace(tzinfo=UTC),
                    dt.datetime(
                        1, 1, 1, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))
                    ),
                ]
            )
        else:
            rules["aware for a naive column (B8)"] = aware_datetimes()
        return rules
    if isinstance(ct, t.Date):
        return {
            "datetime for a date (B5)": st.datetimes(timezones=st.none() | time_zones()),
            "wrong type (B5)": st.one_of(st.dates().map(str), st.times()),
        }
    if isinstance(ct, t.Time):
        return {
            "aware time (B8)": st.times(timezones=time_zones()),
            "wrong type (B5)": st.one_of(st.datetimes(), st.times().map(str), st.timedeltas()),
        }
    if isinstance(ct, t.UUID):
        return {
            "wrong type (B5)": st.one_of(
                st.uuids().map(str),
                st.uuids().map(lambda u: u.bytes),
                st.uuids().map(lambda u: u.int),
            ),
        }
    if isinstance(ct, t.Bytes):
        rules = {
            "wrong type (B5)": st.one_of(
                storable_text(max_size=5),
                st.lists(st.integers(0, 255), max_size=4),
                st.binary(max_size=4).map(memoryview),
            ),
        }
        if ct.length is not None:
            rules["too long (B4)"] = st.binary(min_size=ct.length + 1, max_size=ct.length + 8)
        return rules
    if isinstance(ct, t.Boolean):
        return {
            "wrong type (B5)": st.one_of(
                st.sampled_from([0, 1, "true", "false", "t", 0.0, 1.0]), st.integers()
            ),
        }
    if isinstance(ct, t.Enum):
        members = list(ct.enum_class)
        return {
            "wrong type (B5)": st.one_of(
                st.sampled_from([m.value for m in members]),
                st.sampled_from([m.name for m in members]),
                storable_text(max_size=5),
                st.integers(),
            ),
        }
    if isinstance(ct, t.JSON):
        rules = {}
        for rule, name in (
            ("nul", "NUL in text (B1)"),
            ("surrogate", "lone surrogate (B2)"),
            ("non-finite", "NaN or infinity (B6)"),
            ("type", "wrong type (B5)"),
        ):
            strategy = _json_invalid(ct.value_type, rule)
            if strategy is not None:
                rules[name] = strategy
        return rules
    raise TypeError(f"no strategy for {ct!r}")


def column_values(column_type: t.ColumnType) -> st.SearchStrategy[Any]:
    """Valid, invalid and arbitrary values for `column_type`; decide each with `rule_broken`."""
    broad: list[st.SearchStrategy[Any]] = [foreign_values()]
    ct = column_type
    if isinstance(ct, (t.String, t.Text)):
        broad.append(st.text())
    elif isinstance(ct, t.IntegerType):
        broad.append(st.integers())
    elif isinstance(ct, t.Float):
        broad.append(st.floats())
    elif isinstance(ct, t.Decimal):
        broad.extend(
            st.decimals(places=places, max_value=10**40, min_value=-(10**40))
            for places in (ct.scale, ct.scale + 1, ct.scale + 10)
        )
    elif isinstance(ct, (t.DateTime, t.Date)):
        broad.append(st.datetimes(timezones=st.none() | st.timezones()))
    elif isinstance(ct, t.Time):
        broad.append(st.times(timezones=st.none() | st.timezones()))
    elif isinstance(ct, t.Bytes):
        broad.append(st.binary())
    # Half the values come from the valid strategy. (st.one_of would flatten the nested
    # one_ofs and pick uniformly among all their branches, mostly invalid ones.)
    families = (
        valid_values(ct),
        valid_values(ct),
        st.one_of(*invalid_values(ct).values()),
        st.one_of(*broad),
    )
    return st.integers(0, len(families) - 1).flatmap(lambda index: families[index])


# -- the model ---------------------------------------------------------------------------


def _int_range(column_type: t.ColumnType) -> tuple[int, int]:
    bits = INTEGER_BITS[type(column_type)]
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def float_exact(value: int) -> bool:
    """Whether a float holds the int `value` exactly (so it can come back equal)."""
    try:
        return float(value) == value
    except OverflowError:
        return False


def _text_rule(value: Any) -> str | None:
    if not isinstance(value, str):
        return "wrong type"
    if "\x00" in value:
        return "NUL in text"
    if any("\ud800" <= c <= "\udfff" for c in value):
        return "lone surrogate"
    return None


def _float_rule(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (float, int)):
        return "wrong type"
    if isinstance(value, int):
        return None if float_exact(value) else "int a float cannot hold"
    return None if math.isfinite(value) else "NaN or infinity"


def _decimal_rule(precision: int, scale: int, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = decimal.Decimal(value)
    if not isinstance(value, decimal.Decimal):
        return "wrong type"
    if not value.is_finite():
        return "not finite"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits)))
    # Only significant places count: strip trailing zeros by integer arithmetic, no context.
    while coefficient and coefficient % 10 == 0 and exponent < 0:
        coefficient //= 10
        exponent += 1
    if coefficient == 0:
        return None
    if max(0, -exponent) > scale:
        return "more places than the scale"
    whole_digits = max(0, len(str(coefficient)) + exponent)
    if whole_digits > precision - scale:
        return "more digits than the precision"
    return None


def _aware(value: dt.datetime | dt.time) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def rule_broken(column_type: t.ColumnType, value: Any) -> str | None:
    """The rule `value` breaks for `column_type` (a short name), or None if it must be stored.

    None is not modelled here: whether a column is nullable is the mapping's business.
    """
    ct = column_type
    if isinstance(ct, t.String):
        rule = _text_rule(value)
        if rule is None and len(value) > ct.length:
            return "too long"
        return rule
    if isinstance(ct, t.Text):
        return _text_rule(value)
    if isinstance(ct, t.IntegerType):
        if isinstance(value, bool) or not isinstance(value, int):
            return "wrong type"
        low, high = _int_range(ct)
        return None if low <= value <= high else "out of range"
    if isinstance(ct, t.Float):
        return _float_rule(value)
    if isinstance(ct, t.Decimal):
        return _decimal_rule(ct.precision, ct.scale, value)
    if isinstance(ct, t.DateTime):
        if not isinstance(value, dt.datetime):
            return "wrong type"
        if not ct.tz:
            return "aware for a naive column" if _aware(value) else None
        if not _aware(value):
            return "naive for an aware column"
        if not _utc_in_range(value):
            return "outside UTC's range"
        instant = value.astimezone(dt.UTC).replace(tzinfo=None)
        return (
            "a reserved extreme instant" if instant in (dt.datetime.min, dt.datetime.max) else None
        )
    if isinstance(ct, t.Date):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            return "wrong type"
        return None
    if isinstance(ct, t.Time):
        if not isinstance(value, dt.time):
            return "wrong type"
        return "aware time" if value.tzinfo is not None else None
    if isinstance(ct, t.UUID):
        return None if isinstance(value, uuid.UUID) else "wrong type"
    if isinstance(ct, t.Bytes):
        if not isinstance(value, (bytes, bytearray)):
            return "wrong type"
        if ct.length is not None and len(value) > ct.length:
            return "too long"
        return None
    if isinstance(ct, t.Boolean):
        return None if type(value) is bool else "wrong type"
    if isinstance(ct, t.Enum):
        return None if isinstance(value, ct.enum_class) else "wrong type"
    if isinstance(ct, t.JSON):
        return _json_rule(ct.value_type, value)
    raise TypeError(f"no model for {ct!r}")


# -- JSON value types --------------------------------------------------------------------


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unions other than X | None are not modelled: {annotation!r}")
        return args[0], True
    return annotation, False


def _fields(cls: type) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return [(field.name, hints[field.name]) for field in attrs.fields(cls)]


def _json_valid(annotation: Any) -> st.SearchStrategy[Any]:
    base, optional = _split_optional(annotation)
    strategy: st.SearchStrategy[Any]
    origin = typing.get_origin(base)
    if attrs.has(base):
        strategy = st.builds(base, **{name: _json_valid(hint) for name, hint in _fields(base)})
    elif base is str:
        strategy = storable_text(max_size=12)
    elif base is bool:
        strategy = st.booleans()
    elif base is int:
        strategy = st.integers()
    elif base is float:
        strategy = st.floats(allow_nan=False, allow_infinity=False)
    elif origin is list:
        (item,) = typing.get_args(base)
        strategy = st.lists(_json_valid(item), max_size=4)
    elif origin is dict:
        _, item = typing.get_args(base)
        strategy = st.dictionaries(storable_text(max_size=6), _json_valid(item), max_size=3)
    else:
        raise TypeError(f"JSON annotation {base!r} is not modelled")
    return st.none() | strategy if optional else strategy


def _json_invalid(annotation: Any, rule: str) -> st.SearchStrategy[Any] | None:
    """Values of `annotation`'s shape with one part breaking `rule`; None if it cannot."""
    base, _ = _split_optional(annotation)
    origin = typing.get_origin(base)
    if attrs.has(base):
        options = [
            (name, bad)
            for name, hint in _fields(base)
            if (bad := _json_invalid(hint, rule)) is not None
        ]
        if not options:
            return None

        @st.composite
        def spoil_one_field(draw: st.DrawFn) -> Any:
            value = draw(_json_valid(base))
            name, bad = draw(st.sampled_from(options))
            return attrs.evolve(value, **{name: draw(bad)})

        if rule == "type":
            unstructured = _json_valid(base).map(attrs.asdict)
            return st.one_of(spoil_one_field(), unstructured)
        return spoil_one_field()
    if base is str:
        return {
            "nul": text_with_nul(),
            "surrogate": text_with_surrogate(),
            "type": st.one_of(st.integers(), st.lists(storable_text(max_size=2), max_size=2)),
        }.get(rule)
    if base is int:
        if rule == "type":
            return st.one_of(
                storable_text(max_size=4),
                st.floats(allow_nan=False, allow_infinity=False).filter(
                    lambda x: not x.is_integer()
                ),
            )
        return None
    if base is float:
        return {"non-finite": non_finite_floats(), "type": storable_text(max_size=4)}.get(rule)
    if base is bool:
        return st.sampled_from([0, 1, "true"]) if rule == "type" else None
    if origin in (list, dict):
        args = typing.get_args(base)
        item_bad = _json_invalid(args[-1], rule)
        if origin is list:
            wrong_shape = _json_valid(base).map(tuple) if rule == "type" else None
            inner = (
                None
                if item_bad is None
                else st.tuples(_json_valid(base), item_bad).map(lambda pair: [*pair[0], pair[1]])
            )
        else:
            wrong_shape = None
            inner = (
                None
                if item_bad is None
                else st.tuples(_json_valid(base), storable_text(max_size=4), item_bad).map(
                    lambda triple: {**triple[0], triple[1]: triple[2]}
                )
            )
            key_bad = {"nul": text_with_nul(4), "surrogate": text_with_surrogate(4)}.get(rule)
            if key_bad is not None:
                bad_key = st.tuples(key_bad, _json_valid(args[-1])).map(lambda kv: {kv[0]: kv[1]})
                inner = bad_key if inner is None else st.one_of(inner, bad_key)
        parts = [s for s in (wrong_shape, inner) if s is not None]
        return st.one_of(*parts) if parts else None
    return None


def _json_rule(annotation: Any, value: Any) -> str | None:
    if annotation is Any:
        raise TypeError("JSON columns without a value type are not modelled")
    base, optional = _split_optional(annotation)
    if value is None:
        return None if optional else "wrong type"
    origin = typing.get_origin(base)
    if attrs.has(base):
        if type(value) is not base:
            return "wrong type"
        for name, hint in _fields(base):
            rule = _json_rule(hint, getattr(value, name))
            if rule is not None:
                return rule
        return None
    if base is str:
        return _text_rule(value)
    if base is bool:
        return None if type(value) is bool else "wrong type"
    if base is int:
        return None if type(value) is int else "wrong type"
    if base is float:
        return _float_rule(value)
    if origin is list:
        if type(value) is not list:
            return "wrong type"
        (item,) = typing.get_args(base)
        return next((r for v in value if (r := _json_rule(item, v)) is not None), None)
    if origin is dict:
        if type(value) is not dict:
            return "wrong type"
        _, item = typing.get_args(base)
        for key, v in value.items():
            rule = _text_rule(key) or _json_rule(item, v)
            if rule is not None:
                return rule
        return None
    raise TypeError(f"JSON annotation {base!r} is not modelled")
