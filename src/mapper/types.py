"""Column types: the Python type a column holds, its checks, and its form on every backend.

Each type owns three things for every dialect: the DDL type name (`ddl`), how a Python value
is turned into what the driver wants (`binder`) and how the driver's value comes back
(`loader`). `check` holds the value rules that are the same on every backend (GUARANTEES
B1-B8), so a value that passes is stored and read back equal everywhere.

Pure: used by `mapping.py` (declarations), `codec.py` (compiled converters), `schema.py`
(DDL) and the dialects. Dialect names are the `DialectName` literals below.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import attrs
import cattrs

from mapper.errors import ConfigurationError

__all__ = [
    "JSON",
    "BigInteger",
    "Boolean",
    "Bytes",
    "ColumnType",
    "Converter",
    "Date",
    "DateTime",
    "Decimal",
    "DialectName",
    "Enum",
    "Float",
    "Integer",
    "IntegerType",
    "SmallInteger",
    "String",
    "Text",
    "Time",
    "UUID",
    "type_for_annotation",
]

DialectName = Literal["postgresql", "sqlite", "mysql", "clickhouse", "memory"]
Converter = Callable[[Any], Any]

_UTC = dt.UTC
# NUL is refused by PostgreSQL and silently kept elsewhere; lone surrogates cannot be encoded
# by any driver. Both are refused in text on every backend (GUARANTEES B1, B2).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_json_converter = cattrs.Converter()
_SQLITE_EXACT_DIGITS = 15


def _type_name(value: object) -> str:
    return type(value).__name__


def _pattern_rule(value: object) -> str | None:
    rule = _text_rule(value)
    if rule is None and isinstance(value, str):
        trailing = len(value) - len(value.rstrip("\\"))
        if trailing % 2:
            # PostgreSQL refuses such a pattern; SQLite matches nothing with it.
            return "ends with a lone escape character \\ (escape it as \\\\)"
    return rule


def _text_rule(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expected str, got {_type_name(value)}"
    if value.isascii():
        if "\x00" in value:
            return "contains a NUL character"
        return None
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate {found.group()!r}, which no database can store"


@attrs.frozen
class ColumnType:
    """Base of all column types. Subclasses are frozen attrs classes, compared by value."""

    python_type: ClassVar[type | tuple[type, ...]] = object
    ddl_names: ClassVar[dict[str, str]] = {}
    mutable: ClassVar[bool] = False
    comparable: ClassVar[bool] = True
    """Whether criteria may compare and order by it (JSON documents compare differently on
    every backend, so they only take is_null())."""
    textual: ClassVar[bool] = False
    """Stored as text that is compared and ordered (the DDL gives it a code-point collation)."""

    def check(self, value: Any) -> str | None:
        """Return the rule `value` breaks, or None if it may be stored. Never None itself."""
        if not isinstance(value, self.python_type):
            return f"expected {self._expected()}, got {_type_name(value)}"
        return None

    def fast_check(self, name: str) -> str | None:
        """A Python expression, over the variable `name`, that is true only for values
        `check` accepts: compiled validators try it first and call `check` (for the rule's
        wording) when it is false. None when the type has no such shortcut."""
        return None

    def check_operand(self, value: Any, pattern: bool = False) -> str | None:
        """The rule a criteria operand breaks, or None.

        Like `check`, except that a query may compare with values that could not be stored
        (a string longer than the column). `pattern` checks a LIKE pattern.
        """
        if pattern:
            return "like / ilike apply to text columns only"
        return self.check(value)

    def _expected(self) -> str:
        kinds = self.python_type if isinstance(self.python_type, tuple) else (self.python_type,)
        return " or ".join(k.__name__ for k in kinds)

    def ddl(self, dialect: DialectName) -> str:
        """The column type in `dialect`'s DDL."""
        try:
            return self.ddl_names[dialect]
        except KeyError:
            raise ConfigurationError(
                f"{type(self).__name__} has no DDL for the {dialect} dialect"
            ) from None

    def parameter_ddl(self, dialect: DialectName) -> str:
        """The type a batch parameter is cast to: like `ddl`, without length or scale limits."""
        return self.ddl(dialect)

    def binder(self, dialect: DialectName) -> Converter | None:
        """Function turning a checked Python value into the driver's value; None if identity."""
        return None

    def loader(self, dialect: DialectName) -> Converter | None:
        """Function turning the driver's value into the Python value; None if identity."""
        return None

    def unsupported_on(self, dialect: DialectName) -> str | None:
        """Why this type cannot be stored faithfully on `dialect`, or None."""
        return None

    def snapshot_form(self, value: Any) -> Any:
        """What change tracking compares for a value of a `mutable` type (a frozen copy)."""
        return value

    def accepts_annotation(self, annotation: Any) -> bool:
        """Whether an attribute annotated `annotation` (None stripped) fits this type."""
        if annotation is Any:
            return True
        kinds = self.python_type if isinstance(self.python_type, tuple) else (self.python_type,)
        return isinstance(annotation, type) and any(issubclass(annotation, k) for k in kinds)

    def for_annotation(self, annotation: Any) -> ColumnType:
        """This type specialised for the attribute's annotation (JSON uses it)."""
        return self


