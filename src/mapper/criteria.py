"""Criteria: the expression tree behind `where` and `order_by`.

Users build criteria from mapping columns (`UserMap.name.like("A%") & (UserMap.age >= 18)`);
the nodes here hold the column declarations and the values. Pure: the SQL dialects compile
a tree to PyPika terms with parameters (`dialects/base.py`), the memory backend evaluates it
in Python with SQL's semantics (`predicate`, `sort_rows` below), and the statement cache keys
on `shape()`, which leaves values out.

Strings are never accepted as column references (GUARANTEES G10): a column is always a
mapped `Column` (anything implementing `ColumnReference`).
"""

from __future__ import annotations

import abc
import operator
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

import attrs

__all__ = [
    "And",
    "Between",
    "ColumnReference",
    "ColumnRef",
    "Comparison",
    "Criterion",
    "InList",
    "IsNull",
    "Like",
    "Not",
    "Operand",
    "Or",
    "Ordering",
    "Related",
    "RelatedIs",
    "as_ordering",
    "is_column",
    "like_regex",
    "predicate",
    "sort_rows",
]

ComparisonOperator = Literal["=", "<>", "<", "<=", ">", ">="]


@runtime_checkable
class ColumnReference(Protocol):
    """What criteria need of a column: its owner mapping class and attribute name."""

    @property
    def owner(self) -> type: ...

    @property
    def attribute(self) -> str: ...


class Criterion(abc.ABC):
    """Base of all boolean criteria. Combine with `&`, `|` and `~`."""

    __slots__ = ()

    def __and__(self, other: Criterion) -> Criterion:
        return And.of(self, _as_criterion(other))

    def __or__(self, other: Criterion) -> Criterion:
        return Or.of(self, _as_criterion(other))

    def __invert__(self) -> Criterion:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a criterion has no truth value: combine criteria with & | ~, not and / or / not"
        )

    @abc.abstractmethod
    def shape(self, sized: bool) -> Hashable:
        """A key for the statement cache: the tree's structure without its values.

        `sized` puts the length of IN lists into the key, for dialects that need one
        placeholder per value.
        """

    @abc.abstractmethod
    def columns(self) -> Iterable[ColumnReference]:
        """Every column the criterion reads."""


def _as_criterion(value: object) -> Criterion:
    if not isinstance(value, Criterion):
        raise TypeError(f"expected a criterion built from mapping columns, got {value!r}")
    return value


def is_column(value: object) -> TypeGuard[ColumnReference]:
    """Whether `value` is a mapped column (not merely something with `owner` and `attribute`)."""
    return isinstance(value, Operand)


def _column_key(column: ColumnReference) -> tuple[type, str]:
    return (column.owner, column.attribute)


@attrs.frozen(eq=False)
class Comparison(Criterion):
    """`column <op> value`, or `column <op> other_column`."""

    column: ColumnReference
    operator: ComparisonOperator
    value: Any

    def shape(self, sized: bool) -> Hashable:
        other = _column_key(self.value) if is_column(self.value) else None
        return ("cmp", _column_key(self.column), self.operator, other)

    def columns(self) -> Iterable[ColumnReference]:
        yield self.column
        if is_column(self.value):
            yield self.value


@attrs.frozen(eq=False)
class InList(Criterion):
    """`column IN (values)` or, negated, `NOT IN`. NULLs in the list match nothing."""

    column: ColumnReference
    values: tuple[Any, ...]
    negated: bool = False

    def shape(self, sized: bool) -> Hashable:
        return ("in", _column_key(self.column), self.negated, len(self.values) if sized else None)

    def columns(self) -> Iterable[ColumnReference]:
        yield self.column


@attrs.frozen(eq=False)
class Like(Criterion):
    """`column LIKE pattern ESCAPE '\\'`: `%` any run, `_` one character, case-sensitive.

    `case_insensitive` makes it `ilike`.
    """

    column: ColumnReference
    pattern: str
    case_insensitive: bool = False

    def shape(self, sized: bool) -> Hashable:
        return ("like", _column_key(self.column), self.case_insensitive)

    def columns(self) -> Iterable[ColumnReference]:
        yield self.column


@attrs.frozen(eq=False)
class IsNull(Criterion):
    """`column IS NULL`, or `IS NOT NULL` when negated."""

    column: ColumnReference
    negated: bool = False

    def shape(self, sized: bool) -> Hashable:
        return ("null", _column_key(self.column), self.negated)

    def columns(self) -> Iterable[ColumnReference]:
        yield self.column


@attrs.frozen(eq=False)
class Between(Criterion):
    """`column BETWEEN low AND high`, both ends included."""

    column: ColumnReference
    low: Any
    high: Any

    def shape(self, sized: bool) -> Hashable:
        return ("between", _column_key(self.column))

    def columns(self) -> Iterable[ColumnReference]:
        yield self.column


@attrs.frozen(eq=False)
class And(Criterion):
    """All parts hold."""

    parts: tuple[Criterion, ...]

    @classmethod
    def of(cls, *parts: Criterion) -> And:
        flat: list[Criterion] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, And) else (part,))
        return cls(tuple(flat))

    def shape(self, sized: bool) -> Hashable:
        return ("and", tuple(p.shape(sized) for p in self.parts))

    def columns(self) -> Iterable[ColumnReference]:
        for part in self.parts:
            yield from part.columns()


