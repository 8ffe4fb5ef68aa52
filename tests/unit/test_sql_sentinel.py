"""No value ever enters SQL text (GUARANTEES B9, G10), and bad criteria fail before SQL (G11).

Every operation shape is compiled on PostgreSQL and SQLite with sentinel values (an injection
string, and a recognisable int, date, datetime, UUID and decimal where the column needs one).
The sentinel must never appear in the SQL text and must appear among the parameters (on
SQLite an IN list's values travel inside one JSON array parameter). Criteria values that
break their column's type raise `ValidationError` naming entity, attribute and value while
compiling, so no statement exists to run. No database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from mapper import Column, EntityMap, Registry, ValidationError
from mapper import types as t
from mapper.criteria import Criterion
from mapper.dialects.base import Bound, SqlCompiler
from mapper.dialects.postgres import PostgresCompiler, PostgresDialect
from mapper.dialects.sqlite import SqliteCompiler, SqliteDialect
from mapper.mapping import EntityMeta
from mapper.operations import Count, DeleteBatch, InsertBatch, Select, UpdateBatch
from mapper.schema import create_statements

TEXT = "x'); DROP TABLE t; --SENTINEL"
INT = 918_273_645
DAY = dt.date(1987, 6, 5)
AT = dt.datetime(1987, 6, 5, 4, 3, 2, 123456, tzinfo=dt.UTC)
REF = uuid.UUID("5e471e1e-0000-4000-8000-00000000beef")
PRICE = decimal.Decimal("98765.43")

# What must never show up in SQL text: the sentinels and the literals a value could become.
FORBIDDEN = (
    TEXT,
    "SENTINEL",
    "DROP TABLE",
    str(INT),
    "1987",
    str(REF),
    REF.hex,
    "beef",
    "98765",
)


@attrs.define
class Doc:
    slug: str
    title: str
    pages: int
    day: dt.date
    at: dt.datetime
    ref: uuid.UUID
    price: decimal.Decimal
    body: str | None = None
    version: int = 0


@attrs.define
class Post:
    title: str
    id: int | None = None


registry = Registry()


@registry.map
class DocMap(EntityMap[Doc]):
    __table__ = "docs"
    slug = Column(t.String(200), primary_key=True)
    title = Column(t.String(200), default=TEXT)
    pages = Column(t.Integer(), default=INT)
    day = Column(t.Date())
    at = Column(t.DateTime())
    ref = Column(t.UUID(), unique=True)
    price = Column(t.Decimal(10, 2))
    body = Column(t.Text())
    version = Column(t.Integer(), version=True)


@registry.map
class PostMap(EntityMap[Post]):
    __table__ = "posts"
    id = Column(t.Integer(), primary_key=True, generated=True)
    title = Column(t.Text())


def _postgres() -> SqlCompiler:
    return PostgresCompiler(object.__new__(PostgresDialect).make_capabilities())


def _sqlite() -> SqlCompiler:
    return SqliteCompiler(object.__new__(SqliteDialect).make_capabilities())


# How each sentinel travels to the driver, per dialect.
BOUND: dict[str, dict[object, object]] = {
    "postgresql": {TEXT: TEXT, INT: INT, DAY: DAY, AT: AT, REF: REF, PRICE: PRICE},
    "sqlite": {
        TEXT: TEXT,
        INT: INT,
        DAY: "1987-06-05",
        AT: "1987-06-05 04:03:02.123456",
        REF: str(REF),
        PRICE: "98765.43",
    },
}


@pytest.fixture(params=[_postgres, _sqlite], ids=["postgresql", "sqlite"])
def compiler(request: pytest.FixtureRequest) -> SqlCompiler:
    factory: Callable[[], SqlCompiler] = request.param
    return factory()


def _flatten(values: Any) -> Iterator[Any]:
    if isinstance(values, (list, tuple)):
        for value in values:
            yield from _flatten(value)
    else:
        yield values


def _carried(bound: Bound) -> Iterator[Any]:
    """The values a statement carries; a SQLite IN list is one JSON array parameter."""
    in_json = "json_each(" in bound.sql
    for value in _flatten(list(bound.parameters)):
        yield value
        if in_json and isinstance(value, str) and value.startswith("["):
            decoded = json.loads(value)
            if isinstance(decoded, list):
                yield from decoded


def _assert_parameters_only(
    compiler: SqlCompiler, statements: list[Bound], *sentinels: object
) -> None:
    assert statements
    for bound in statements:
        for forbidden in FORBIDDEN:
            assert forbidden not in bound.sql, (forbidden, bound.sql)
        assert "'" not in bound.sql.replace("ESCAPE '\\'", ""), bound.sql
    carried = [value for bound in statements for value in _carried(bound)]
    for sentinel in sentinels:
        expected = BOUND[compiler.dialect][sentinel]
        assert any(type(v) is type(expected) and v == expected for v in carried), (
            sentinel,
            carried,
        )


def _doc_meta() -> EntityMeta:
    return registry.meta(Doc)


def _doc_row() -> tuple[Any, ...]:
    return (TEXT, TEXT, INT, DAY, AT, REF, PRICE, TEXT, INT)


# -- select: every criterion kind -----------------------------------------------------------

SENTINEL_COLUMNS = [
    pytest.param(DocMap.title, TEXT, id="text"),
    pytest.param(DocMap.pages, INT, id="int"),
    pytest.param(DocMap.day, DAY, id="date"),
    pytest.param(DocMap.at, AT, id="datetime"),
    pytest.param(DocMap.ref, REF, id="uuid"),
    pytest.param(DocMap.price, PRICE, id="decimal"),
]

COMPARISONS: list[Any] = [
    pytest.param(lambda c, v: c == v, id="eq"),
    pytest.param(lambda c, v: c != v, id="ne"),
    pytest.param(lambda c, v: c < v, id="lt"),
    pytest.param(lambda c, v: c <= v, id="le"),
    pytest.param(lambda c, v: c > v, id="gt"),
    pytest.param(lambda c, v: c >= v, id="ge"),
    pytest.param(lambda c, v: c.in_([v]), id="in"),
    pytest.param(lambda c, v: c.not_in([v]), id="not_in"),
    pytest.param(lambda c, v: c.between(v, v), id="between"),
    pytest.param(lambda c, v: (c == v) & DocMap.body.is_null(), id="and"),
    pytest.param(lambda c, v: DocMap.body.is_not_null() | (c == v), id="or"),
    pytest.param(lambda c, v: ~(c == v), id="not"),
]


@pytest.mark.parametrize("build", COMPARISONS)
@pytest.mark.parametrize(("column", "sentinel"), SENTINEL_COLUMNS)
def test_select_criteria_values_travel_as_parameters(
    compiler: SqlCompiler,
    build: Callable[[Any, Any], Criterion],
    column: Any,
    sentinel: object,
) -> None:
    """Every comparison kind on every sentinel type keeps the value out of the SQL text."""
    bound = compiler.select(Select(_doc_meta(), where=build(column, sentinel)))
    _assert_parameters_only(compiler, [bound], sentinel)


@pytest.mark.parametrize(
    "criterion",
    [
        pytest.param(DocMap.title.like(TEXT), id="like"),
        pytest.param(DocMap.title.ilike(TEXT), id="ilike"),
        pytest.param(DocMap.body.like(TEXT) | DocMap.slug.ilike(TEXT), id="like_or_ilike"),
    ],
)
def test_like_patterns_travel_as_parameters(compiler: SqlCompiler, criterion: Criterion) -> None:
    """LIKE and ILIKE patterns are parameters, never text."""
    bound = compiler.select(Select(_doc_meta(), where=criterion))
    _assert_parameters_only(compiler, [bound], TEXT)


def test_limit_and_offset_travel_as_parameters(compiler: SqlCompiler) -> None:
    """Limit and offset values are parameters too."""
    op = Select(
        _doc_meta(),
        where=DocMap.title == TEXT,
        order_by=(DocMap.pages.desc(),),
        limit=INT,
        offset=INT,
    )
    bound = compiler.select(op)
    _assert_parameters_only(compiler, [bound], TEXT, INT)
    assert list(bound.parameters)[-2:] == [INT, INT]


@pytest.mark.parametrize("exists", [False, True], ids=["count", "exists"])
def test_count_and_exists_criteria_travel_as_parameters(
    compiler: SqlCompiler, exists: bool
) -> None:
    """Count and exists bind their criteria values as parameters."""
    criterion = (DocMap.title == TEXT) & DocMap.ref.in_([REF]) & (DocMap.day < DAY)
    bound = compiler.count(Count(_doc_meta(), where=criterion, exists=exists))
    _assert_parameters_only(compiler, [bound], TEXT, REF, DAY)


# -- writes ------------------------------------------------------------------------------------


def test_insert_values_travel_as_parameters(compiler: SqlCompiler) -> None:
    """An insert of client-keyed rows carries every value as a parameter."""
    meta = _doc_meta()
    statements = compiler.insert(InsertBatch(meta, meta.columns, [_doc_row(), _doc_row()]))
    _assert_parameters_only(compiler, statements, TEXT, INT, DAY, AT, REF, PRICE)


def test_insert_with_returning_keeps_values_out_of_the_text(compiler: SqlCompiler) -> None:
    """An insert that returns a generated key carries its values as parameters."""
    meta = registry.meta(Post)
    assert meta.generated is not None
    op = InsertBatch(meta, (meta.column("title"),), [(TEXT,)], returning=(meta.generated,))
    _assert_parameters_only(compiler, compiler.insert(op), TEXT)


@pytest.mark.parametrize("versions", [[INT], None], ids=["versioned", "unversioned"])
def test_update_values_keys_and_versions_travel_as_parameters(
    compiler: SqlCompiler, versions: list[int] | None
) -> None:
    """An update's values, keys and expected versions are all parameters."""
    meta = _doc_meta()
    columns = tuple(c for c in meta.columns if not c.primary_key and not c.version)
    values = (TEXT, INT, DAY, AT, REF, PRICE, TEXT)
    op = UpdateBatch(meta, columns, keys=[(TEXT,)], values=[values], versions=versions)
    _assert_parameters_only(compiler, compiler.update(op), TEXT, INT, DAY, AT, REF, PRICE)