def _int_range(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@attrs.frozen
class IntegerType(ColumnType):
    """Base of the integer types; `bits` sets the signed range."""

    python_type: ClassVar[type | tuple[type, ...]] = int
    bits: ClassVar[int] = 32

    def check(self, value: Any) -> str | None:
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            return f"expected int, got {_type_name(value)}"
        low, high = _int_range(self.bits)
        if not low <= value <= high:
            return f"out of range for a {self.bits}-bit integer [{low}, {high}]"
        return None

    def fast_check(self, name: str) -> str | None:
        low, high = _int_range(self.bits)
        return f"type({name}) is int and {low} <= {name} <= {high}"

    def accepts_annotation(self, annotation: Any) -> bool:
        return annotation is Any or (
            isinstance(annotation, type)
            and issubclass(annotation, int)
            and not issubclass(annotation, bool)
        )


@attrs.frozen
class Integer(IntegerType):
    """A 32-bit signed integer."""

    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "integer",
        "sqlite": "INTEGER",
        "mysql": "INT",
        "clickhouse": "Int32",
        "memory": "integer",
    }


@attrs.frozen
class BigInteger(IntegerType):
    """A 64-bit signed integer."""

    bits: ClassVar[int] = 64
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "bigint",
        "sqlite": "INTEGER",
        "mysql": "BIGINT",
        "clickhouse": "Int64",
        "memory": "bigint",
    }


@attrs.frozen
class SmallInteger(IntegerType):
    """A 16-bit signed integer."""

    bits: ClassVar[int] = 16
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "smallint",
        "sqlite": "INTEGER",
        "mysql": "SMALLINT",
        "clickhouse": "Int16",
        "memory": "smallint",
    }


@attrs.frozen
class Text(ColumnType):
    """Unbounded text. NUL characters and lone surrogates are refused on every backend."""

    python_type: ClassVar[type | tuple[type, ...]] = str
    textual: ClassVar[bool] = True
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "text",
        "sqlite": "TEXT",
        "mysql": "LONGTEXT",
        "clickhouse": "String",
        "memory": "text",
    }

    def check(self, value: Any) -> str | None:
        return _text_rule(value)

    def fast_check(self, name: str) -> str | None:
        # ASCII text without NUL holds no character any backend refuses.
        return f"type({name}) is str and {name}.isascii() and '\\x00' not in {name}"

    def check_operand(self, value: Any, pattern: bool = False) -> str | None:
        return _pattern_rule(value) if pattern else _text_rule(value)