@attrs.frozen(eq=False)
class Or(Criterion):
    """At least one part holds."""

    parts: tuple[Criterion, ...]

    @classmethod
    def of(cls, *parts: Criterion) -> Or:
        flat: list[Criterion] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, Or) else (part,))
        return cls(tuple(flat))

    def shape(self, sized: bool) -> Hashable:
        return ("or", tuple(p.shape(sized) for p in self.parts))

    def columns(self) -> Iterable[ColumnReference]:
        for part in self.parts:
            yield from part.columns()


@attrs.frozen(eq=False)
class Not(Criterion):
    """The part does not hold (SQL three-valued logic: NOT of unknown is unknown)."""

    part: Criterion

    def shape(self, sized: bool) -> Hashable:
        return ("not", self.part.shape(sized))

    def columns(self) -> Iterable[ColumnReference]:
        return self.part.columns()


@attrs.frozen(eq=False)
class Related(Criterion):
    """The related entity (many-to-one) or some related entity (collections) matches `where`.

    Built by `relation.has(...)` and `relation.any(...)`; compiled to a subquery by the SQL
    dialects and evaluated against the related table by the memory backend.
    """

    relation: Any
    where: Criterion | None = None

    def shape(self, sized: bool) -> Hashable:
        inner = None if self.where is None else self.where.shape(sized)
        return ("related", _column_key(self.relation), inner)

    def columns(self) -> Iterable[ColumnReference]:
        return ()


@attrs.frozen(eq=False)
class RelatedIs(Criterion):
    """The many-to-one relation points at `entity` (or, with None, at nothing)."""

    relation: Any
    entity: Any

    def shape(self, sized: bool) -> Hashable:
        return ("related_is", _column_key(self.relation), self.entity is None)

    def columns(self) -> Iterable[ColumnReference]:
        return ()


@attrs.frozen(eq=False)
class Ordering:
    """One `order_by` key. NULLs sort first ascending and last descending on every backend."""

    column: ColumnReference
    descending: bool = False

    def shape(self) -> Hashable:
        return (_column_key(self.column), self.descending)


def as_ordering(keys: object) -> tuple[Ordering, ...]:
    """Normalise an `order_by=` argument (a column, an ordering, or a sequence of them)."""
    if keys is None:
        return ()
    items: Sequence[object] = keys if isinstance(keys, (list, tuple)) else (keys,)
    result: list[Ordering] = []
    for item in items:
        if isinstance(item, Ordering):
            result.append(item)
        elif is_column(item):
            result.append(Ordering(item))
        else:
            raise TypeError(
                f"order_by takes mapping columns (UserMap.name, UserMap.name.desc()), got {item!r}"
            )
    return tuple(result)


class Operand:
    """Mixin giving a column the operators that build criteria. Used by `mapping.Column`."""

    __slots__ = ()

    def _ref(self) -> ColumnReference:
        if not isinstance(self, ColumnReference):  # pragma: no cover - mixin misuse
            raise TypeError("Operand is a mixin for mapped columns")
        return self

    def __eq__(self, other: object) -> Criterion:  # type: ignore[override]
        if other is None:
            return IsNull(self._ref())
        return Comparison(self._ref(), "=", other)

    def __ne__(self, other: object) -> Criterion:  # type: ignore[override]
        if other is None:
            return IsNull(self._ref(), negated=True)
        return Comparison(self._ref(), "<>", other)

    def __lt__(self, other: object) -> Criterion:
        return Comparison(self._ref(), "<", other)

    def __le__(self, other: object) -> Criterion:
        return Comparison(self._ref(), "<=", other)

    def __gt__(self, other: object) -> Criterion:
        return Comparison(self._ref(), ">", other)

    def __ge__(self, other: object) -> Criterion:
        return Comparison(self._ref(), ">=", other)

    __hash__ = object.__hash__

    def in_(self, values: Iterable[Any]) -> Criterion:
        """The column's value is one of `values`."""
        return InList(self._ref(), _as_values(values))

    def not_in(self, values: Iterable[Any]) -> Criterion:
        """The column's value is none of `values` (NULL values of the column do not match).

        `not_in([])` matches every row. None in `values` is refused: use `is_null()`.
        """
        return InList(self._ref(), _as_values(values), negated=True)

    def like(self, pattern: str) -> Criterion:
        """Case-sensitive match: `%` any run of characters, `_` one, `\\` escapes them."""
        return Like(self._ref(), pattern)

    def ilike(self, pattern: str) -> Criterion:
        """Like `like`, ignoring case."""
        return Like(self._ref(), pattern, case_insensitive=True)

    def is_null(self) -> Criterion:
        """The column is NULL."""
        return IsNull(self._ref())

    def is_not_null(self) -> Criterion:
        """The column is not NULL."""
        return IsNull(self._ref(), negated=True)

    def between(self, low: Any, high: Any) -> Criterion:
        """low <= column <= high."""
        return Between(self._ref(), low, high)

    def asc(self) -> Ordering:
        """Ascending order (NULLs first)."""
        return Ordering(self._ref())

    def desc(self) -> Ordering:
        """Descending order (NULLs last)."""
        return Ordering(self._ref(), descending=True)