@pytest.mark.parametrize("versions", [[INT], None], ids=["versioned", "unversioned"])
def test_delete_keys_and_versions_travel_as_parameters(
    compiler: SqlCompiler, versions: list[int] | None
) -> None:
    """A delete's keys and expected versions are parameters."""
    op = DeleteBatch(_doc_meta(), keys=[(TEXT,)], versions=versions)
    sentinels = (TEXT, INT) if versions else (TEXT,)
    _assert_parameters_only(compiler, compiler.delete(op), *sentinels)


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_a_batch_sent_alone_carries_its_guard_as_parameters(operation: str) -> None:
    """A guarded statement (PostgreSQL, a commit's only batch) adds the batch size and its
    error text as parameters: still no value and no quote in the SQL text."""
    compiler = _postgres()
    meta = _doc_meta()
    if operation == "update":
        columns = tuple(c for c in meta.columns if not c.primary_key and not c.version)
        values = (TEXT, INT, DAY, AT, REF, PRICE, TEXT)
        bound = compiler.update(
            UpdateBatch(meta, columns, keys=[(TEXT,)], values=[values], versions=[INT]),
            alone=True,
        )
    else:
        bound = compiler.delete(DeleteBatch(meta, keys=[(TEXT,)], versions=[INT]), alone=True)
    _assert_parameters_only(compiler, bound, TEXT, INT)


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_sqlite_refuses_to_send_a_batch_alone(operation: str) -> None:
    """Without single_statement_commits a batch cannot be compiled to run alone."""
    from mapper import MapperError

    compiler = _sqlite()
    meta = _doc_meta()
    with pytest.raises(MapperError, match="cannot run alone"):
        if operation == "update":
            compiler.update(UpdateBatch(meta, (meta.columns[1],), [(TEXT,)], [(TEXT,)]), alone=True)
        else:
            compiler.delete(DeleteBatch(meta, keys=[(TEXT,)]), alone=True)