@attrs.frozen
class String(ColumnType):
    """Text of at most `length` characters (code points, counted the same on every backend)."""

    python_type: ClassVar[type | tuple[type, ...]] = str
    textual: ClassVar[bool] = True
    length: int = attrs.field()

    @length.validator
    def _positive(self, _: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigurationError(f"String length must be a positive int, got {value!r}")

    def check(self, value: Any) -> str | None:
        rule = _text_rule(value)
        if rule is None and len(value) > self.length:
            return f"longer than {self.length} characters ({len(value)})"
        return rule

    def fast_check(self, name: str) -> str | None:
        return (
            f"type({name}) is str and len({name}) <= {self.length} and {name}.isascii() "
            f"and '\\x00' not in {name}"
        )

    def check_operand(self, value: Any, pattern: bool = False) -> str | None:
        return _pattern_rule(value) if pattern else _text_rule(value)

    def ddl(self, dialect: DialectName) -> str:
        if dialect == "clickhouse":
            return "String"
        if dialect == "sqlite":
            return f"VARCHAR({self.length})"
        return f"varchar({self.length})"

    def parameter_ddl(self, dialect: DialectName) -> str:
        return Text().ddl(dialect)


@attrs.frozen
class Boolean(ColumnType):
    """True or False; ints are refused."""

    python_type: ClassVar[type | tuple[type, ...]] = bool
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "boolean",
        "sqlite": "BOOLEAN",
        "mysql": "BOOLEAN",
        "clickhouse": "UInt8",
        "memory": "boolean",
    }

    def check(self, value: Any) -> str | None:
        if type(value) is not bool:
            return f"expected bool, got {_type_name(value)}"
        return None

    def fast_check(self, name: str) -> str | None:
        return f"type({name}) is bool"

    def loader(self, dialect: DialectName) -> Converter | None:
        return bool if dialect in ("sqlite", "mysql", "clickhouse") else None


@attrs.frozen
class Float(ColumnType):
    """A double-precision float. NaN and infinities are refused unless allowed."""

    python_type: ClassVar[type | tuple[type, ...]] = float
    allow_nan: bool = False
    allow_infinity: bool = False
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "double precision",
        "sqlite": "REAL",
        "mysql": "DOUBLE",
        "clickhouse": "Float64",
        "memory": "double",
    }

    def check(self, value: Any) -> str | None:
        if type(value) is not float:
            if not isinstance(value, (float, int)) or isinstance(value, bool):
                return f"expected float, got {_type_name(value)}"
            if isinstance(value, int):
                try:
                    exact = float(value) == value
                except OverflowError:
                    return "too large for a float"
                return None if exact else "an int a float cannot hold exactly"
        if math.isfinite(value):
            return None
        if math.isnan(value):
            return None if self.allow_nan else "NaN is not allowed (Float(allow_nan=True))"
        return (
            None
            if self.allow_infinity
            else ("infinity is not allowed (Float(allow_infinity=True))")
        )

    def accepts_annotation(self, annotation: Any) -> bool:
        return annotation is Any or annotation in (float, int)

    def binder(self, dialect: DialectName) -> Converter | None:
        return float

    def unsupported_on(self, dialect: DialectName) -> str | None:
        if self.allow_nan and dialect in ("sqlite", "mysql", "memory"):
            # PostgreSQL alone stores NaN (and sorts it above every number); SQLite keeps
            # NULL, MySQL refuses it, and Python's NaN compares unlike PostgreSQL's.
            return f"{dialect} cannot store NaN as PostgreSQL does"
        if self.allow_infinity and dialect == "mysql":
            return "mysql cannot store infinities"
        return None