class ColumnRef(Operand):
    """A column named by mapping class and attribute, for columns with no `Column` object
    (the foreign keys relations keep). Used by the library to build criteria."""

    __slots__ = ("_attribute", "_owner")

    def __init__(self, owner: type, attribute: str) -> None:
        self._owner = owner
        self._attribute = attribute

    @property
    def owner(self) -> type:
        return self._owner

    @property
    def attribute(self) -> str:
        return self._attribute

    def __repr__(self) -> str:
        return f"{self._owner.__name__}.{self._attribute}"


def _as_values(values: Iterable[Any]) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"in_ takes a collection of values, got the single value {values!r}")
    return tuple(values)


# -- evaluation in Python (the memory backend) -----------------------------------------------

Row = tuple[Any, ...]
Truth = bool | None
"""SQL's three values: True, False, and None for unknown."""


def like_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """A regex matching what `column LIKE pattern ESCAPE '\\'` matches."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def predicate(
    criterion: Criterion,
    position: Callable[[ColumnReference], int],
    operand: Callable[[ColumnReference, Any], Any],
    related: Callable[[Related], Callable[[Row], Truth]] | None = None,
) -> Callable[[Row], Truth]:
    """A function giving `criterion`'s SQL truth value for a stored row.

    `position` maps a column to its index in the row; `operand` turns a criterion value
    into the stored form of that column (the backend's binder). NULL compares as unknown,
    NOT of unknown is unknown, AND/OR follow SQL's three-valued logic, and a row matches
    only when the whole criterion is True. `related` compiles a `Related` node (it needs
    the other tables).
    """
    if isinstance(criterion, Comparison):
        left = position(criterion.column)
        compare = _OPERATORS[criterion.operator]
        if is_column(criterion.value):
            right = position(criterion.value)

            def columns(row: Row) -> Truth:
                a, b = row[left], row[right]
                return None if a is None or b is None else compare(a, b)

            return columns
        value = operand(criterion.column, criterion.value)

        def compared(row: Row) -> Truth:
            a = row[left]
            return None if a is None else compare(a, value)

        return compared
    if isinstance(criterion, InList):
        index = position(criterion.column)
        values = [operand(criterion.column, v) for v in criterion.values]
        negated = criterion.negated
        if not values:
            return lambda row: negated  # x IN () is false and x NOT IN () true, NULL or not

        def member(row: Row) -> Truth:
            value = row[index]
            if value is None:
                return None
            return (value not in values) if negated else (value in values)

        return member
    if isinstance(criterion, Like):
        index = position(criterion.column)
        fold = criterion.case_insensitive
        pattern = operand(criterion.column, criterion.pattern)
        regex = like_regex(pattern.lower() if fold else pattern, fold)

        def like(row: Row) -> Truth:
            value = row[index]
            if value is None:
                return None
            return regex.fullmatch(value.lower() if fold else value) is not None

        return like
    if isinstance(criterion, IsNull):
        index = position(criterion.column)
        if criterion.negated:
            return lambda row: row[index] is not None
        return lambda row: row[index] is None
    if isinstance(criterion, Between):
        index = position(criterion.column)
        low = operand(criterion.column, criterion.low)
        high = operand(criterion.column, criterion.high)

        def between(row: Row) -> Truth:
            value = row[index]
            return None if value is None else bool(low <= value <= high)

        return between
    if isinstance(criterion, Related):
        if related is None:
            raise TypeError("criteria across relations need the related tables")
        return related(criterion)
    if isinstance(criterion, And):
        parts = [predicate(p, position, operand, related) for p in criterion.parts]

        def all_of(row: Row) -> Truth:
            result: Truth = True
            for part in parts:
                truth = part(row)
                if truth is False:
                    return False
                if truth is None:
                    result = None
            return result

        return all_of
    if isinstance(criterion, Or):
        parts = [predicate(p, position, operand, related) for p in criterion.parts]

        def any_of(row: Row) -> Truth:
            result: Truth = False
            for part in parts:
                truth = part(row)
                if truth is True:
                    return True
                if truth is None:
                    result = None
            return result

        return any_of
    if isinstance(criterion, Not):
        inner = predicate(criterion.part, position, operand, related)

        def negation(row: Row) -> Truth:
            truth = inner(row)
            return None if truth is None else not truth

        return negation
    raise TypeError(f"not a criterion: {criterion!r}")


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def sort_rows(rows: list[Row], keys: Sequence[tuple[int, bool]]) -> list[Row]:
    """Rows ordered by (position, descending) keys; NULLs first ascending, last descending."""
    ordered = list(rows)
    for index, descending in reversed(keys):  # stable sorts, least significant key first
        present = [r for r in ordered if r[index] is not None]
        missing = [r for r in ordered if r[index] is None]
        present.sort(key=operator.itemgetter(index), reverse=descending)
        ordered = present + missing if descending else missing + present
    return ordered