def test_column_defaults_never_enter_ddl(compiler: SqlCompiler) -> None:
    """Column defaults are applied by the client, so DDL carries none of them."""
    for statement in create_statements(registry.table_order(), compiler):
        assert TEXT not in statement
        assert str(INT) not in statement
        assert "DEFAULT" not in statement.replace("GENERATED BY DEFAULT", "")


# -- bad criteria values fail before SQL -------------------------------------------------------

NAIVE = dt.datetime(2024, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        pytest.param(DocMap.pages == "12", ("pages", "12", "expected int"), id="str_for_int"),
        pytest.param(DocMap.pages == True, ("pages", True, "expected int"), id="bool_for_int"),  # noqa: E712
        pytest.param(DocMap.pages > 2**40, ("pages", 2**40, "out of range"), id="int_range"),
        pytest.param(DocMap.title == 7, ("title", 7, "expected str"), id="int_for_text"),
        pytest.param(DocMap.title == "a\x00b", ("title", "a\x00b", "NUL"), id="nul"),
        pytest.param(DocMap.body == "\ud800", ("body", "\ud800", "surrogate"), id="surrogate"),
        pytest.param(DocMap.at < NAIVE, ("at", NAIVE, "naive datetime"), id="naive_datetime"),
        pytest.param(DocMap.day == AT, ("day", AT, "expected date"), id="datetime_for_date"),
        pytest.param(DocMap.ref == str(REF), ("ref", str(REF), "expected UUID"), id="str_for_uuid"),
        pytest.param(
            DocMap.price == decimal.Decimal("1.005"),
            ("price", decimal.Decimal("1.005"), "decimal places"),
            id="decimal_places",
        ),
        pytest.param(DocMap.price == 1.5, ("price", 1.5, "expected Decimal"), id="float_for_dec"),
        pytest.param(DocMap.pages < None, ("pages", None, "is_null"), id="none_comparison"),
        pytest.param(DocMap.pages.in_([1, "x"]), ("pages", "x", "expected int"), id="in_list"),
        pytest.param(DocMap.pages.in_([1, None]), ("pages", None, "is_null"), id="none_in_list"),
        pytest.param(
            DocMap.pages.not_in([None]), ("pages", None, "is_null"), id="none_in_not_in_list"
        ),
        pytest.param(DocMap.title.like("a\x00%"), ("title", "a\x00%", "NUL"), id="like_nul"),
        pytest.param(DocMap.pages.like("1%"), ("pages", "1%", "text columns"), id="like_on_int"),
        pytest.param(
            (DocMap.title == "ok") & ~(DocMap.at == NAIVE),
            ("at", NAIVE, "naive datetime"),
            id="nested",
        ),
    ],
)
@pytest.mark.parametrize("operation", ["select", "count", "exists"])
def test_bad_criteria_values_raise_validation_error_before_sql(
    compiler: SqlCompiler,
    criterion: Criterion,
    expected: tuple[str, object, str],
    operation: str,
) -> None:
    """A value breaking its column type raises ValidationError naming entity, attribute, value."""
    attribute, value, rule = expected
    meta = _doc_meta()
    with pytest.raises(ValidationError) as caught:
        if operation == "select":
            compiler.select(Select(meta, where=criterion))
        else:
            compiler.count(Count(meta, where=criterion, exists=operation == "exists"))
    (violation,) = caught.value.violations
    assert violation.entity == "Doc"
    assert violation.attribute == attribute
    assert violation.value == value
    assert type(violation.value) is type(value)
    assert rule in violation.rule
    message = str(caught.value)
    assert f"Doc.{attribute}" in message
    assert repr(value)[:20] in message


def test_every_bad_criteria_value_is_reported_at_once(compiler: SqlCompiler) -> None:
    """All bad values of one criterion tree are listed in one ValidationError."""
    criterion = (DocMap.pages == "a") & DocMap.at.between(NAIVE, NAIVE) | (DocMap.title == 5)
    with pytest.raises(ValidationError) as caught:
        compiler.select(Select(_doc_meta(), where=criterion))
    found = [(v.attribute, v.value) for v in caught.value.violations]
    assert found == [("pages", "a"), ("at", NAIVE), ("at", NAIVE), ("title", 5)]


def test_a_refused_criterion_leaves_the_compiler_usable(compiler: SqlCompiler) -> None:
    """After a ValidationError the same shape compiles with good values."""
    meta = _doc_meta()
    with pytest.raises(ValidationError):
        compiler.select(Select(meta, where=DocMap.pages == "x"))
    bound = compiler.select(Select(meta, where=DocMap.pages == 3))
    assert list(bound.parameters) == [3]