@attrs.frozen
class Decimal(ColumnType):
    """An exact decimal with `precision` digits, `scale` of them after the point.

    Values with more places than `scale` are refused rather than rounded, because each
    backend rounds differently (GUARANTEES B7). Values come back with exactly `scale` places.
    """

    python_type: ClassVar[type | tuple[type, ...]] = decimal.Decimal
    precision: int = 18
    scale: int = 2

    def __attrs_post_init__(self) -> None:
        if not (1 <= self.precision <= 38 and 0 <= self.scale <= self.precision):
            raise ConfigurationError(
                f"Decimal({self.precision}, {self.scale}): need 1 <= precision <= 38 "
                "and 0 <= scale <= precision"
            )

    def check(self, value: Any) -> str | None:
        if not isinstance(value, decimal.Decimal):
            if isinstance(value, int) and not isinstance(value, bool):
                value = decimal.Decimal(value)
            else:
                return f"expected Decimal, got {_type_name(value)}"
        if not value.is_finite():
            return "not a finite number"
        places = _significant_places(value)
        if places > self.scale:
            return f"has {places} decimal places, more than the scale {self.scale}"
        whole_digits = 0 if value.is_zero() else max(0, value.adjusted() + 1)
        if whole_digits > self.precision - self.scale:
            return (
                f"has {whole_digits} digits before the point, more than "
                f"Decimal({self.precision}, {self.scale}) allows ({self.precision - self.scale})"
            )
        return None

    def accepts_annotation(self, annotation: Any) -> bool:
        return annotation is Any or annotation is decimal.Decimal

    def parameter_ddl(self, dialect: DialectName) -> str:
        return "numeric" if dialect == "postgresql" else self.ddl(dialect)

    @property
    def _sqlite_numeric(self) -> bool:
        # SQLite's NUMERIC affinity keeps 15 significant digits exactly (as INTEGER or REAL)
        # and silently rounds longer values (9999999999999999.99 became 1E16 [L]).
        return self.precision <= _SQLITE_EXACT_DIGITS

    def ddl(self, dialect: DialectName) -> str:
        if dialect == "clickhouse":
            return f"Decimal({self.precision}, {self.scale})"
        if dialect == "sqlite":
            return f"DECIMAL({self.precision}, {self.scale})" if self._sqlite_numeric else "TEXT"
        return f"numeric({self.precision}, {self.scale})"

    def _quantum(self) -> decimal.Decimal:
        return decimal.Decimal(1).scaleb(-self.scale)

    def _context(self) -> decimal.Context:
        return decimal.Context(prec=self.precision + 2)

    def binder(self, dialect: DialectName) -> Converter | None:
        quantum = self._quantum()
        context = self._context()
        if dialect != "sqlite":
            return lambda v: decimal.Decimal(v).quantize(quantum, context=context)
        if self._sqlite_numeric:
            # The sqlite3 module cannot bind Decimal; the column's affinity turns the text
            # into an exact number, so comparisons and ORDER BY are numeric.
            return lambda v: str(decimal.Decimal(v).quantize(quantum, context=context))
        scale, width = self.scale, self.precision

        def ordered_text(value: Any) -> str:
            # Fixed-width text whose order is the numbers' order, so comparisons, IN and
            # ORDER BY on this TEXT column stay numeric: "1" + digits for n >= 0, "0" + the
            # complement for n < 0, where n is the value in units of the scale.
            units = int(decimal.Decimal(value).scaleb(scale, context=context))
            if units >= 0:
                return "1" + str(units).zfill(width)
            return "0" + str(10**width + units).zfill(width)

        return ordered_text

    def loader(self, dialect: DialectName) -> Converter | None:
        if dialect != "sqlite":
            return None
        quantum = self._quantum()
        context = self._context()
        if self._sqlite_numeric:

            def load(raw: Any) -> decimal.Decimal:
                # At most 15 significant digits: repr of the REAL gives exactly those back.
                text = repr(raw) if isinstance(raw, float) else str(raw)
                return decimal.Decimal(text).quantize(quantum, context=context)

            return load
        scale, width = self.scale, self.precision

        def from_ordered_text(raw: Any) -> decimal.Decimal:
            units = int(raw[1:])
            if raw[0] == "0":
                units -= 10**width
            return decimal.Decimal(f"{units}E-{scale}")

        return from_ordered_text


def _significant_places(value: decimal.Decimal) -> int:
    """Places after the point once trailing zeros go (1.500 has 1); exact, no context."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    zeros = 0
    for digit in reversed(digits):
        if digit != 0 or exponent + zeros >= 0:
            break
        zeros += 1
    return max(0, -(exponent + zeros))


@attrs.frozen
class Date(ColumnType):
    """A calendar date (a datetime is refused)."""

    python_type: ClassVar[type | tuple[type, ...]] = dt.date
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "date",
        "sqlite": "DATE",
        "mysql": "DATE",
        "clickhouse": "Date",
        "memory": "date",
    }

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            return f"expected date, got {_type_name(value)}"
        return None

    def accepts_annotation(self, annotation: Any) -> bool:
        return annotation is Any or annotation is dt.date

    def binder(self, dialect: DialectName) -> Converter | None:
        return dt.date.isoformat if dialect == "sqlite" else None

    def loader(self, dialect: DialectName) -> Converter | None:
        return dt.date.fromisoformat if dialect == "sqlite" else None


@attrs.frozen
class Time(ColumnType):
    """A time of day with microseconds, without time zone (aware times are refused)."""

    python_type: ClassVar[type | tuple[type, ...]] = dt.time
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "time",
        "sqlite": "TIME",
        "mysql": "TIME(6)",
        "clickhouse": "String",
        "memory": "time",
    }

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dt.time):
            return f"expected time, got {_type_name(value)}"
        if value.tzinfo is not None:
            return "aware time is not supported; store a naive time of day"
        return None

    def binder(self, dialect: DialectName) -> Converter | None:
        if dialect == "sqlite":
            return lambda v: v.isoformat(timespec="microseconds")
        return None

    def loader(self, dialect: DialectName) -> Converter | None:
        return dt.time.fromisoformat if dialect == "sqlite" else None


def _stdlib_uuid(value: uuid.UUID) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(bytes=value.bytes)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(_UTC)


def _utc_text(value: dt.datetime) -> str:
    return value.astimezone(_UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _naive_text(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def _aware_from_text(raw: str) -> dt.datetime:
    return dt.datetime.fromisoformat(raw).replace(tzinfo=_UTC)


@attrs.frozen
class DateTime(ColumnType):
    """A point in time with microseconds.

    `tz=True` (the default) requires aware values, stores UTC and returns aware UTC values;
    `tz=False` requires naive values and returns them unchanged (GUARANTEES B8).
    """

    python_type: ClassVar[type | tuple[type, ...]] = dt.datetime
    tz: bool = True

    def check(self, value: Any) -> str | None:
        if not isinstance(value, dt.datetime):
            return f"expected datetime, got {_type_name(value)}"
        aware = value.tzinfo is not None and value.utcoffset() is not None
        if self.tz and not aware:
            return (
                "naive datetime for a timezone-aware column; pass an aware value "
                "(datetime.now(timezone.utc)) or declare DateTime(tz=False)"
            )
        if not self.tz and aware:
            return "aware datetime for a naive column (DateTime(tz=False)); pass a naive value"
        if aware:
            try:
                instant = value.astimezone(_UTC).replace(tzinfo=None)
            except OverflowError:
                return "out of range once converted to UTC"
            if instant in (dt.datetime.min, dt.datetime.max):
                # asyncpg sends these two instants as -infinity/infinity and reads them back
                # naive, so they cannot round-trip on PostgreSQL.
                return "the first and last representable instants are reserved (±infinity)"
        return None

    def ddl(self, dialect: DialectName) -> str:
        return {
            "postgresql": "timestamptz" if self.tz else "timestamp",
            "sqlite": "TIMESTAMP",
            "mysql": "DATETIME(6)",
            "clickhouse": "DateTime64(6, 'UTC')" if self.tz else "DateTime64(6)",
            "memory": "timestamptz" if self.tz else "timestamp",
        }[dialect]

    def binder(self, dialect: DialectName) -> Converter | None:
        if dialect == "sqlite":
            return _utc_text if self.tz else _naive_text
        if dialect in ("mysql", "clickhouse") and self.tz:
            return lambda v: v.astimezone(_UTC).replace(tzinfo=None)
        if dialect == "memory" and self.tz:
            return _as_utc  # aware values come back in UTC, as PostgreSQL gives them
        return None

    def loader(self, dialect: DialectName) -> Converter | None:
        if dialect == "sqlite":
            return _aware_from_text if self.tz else dt.datetime.fromisoformat
        if dialect in ("mysql", "clickhouse") and self.tz:
            return lambda v: v.replace(tzinfo=_UTC)
        return None


@attrs.frozen
class UUID(ColumnType):
    """A UUID; stored natively where the backend has a type, as 36-character text elsewhere."""

    python_type: ClassVar[type | tuple[type, ...]] = uuid.UUID
    ddl_names: ClassVar[dict[str, str]] = {
        "postgresql": "uuid",
        "sqlite": "CHAR(36)",
        "mysql": "CHAR(36)",
        "clickhouse": "UUID",
        "memory": "uuid",
    }

    def binder(self, dialect: DialectName) -> Converter | None:
        return str if dialect in ("sqlite", "mysql") else None

    def loader(self, dialect: DialectName) -> Converter | None:
        if dialect == "postgresql":
            return _stdlib_uuid  # asyncpg returns its own UUID subclass: no driver types
        return uuid.UUID if dialect in ("sqlite", "mysql") else None


@attrs.frozen
class Bytes(ColumnType):
    """Binary data, optionally at most `length` bytes. NUL bytes are fine here."""

    python_type: ClassVar[type | tuple[type, ...]] = (bytes, bytearray)
    length: int | None = attrs.field(default=None)

    @length.validator
    def _positive(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigurationError(f"Bytes length must be a positive int, got {value!r}")

    def check(self, value: Any) -> str | None:
        if not isinstance(value, (bytes, bytearray)):
            return f"expected bytes, got {_type_name(value)}"
        if self.length is not None and len(value) > self.length:
            return f"longer than {self.length} bytes ({len(value)})"
        return None

    def ddl(self, dialect: DialectName) -> str:
        return {
            "postgresql": "bytea",
            "sqlite": "BLOB",
            "mysql": "LONGBLOB",
            "clickhouse": "String",
            "memory": "bytea",
        }[dialect]

    def binder(self, dialect: DialectName) -> Converter | None:
        return bytes


@attrs.frozen
class Enum(ColumnType):
    """A member of `enum_class`, stored as its value (text or integer)."""

    enum_class: type[enum.Enum] = attrs.field()

    @enum_class.validator
    def _values_uniform(self, _: attrs.Attribute[type[enum.Enum]], cls: type[enum.Enum]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
            raise ConfigurationError(f"Enum needs an enum.Enum subclass, got {cls!r}")
        values = [m.value for m in cls]
        if not values:
            raise ConfigurationError(f"Enum {cls.__name__} has no members")
        if all(isinstance(v, str) for v in values):
            bad = [v for v in values if _text_rule(v) is not None]
            if bad:
                raise ConfigurationError(f"Enum {cls.__name__} has values no column can hold")
        elif not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigurationError(
                f"Enum {cls.__name__} must have all-str or all-int values to be stored"
            )
        elif BigInteger().check(min(values)) or BigInteger().check(max(values)):
            raise ConfigurationError(f"Enum {cls.__name__} has values beyond 64-bit integers")

    @property
    def _integer(self) -> IntegerType:
        """The integer column an int-valued enum needs: 32-bit unless a value is larger."""
        values = [m.value for m in self.enum_class]
        fits = Integer().check(min(values)) is None and Integer().check(max(values)) is None
        return Integer() if fits else BigInteger()

    @property
    def textual(self) -> bool:  # type: ignore[override]
        return all(isinstance(m.value, str) for m in self.enum_class)

    def check(self, value: Any) -> str | None:
        if not isinstance(value, self.enum_class):
            return f"expected {self.enum_class.__name__}, got {_type_name(value)}"
        return None

    def accepts_annotation(self, annotation: Any) -> bool:
        return annotation is Any or annotation is self.enum_class

    def ddl(self, dialect: DialectName) -> str:
        if not self.textual:
            return self._integer.ddl(dialect)
        width = max(1, *(len(m.value) for m in self.enum_class))
        return String(width).ddl(dialect)

    def parameter_ddl(self, dialect: DialectName) -> str:
        return self.ddl(dialect) if not self.textual else Text().ddl(dialect)

    def binder(self, dialect: DialectName) -> Converter | None:
        return _enum_value

    def loader(self, dialect: DialectName) -> Converter | None:
        return self.enum_class


def _enum_value(member: enum.Enum) -> Any:
    return member.value


@attrs.frozen
class JSON(ColumnType):
    """A JSON document: dicts, lists and scalars, or attrs value objects through cattrs.

    The shape comes from the attribute's annotation (`Address`, `list[Address]`,
    `dict[str, int]`); values are unstructured and structured with cattrs.
    """

    value_type: Any = Any
    mutable: ClassVar[bool] = True
    comparable: ClassVar[bool] = False

    def check_operand(self, value: Any, pattern: bool = False) -> str | None:
        return "JSON columns can only be tested with is_null() / is_not_null()"

    def check(self, value: Any) -> str | None:
        value_type = self.value_type
        expected = typing.get_origin(value_type) or value_type
        if expected is not Any and isinstance(expected, type) and not isinstance(value, expected):
            return f"expected {expected.__name__}, got {_type_name(value)}"
        try:
            unstructured = _json_converter.unstructure(value, value_type)
            text = _json_dumps(unstructured)
        except Exception as error:
            return f"not JSON-serialisable: {error}"
        if _has_nul(unstructured):
            # json.dumps writes NUL as \u0000, which PostgreSQL's jsonb refuses.
            return "contains a NUL character"
        try:
            restored = self._structure(json.loads(text))
        except Exception as error:
            return f"does not read back as {getattr(value_type, '__name__', value_type)}: {error}"
        if restored != value:
            return "does not read back equal through JSON (non-string keys, tuples or sets?)"
        return None

    def _structure(self, loaded: Any) -> Any:
        if self.value_type is Any:
            return loaded
        return _json_converter.structure(loaded, self.value_type)

    def snapshot_form(self, value: Any) -> Any:
        # The canonical text, not a deep copy: 1 and True are equal in Python but not in JSON.
        if value is None:
            return None
        try:
            unstructured = _json_converter.unstructure(value, self.value_type)
            return json.dumps(unstructured, sort_keys=True, allow_nan=False, ensure_ascii=False)
        except Exception:
            return object()  # differs from everything, so the value counts as changed

    def accepts_annotation(self, annotation: Any) -> bool:
        return True

    def for_annotation(self, annotation: Any) -> ColumnType:
        if self.value_type is Any and annotation is not Any:
            return JSON(annotation)
        return self

    def ddl(self, dialect: DialectName) -> str:
        return {
            "postgresql": "jsonb",
            "sqlite": "TEXT",
            "mysql": "JSON",
            "clickhouse": "String",
            "memory": "json",
        }[dialect]

    def binder(self, dialect: DialectName) -> Converter | None:
        # The memory backend stores the text too: stored rows stay copies, and JSON's
        # equality (1 is not true) holds there as everywhere.
        value_type = self.value_type

        def bind(value: Any) -> str:
            return _json_dumps(_json_converter.unstructure(value, value_type))

        return bind

    def loader(self, dialect: DialectName) -> Converter | None:
        value_type = self.value_type
        if value_type is Any:
            return json.loads

        def load(raw: Any) -> Any:
            return _json_converter.structure(json.loads(raw), value_type)

        return load


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


def _json_dumps(value: Any) -> str:
    # allow_nan=False: NaN is not JSON and PostgreSQL's jsonb refuses it.
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    rule = _text_rule(text)
    if rule is not None:
        raise ValueError(f"the JSON text {rule}")
    return text


def split_optional(annotation: Any) -> tuple[Any, bool]:
    """Split `X | None` into (X, True); anything else into (annotation, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007
    return annotation, annotation is type(None)


def type_for_annotation(annotation: Any) -> ColumnType | None:
    """The column type a bare `Column()` gets from the attribute's annotation, if obvious."""
    simple: dict[Any, ColumnType] = {
        bool: Boolean(),
        int: Integer(),
        float: Float(),
        str: Text(),
        bytes: Bytes(),
        dt.datetime: DateTime(),
        dt.date: Date(),
        dt.time: Time(),
        uuid.UUID: UUID(),
    }
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Enum(annotation)
    origin = typing.get_origin(annotation)
    if attrs.has(annotation) or origin in (list, dict) or annotation in (list, dict):
        return JSON(annotation)
    return None
