"""SqliteCompiler: the exact SQL text and parameters of every operation shape. No database.

Pins what `dialects/sqlite.py` (on top of `dialects/base.py`) sends to aiosqlite: `?`
placeholders, IN lists as one JSON array parameter (the same SQL for every length),
multi-row VALUES batches chunked by the bind-variable limit, values converted to what SQLite
stores (UTC text for aware datetimes, exact text for decimals), generated keys sorted per
statement and stale rows found from the returned keys (GUARANTEES G6, G9).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import subprocess
import sys
import uuid
from typing import Any, ClassVar

import attrs
import pytest

from mapper import Column, DatabaseError, EntityMap, Registry
from mapper import types as t
from mapper.capabilities import Capabilities
from mapper.criteria import Criterion
from mapper.dialects.base import ParameterStyle, Placeholders, SqlCompiler
from mapper.dialects.sqlite import SqliteCompiler, SqliteDialect, _variable_limit
from mapper.mapping import EntityMeta
from mapper.operations import Count, DeleteBatch, InsertBatch, Select, UpdateBatch
from mapper.types import DialectName


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@attrs.define
class Account:
    name: str
    age: int | None = None
    born: dt.date | None = None
    seen: dt.datetime | None = None
    balance: decimal.Decimal | None = None
    token: uuid.UUID | None = None
    color: Color | None = None
    data: dict[str, Any] | None = None
    version: int = 0
    id: int | None = None


@attrs.define
class Reading:
    id: int
    local: dt.datetime | None = None
    at: dt.time | None = None
    ratio: float | None = None
    raw: bytes | None = None
    flag: bool | None = None
    level: Level | None = None


@attrs.define
class Tag:
    code: str
    label: str


@attrs.define
class Line:
    order_no: int
    token: uuid.UUID
    qty: int
    version: int = 0


@attrs.define
class Price:
    amount: decimal.Decimal
    label: str


registry = Registry()


@registry.map
class AccountMap(EntityMap[Account]):
    __table__ = "accounts"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(100))
    age = Column(t.Integer())
    born = Column(t.Date())
    seen = Column(t.DateTime())
    balance = Column(t.Decimal(10, 2))
    token = Column(t.UUID())
    color = Column(t.Enum(Color))
    data = Column(t.JSON())
    version = Column(t.Integer(), version=True)


@registry.map
class ReadingMap(EntityMap[Reading]):
    __table__ = "readings"
    id = Column(t.Integer(), primary_key=True)
    local = Column(t.DateTime(tz=False))
    at = Column(t.Time())
    ratio = Column(t.Float())
    raw = Column(t.Bytes())
    flag = Column(t.Boolean())
    level = Column(t.Enum(Level))


@registry.map
class TagMap(EntityMap[Tag]):
    __table__ = "tags"
    code = Column(t.String(20), primary_key=True)
    label = Column(t.Text())


@registry.map
class LineMap(EntityMap[Line]):
    __table__ = "lines"
    order_no = Column(t.Integer(), primary_key=True)
    token = Column(t.UUID(), primary_key=True)
    qty = Column(t.Integer())
    version = Column(t.Integer(), version=True)


@registry.map
class PriceMap(EntityMap[Price]):
    __table__ = "prices"
    amount = Column(t.Decimal(10, 2), primary_key=True)
    label = Column(t.Text())


ACCOUNT_COLUMNS = '"id","name","age","born","seen","balance","token","color","data","version"'
SELECT_ACCOUNTS = f'SELECT {ACCOUNT_COLUMNS} FROM "accounts"'
# An IN list is one JSON array parameter, so its SQL is the same for every length.
IN_JSON = "IN (SELECT value FROM json_each(?))"
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _capabilities(parameter_limit: int | None = None) -> Capabilities:
    # make_capabilities only probes the library's variable limit on a throwaway :memory:.
    capabilities = object.__new__(SqliteDialect).make_capabilities()
    if parameter_limit is None:
        return capabilities
    return attrs.evolve(capabilities, parameter_limit=parameter_limit)


@pytest.fixture
def compiler() -> SqliteCompiler:
    return SqliteCompiler(_capabilities())


def _meta(entity: type) -> EntityMeta:
    return registry.meta(entity)


def _where(compiler: SqlCompiler, criterion: Criterion) -> tuple[str, list[Any]]:
    bound = compiler.select(Select(_meta(Account), where=criterion))
    prefix = SELECT_ACCOUNTS + " WHERE "
    assert bound.sql.startswith(prefix)
    return bound.sql[len(prefix) :], list(bound.parameters)


# -- import and capabilities ----------------------------------------------------------------


def test_importing_the_dialect_does_not_load_the_driver() -> None:
    """Importing mapper.dialects.sqlite leaves aiosqlite unimported."""
    code = "import sys, mapper.dialects.sqlite\nsys.exit(1 if 'aiosqlite' in sys.modules else 0)\n"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


def test_capabilities_take_the_variable_limit_from_the_library() -> None:
    """The parameter limit is SQLite's own bind-variable limit; arrays are not available."""
    capabilities = _capabilities()
    assert capabilities.parameter_limit == _variable_limit()
    assert capabilities.parameter_limit >= 999
    assert capabilities.array_parameters is False
    assert capabilities.concurrent_writers is False


# -- base helpers -------------------------------------------------------------------------------


def test_parameter_styles_number_or_repeat_placeholders() -> None:
    """A numbered style formats the index; a fixed style repeats its text."""
    assert ParameterStyle(numbered="${}")(3) == "$3"
    assert ParameterStyle(numbered="%(p{})s")(2) == "%(p2)s"
    assert ParameterStyle(fixed="%s")(9) == "%s"
    assert ParameterStyle()(1) == "?"


def test_placeholders_are_handed_out_in_order() -> None:
    """Placeholders count up from the start index."""
    placeholders = Placeholders(ParameterStyle(numbered="${}"), start=4)
    assert [placeholders.take() for _ in range(3)] == ["$4", "$5", "$6"]
    assert placeholders.next == 7


def test_bind_rows_converts_column_by_column_and_keeps_none() -> None:
    """bind_rows applies each column's binder and leaves None alone; with no binder at all
    the rows are passed on as they are, not copied."""
    rows = [(1, TOKEN), (2, None)]
    assert SqlCompiler.bind_rows(rows, [None, str]) == [[1, str(TOKEN)], [2, None]]
    assert SqlCompiler.bind_rows(rows, [None, None]) is rows


# -- select: criteria ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "where", "parameters"),
    [
        pytest.param(AccountMap.name == "Ann", '"name"=?', ["Ann"], id="eq"),
        pytest.param(AccountMap.name != "Ann", '"name"<>?', ["Ann"], id="ne"),
        pytest.param(AccountMap.age < 30, '"age"<?', [30], id="lt"),
        pytest.param(AccountMap.age <= 30, '"age"<=?', [30], id="le"),
        pytest.param(AccountMap.age > 30, '"age">?', [30], id="gt"),
        pytest.param(AccountMap.age >= 30, '"age">=?', [30], id="ge"),
        pytest.param(AccountMap.age.in_([1, 2, 3]), f'"age" {IN_JSON}', ["[1,2,3]"], id="in"),
        pytest.param(AccountMap.age.not_in([1, 2]), f'"age" NOT {IN_JSON}', ["[1,2]"], id="not_in"),
        pytest.param(AccountMap.age.in_([]), f'"age" {IN_JSON}', ["[]"], id="in_empty"),
        pytest.param(AccountMap.age.not_in([]), f'"age" NOT {IN_JSON}', ["[]"], id="not_in_empty"),
        pytest.param(AccountMap.name.like("A%"), "\"name\" LIKE ? ESCAPE '\\'", ["A%"], id="like"),
        pytest.param(
            AccountMap.name.ilike("a%"),
            "mapper_lower(\"name\") LIKE mapper_lower(?) ESCAPE '\\'",
            ["a%"],
            id="ilike",
        ),
        pytest.param(AccountMap.age.is_null(), '"age" IS NULL', [], id="is_null"),
        pytest.param(AccountMap.age.is_not_null(), 'NOT "age" IS NULL', [], id="is_not_null"),
        pytest.param(
            AccountMap.age.between(18, 65), '"age" BETWEEN ? AND ?', [18, 65], id="between"
        ),
        pytest.param(AccountMap.age == AccountMap.version, '"age"="version"', [], id="columns"),
        pytest.param(
            (AccountMap.age > 1) & (AccountMap.name == "x"),
            '"age">? AND "name"=?',
            [1, "x"],
            id="and",
        ),
        pytest.param(
            (AccountMap.age > 1) | (AccountMap.name == "x"),
            '"age">? OR "name"=?',
            [1, "x"],
            id="or",
        ),
        pytest.param(~(AccountMap.age > 1), 'NOT "age">?', [1], id="not"),
        pytest.param(
            ~((AccountMap.age > 1) & AccountMap.age.in_([3, 4])),
            f'NOT ("age">? AND "age" {IN_JSON})',
            [1, "[3,4]"],
            id="not_and",
        ),
        pytest.param(
            (AccountMap.age.in_([]) | (AccountMap.name == "x")) & AccountMap.name.like("A%"),
            f'("age" {IN_JSON} OR "name"=?) AND "name" LIKE ? ESCAPE \'\\\'',
            ["[]", "x", "A%"],
            id="or_inside_and",
        ),
    ],
)
def test_select_renders_each_criterion_kind(
    compiler: SqliteCompiler, criterion: Criterion, where: str, parameters: list[Any]
) -> None:
    """Each criterion kind renders with ? placeholders and its values as parameters."""
    assert _where(compiler, criterion) == (where, parameters)


def test_criteria_values_are_converted_to_what_sqlite_stores(compiler: SqliteCompiler) -> None:
    """Criteria values are bound like stored values: UTC text, exact decimal text, UUID text."""
    criterion = (
        (AccountMap.seen < dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=PLUS_TWO))
        & (AccountMap.balance == decimal.Decimal("1.5"))
        & (AccountMap.token == TOKEN)
        & (AccountMap.color == Color.RED)
        & (AccountMap.born == dt.date(2000, 1, 2))
    )
    _, parameters = _where(compiler, criterion)
    assert parameters == [
        "2024-05-06 05:08:09.000000",
        "1.50",
        "12345678-1234-5678-1234-567812345678",
        "red",
        "2000-01-02",
    ]


def test_in_list_values_are_converted_one_by_one(compiler: SqliteCompiler) -> None:
    """Each IN list value goes through the column binder into one JSON array parameter."""
    other = uuid.UUID(int=1)
    where, parameters = _where(compiler, AccountMap.token.in_([TOKEN, other]))
    assert where == f'"token" {IN_JSON}'
    assert parameters == [json.dumps([str(TOKEN), str(other)], separators=(",", ":"))]
    where, parameters = _where(
        compiler, AccountMap.balance.not_in([decimal.Decimal("1.5"), decimal.Decimal(7)])
    )
    assert where == f'"balance" NOT {IN_JSON}'
    assert parameters == ['["1.50","7.00"]']


def test_bytes_in_lists_compare_as_upper_case_hex(compiler: SqliteCompiler) -> None:
    """Blobs cannot travel in JSON, so bytes IN lists compare hex(column) with hex strings."""
    criterion = ReadingMap.raw.in_([b"\x00\xab", bytearray(b"z")])
    bound = compiler.select(Select(_meta(Reading), where=criterion))
    assert bound.sql.endswith(f' WHERE hex("raw") {IN_JSON}')
    assert list(bound.parameters) == ['["00AB","7A"]']


# -- select: order, limit, offset ------------------------------------------------------------


def test_order_by_puts_nulls_first_ascending_and_last_descending(
    compiler: SqliteCompiler,
) -> None:
    """Ascending keys say NULLS FIRST and descending keys NULLS LAST."""
    bound = compiler.select(
        Select(_meta(Account), order_by=(AccountMap.age.desc(), AccountMap.name.asc()))
    )
    assert bound.sql == (SELECT_ACCOUNTS + ' ORDER BY "age" DESC NULLS LAST,"name" ASC NULLS FIRST')


def test_limit_and_offset_follow_the_criteria_values(compiler: SqliteCompiler) -> None:
    """LIMIT and OFFSET are the last parameters, after the criteria."""
    op = Select(
        _meta(Account),
        where=AccountMap.age.between(1, 2),
        order_by=(AccountMap.id.asc(),),
        limit=10,
        offset=20,
    )
    bound = compiler.select(op)
    assert bound.sql == (
        SELECT_ACCOUNTS
        + ' WHERE "age" BETWEEN ? AND ? ORDER BY "id" ASC NULLS FIRST LIMIT ? OFFSET ?'
    )
    assert list(bound.parameters) == [1, 2, 10, 20]


def test_offset_without_limit_says_limit_minus_one(compiler: SqliteCompiler) -> None:
    """SQLite needs a LIMIT before OFFSET, so an offset alone gets LIMIT -1."""
    bound = compiler.select(Select(_meta(Account), offset=5))
    assert bound.sql == SELECT_ACCOUNTS + " LIMIT -1 OFFSET ?"
    assert list(bound.parameters) == [5]


def test_limit_alone(compiler: SqliteCompiler) -> None:
    """A limit alone is one placeholder."""
    bound = compiler.select(Select(_meta(Account), limit=3))
    assert bound.sql == SELECT_ACCOUNTS + " LIMIT ?"
    assert list(bound.parameters) == [3]


def test_negative_offset_is_refused(compiler: SqliteCompiler) -> None:
    """A negative offset raises ValueError naming offset."""
    with pytest.raises(ValueError, match="offset"):
        compiler.select(Select(_meta(Account), offset=-1))


# -- count and exists -------------------------------------------------------------------------


def test_count_counts_matching_rows(compiler: SqliteCompiler) -> None:
    """Count is SELECT COUNT(*) with the criteria as parameters."""
    bound = compiler.count(Count(_meta(Account), where=AccountMap.name.like("a%")))
    assert bound.sql == 'SELECT COUNT(*) FROM "accounts" WHERE "name" LIKE ? ESCAPE \'\\\''
    assert list(bound.parameters) == ["a%"]


def test_exists_stops_at_the_first_row(compiler: SqliteCompiler) -> None:
    """Exists selects a constant with LIMIT 1."""
    bound = compiler.count(Count(_meta(Account), where=AccountMap.age.in_([1, 2]), exists=True))
    assert bound.sql == f'SELECT 1 FROM "accounts" WHERE "age" {IN_JSON} LIMIT 1'
    assert list(bound.parameters) == ["[1,2]"]


def test_exists_without_criteria(compiler: SqliteCompiler) -> None:
    """Exists over the whole table still stops at one row."""
    bound = compiler.count(Count(_meta(Account), exists=True))
    assert bound.sql == 'SELECT 1 FROM "accounts" LIMIT 1'


# -- insert --------------------------------------------------------------------------------------


def _account_insert(rows: list[tuple[Any, ...]]) -> InsertBatch:
    meta = _meta(Account)
    assert meta.generated is not None
    columns = tuple(c for c in meta.columns if not c.generated)
    return InsertBatch(meta, columns, rows, returning=(meta.generated,))


def _account_row(index: int) -> tuple[Any, ...]:
    return (
        f"user{index}",
        index,
        dt.date(2000, 1, 2),
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=PLUS_TWO),
        decimal.Decimal("1.5"),
        TOKEN,
        Color.GREEN,
        {"n": index},
        1,
    )


def test_insert_with_generated_key_returns_it(compiler: SqliteCompiler) -> None:
    """An insert of new rows is multi-row VALUES with RETURNING the generated key."""
    (bound,) = compiler.insert(_account_insert([_account_row(1), _account_row(2)]))
    row = "(?,?,?,?,?,?,?,?,?)"
    assert bound.sql == (
        'INSERT INTO "accounts" ("name","age","born","seen","balance","token","color","data",'
        f'"version") VALUES {row},{row} RETURNING "id"'
    )
    assert bound.fetch is True
    assert bound.rows == 2
    assert bound.operation == "insert"
    assert bound.table == "accounts"


def test_insert_values_are_converted_to_what_sqlite_stores(compiler: SqliteCompiler) -> None:
    """Binders turn datetimes into UTC text, decimals into exact text, UUID/Enum/JSON to text."""
    rows = [_account_row(1), ("bob", None, None, None, None, None, None, None, 1)]
    (bound,) = compiler.insert(_account_insert(rows))
    assert list(bound.parameters) == [
        "user1",
        1,
        "2000-01-02",
        "2024-01-02 01:04:05.000006",
        "1.50",
        "12345678-1234-5678-1234-567812345678",
        "green",
        '{"n":1}',
        1,
        "bob",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        1,
    ]


def test_other_types_are_converted_for_sqlite(compiler: SqliteCompiler) -> None:
    """Naive datetimes and times become text, ints in float columns floats, Enum ints values."""
    meta = _meta(Reading)
    row = (
        1,
        dt.datetime(2024, 1, 2, 3, 4, 5),
        dt.time(6, 7, 8),
        2,
        bytearray(b"\x00\x01"),
        True,
        Level.HIGH,
    )
    (bound,) = compiler.insert(InsertBatch(meta, meta.columns, [row]))
    assert list(bound.parameters) == [
        1,
        "2024-01-02 03:04:05.000000",
        "06:07:08.000000",
        2.0,
        b"\x00\x01",
        True,
        2,
    ]
    assert type(bound.parameters[3]) is float
    assert type(bound.parameters[4]) is bytes


def test_insert_with_client_key_returns_nothing(compiler: SqliteCompiler) -> None:
    """An insert with client keys has no RETURNING and fetches nothing."""
    meta = _meta(Tag)
    (bound,) = compiler.insert(InsertBatch(meta, meta.columns, [("b", "Bee"), ("a", "Ay")]))
    assert bound.sql == 'INSERT INTO "tags" ("code","label") VALUES (?,?),(?,?)'
    assert list(bound.parameters) == ["b", "Bee", "a", "Ay"]
    assert bound.fetch is False


def test_insert_with_composite_key(compiler: SqliteCompiler) -> None:
    """A composite-key insert lists every key column; a UUID key is bound as text."""
    meta = _meta(Line)
    (bound,) = compiler.insert(InsertBatch(meta, meta.columns, [(7, TOKEN, 3, 1)]))
    assert bound.sql == 'INSERT INTO "lines" ("order_no","token","qty","version") VALUES (?,?,?,?)'
    assert list(bound.parameters) == [7, str(TOKEN), 3, 1]


def test_insert_is_chunked_by_the_variable_limit() -> None:
    """Rows are split so no statement carries more parameters than the limit."""
    compiler = SqliteCompiler(_capabilities(parameter_limit=7))
    meta = _meta(Tag)
    rows = [(f"k{i}", f"label{i}") for i in range(8)]
    statements = compiler.insert(InsertBatch(meta, meta.columns, rows))
    assert [b.rows for b in statements] == [3, 3, 2]
    assert statements[0].sql == 'INSERT INTO "tags" ("code","label") VALUES (?,?),(?,?),(?,?)'
    assert statements[1].sql is statements[0].sql
    assert statements[2].sql == 'INSERT INTO "tags" ("code","label") VALUES (?,?),(?,?)'
    assert [list(b.parameters) for b in statements] == [
        ["k0", "label0", "k1", "label1", "k2", "label2"],
        ["k3", "label3", "k4", "label4", "k5", "label5"],
        ["k6", "label6", "k7", "label7"],
    ]
    assert all(len(b.parameters) <= 7 for b in statements)


def test_insert_of_5000_rows_stays_within_the_real_limit(compiler: SqliteCompiler) -> None:
    """5000 rows are written in as few statements as SQLite's own limit allows."""
    statements = compiler.insert(_account_insert([_account_row(i) for i in range(5000)]))
    limit = _variable_limit()
    per_statement = limit // 9
    assert [b.rows for b in statements][:-1] == [per_statement] * (len(statements) - 1)
    assert sum(b.rows for b in statements) == 5000
    assert all(len(b.parameters) <= limit for b in statements)
    assert statements[-1].parameters[-9] == "user4999"


def test_a_row_wider_than_the_limit_still_gets_a_statement() -> None:
    """With fewer variables than columns, each row still goes in its own statement."""
    compiler = SqliteCompiler(_capabilities(parameter_limit=1))
    meta = _meta(Tag)
    statements = compiler.insert(InsertBatch(meta, meta.columns, [("a", "A"), ("b", "B")]))
    assert [b.rows for b in statements] == [1, 1]


def test_generated_values_are_sorted_per_statement(compiler: SqliteCompiler) -> None:
    """Keys are sorted within each statement's RETURNING rows; statements keep their order."""
    op = _account_insert([_account_row(i) for i in range(5)])
    returned = [[(9,), (7,), (8,)], [(2,), (1,)]]
    assert compiler.generated_values(op, returned) == [(7,), (8,), (9,), (1,), (2,)]


# -- update ---------------------------------------------------------------------------------------


def _account_update(versions: list[int] | None, count: int = 2) -> UpdateBatch:
    meta = _meta(Account)
    return UpdateBatch(
        meta,
        (meta.column("name"), meta.column("seen")),
        keys=[(i + 1,) for i in range(count)],
        values=[
            (f"n{i}", dt.datetime(2024, 1, 1, 12, tzinfo=PLUS_TWO) if i == 0 else None)
            for i in range(count)
        ],
        versions=versions,
    )


def test_versioned_update_checks_and_bumps_the_version(compiler: SqliteCompiler) -> None:
    """A versioned update joins VALUES on key and version, sets the columns and adds one."""
    (bound,) = compiler.update(_account_update([3, 4]))
    assert bound.sql == (
        'UPDATE "accounts" SET "name"=v.column3,"seen"=v.column4,"version"="version"+1 '
        "FROM (VALUES (?,?,?,?),(?,?,?,?)) AS v "
        'WHERE "accounts"."id"=v.column1 AND "accounts"."version"=v.column2 RETURNING "id"'
    )
    assert list(bound.parameters) == [1, 3, "n0", "2024-01-01 10:00:00.000000", 2, 4, "n1", None]
    assert bound.operation == "update"
    assert bound.fetch is True
    assert bound.rows == 2


def test_update_without_versions_matches_on_the_key_only(compiler: SqliteCompiler) -> None:
    """Without versions the version column is neither checked nor bumped."""
    (bound,) = compiler.update(_account_update(None))
    assert bound.sql == (
        'UPDATE "accounts" SET "name"=v.column2,"seen"=v.column3 '
        'FROM (VALUES (?,?,?),(?,?,?)) AS v WHERE "accounts"."id"=v.column1 RETURNING "id"'
    )
    assert list(bound.parameters) == [1, "n0", "2024-01-01 10:00:00.000000", 2, "n1", None]


def test_update_with_composite_key_matches_every_key_column(compiler: SqliteCompiler) -> None:
    """A composite-key update matches each key column (UUID as text) and the version."""
    meta = _meta(Line)
    op = UpdateBatch(meta, (meta.column("qty"),), keys=[(7, TOKEN)], values=[(9,)], versions=[2])
    (bound,) = compiler.update(op)
    assert bound.sql == (
        'UPDATE "lines" SET "qty"=v.column4,"version"="version"+1 FROM (VALUES (?,?,?,?)) AS v '
        'WHERE "lines"."order_no"=v.column1 AND "lines"."token"=v.column2 '
        'AND "lines"."version"=v.column3 RETURNING "order_no","token"'
    )
    assert list(bound.parameters) == [7, str(TOKEN), 2, 9]


def test_update_is_chunked_by_the_variable_limit() -> None:
    """Key, version and values of a row count against the limit together."""
    compiler = SqliteCompiler(_capabilities(parameter_limit=9))
    statements = compiler.update(_account_update([1] * 5, count=5))
    assert [b.rows for b in statements] == [2, 2, 1]
    assert statements[1].sql is statements[0].sql
    assert statements[2].sql != statements[0].sql
    assert list(statements[2].parameters) == [5, 1, "n4", None]


def test_update_text_depends_on_the_column_set(compiler: SqliteCompiler) -> None:
    """Updates of the same columns and row count share text; other columns get another."""
    meta = _meta(Tag)
    label = (meta.column("label"),)
    first = compiler.update(UpdateBatch(meta, label, keys=[("a",)], values=[("A",)]))
    second = compiler.update(UpdateBatch(meta, label, keys=[("b",)], values=[("B",)]))
    code_column = (meta.column("code"),)
    code = compiler.update(UpdateBatch(meta, code_column, keys=[("c",)], values=[("C",)]))
    assert second[0].sql is first[0].sql
    assert list(second[0].parameters) == ["b", "B"]
    assert code[0].sql != first[0].sql


# -- delete --------------------------------------------------------------------------------------


def test_versioned_delete_matches_key_and_version(compiler: SqliteCompiler) -> None:
    """A versioned delete matches (key, version) row values and returns the keys."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Account), keys=[(1,), (2,)], versions=[3, 4]))
    assert bound.sql == (
        'DELETE FROM "accounts" WHERE ("id","version") IN (VALUES (?,?),(?,?)) RETURNING "id"'
    )
    assert list(bound.parameters) == [1, 3, 2, 4]
    assert bound.operation == "delete"
    assert bound.fetch is True
    assert bound.rows == 2


def test_delete_without_versions_matches_on_the_key_only(compiler: SqliteCompiler) -> None:
    """Without versions a delete matches the key alone."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Account), keys=[(1,), (2,)]))
    assert bound.sql == 'DELETE FROM "accounts" WHERE "id" IN (VALUES (?),(?)) RETURNING "id"'
    assert list(bound.parameters) == [1, 2]


def test_delete_with_composite_key(compiler: SqliteCompiler) -> None:
    """A composite-key delete matches row values of every key column."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Line), keys=[(7, TOKEN)]))
    assert bound.sql == (
        'DELETE FROM "lines" WHERE ("order_no","token") IN (VALUES (?,?)) '
        'RETURNING "order_no","token"'
    )
    assert list(bound.parameters) == [7, str(TOKEN)]


def test_delete_is_chunked_by_the_variable_limit() -> None:
    """Deletes split like inserts: key and version count against the limit."""
    compiler = SqliteCompiler(_capabilities(parameter_limit=4))
    statements = compiler.delete(
        DeleteBatch(_meta(Account), keys=[(i,) for i in range(5)], versions=[1] * 5)
    )
    assert [b.rows for b in statements] == [2, 2, 1]
    assert [list(b.parameters) for b in statements] == [[0, 1, 1, 1], [2, 1, 3, 1], [4, 1]]


# -- stale rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "stale"),
    [
        pytest.param([[(1,), (2,), (3,)]], [], id="all_written"),
        pytest.param([[(3,), (1,)]], [1], id="middle_missing"),
        pytest.param([[]], [0, 1, 2], id="none_written"),
        pytest.param([[(1,)], [(3,)]], [1], id="across_statements"),
    ],
)
def test_stale_rows_are_the_keys_not_returned(
    compiler: SqliteCompiler, returned: list[list[tuple[int]]], stale: list[int]
) -> None:
    """Rows whose key no statement returned are reported by index."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,), (3,)], versions=[1, 1, 1])
    compiler.delete(op)
    assert compiler.stale_rows(op, returned) == stale


def test_a_key_returned_twice_means_the_table_does_not_enforce_it(
    compiler: SqliteCompiler,
) -> None:
    """A batch key matching two stored rows is refused, naming entity, table and key."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,), (3,)], versions=[1, 1, 1])
    compiler.delete(op)
    with pytest.raises(
        DatabaseError, match=r"more than one row of table accounts \(4 rows for 3 keys\).*\(id\)"
    ):
        compiler.stale_rows(op, [[(1,), (1,), (2,), (3,)]])


def test_stale_rows_compare_keys_in_stored_form(compiler: SqliteCompiler) -> None:
    """UUID parts of a key are compared as the text SQLite returns."""
    other = uuid.UUID(int=5)
    meta = _meta(Line)
    op = UpdateBatch(
        meta,
        (meta.column("qty"),),
        keys=[(1, TOKEN), (2, other)],
        values=[(1,), (2,)],
        versions=[1, 1],
    )
    compiler.update(op)
    assert compiler.stale_rows(op, [[(2, str(other))]]) == [0]


def test_stale_rows_match_decimal_keys_returned_as_numbers(compiler: SqliteCompiler) -> None:
    """A Decimal key that SQLite returns as a number (NUMERIC affinity) counts as written."""
    # SQLite 3.40 stores '1.50' bound into a DECIMAL column as REAL 1.5 and returns 1.5.
    meta = _meta(Price)
    op = UpdateBatch(
        meta, (meta.column("label"),), keys=[(decimal.Decimal("1.5"),)], values=[("x",)]
    )
    compiler.update(op)
    assert compiler.stale_rows(op, [[(1.5,)]]) == []


# -- statement cache ----------------------------------------------------------------------------


def test_same_select_shape_reuses_the_cached_text_with_new_values(
    compiler: SqliteCompiler,
) -> None:
    """Two selects of one shape return the identical SQL object and only values differ."""
    first = compiler.select(Select(_meta(Account), where=AccountMap.name.ilike("a%"), limit=1))
    second = compiler.select(Select(_meta(Account), where=AccountMap.name.ilike("b%"), limit=9))
    assert second.sql is first.sql
    assert list(second.parameters) == ["b%", 9]


def test_in_lists_of_any_length_share_one_statement(compiler: SqliteCompiler) -> None:
    """An IN list is one JSON parameter, so its length is not part of the shape."""
    two = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([1, 2])))
    three = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([1, 2, 3])))
    empty = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([])))
    negated = compiler.select(Select(_meta(Account), where=AccountMap.age.not_in([1, 2])))
    assert three.sql is two.sql
    assert empty.sql is two.sql
    assert negated.sql != two.sql
    assert [list(b.parameters) for b in (two, three, empty)] == [["[1,2]"], ["[1,2,3]"], ["[]"]]


def test_the_portable_compiler_expands_one_placeholder_per_in_list_value() -> None:
    """The base SqlCompiler keeps row-value IN lists, and 1=0 / 1=1 for empty ones."""

    class PortableCompiler(SqlCompiler):
        dialect: ClassVar[DialectName] = "sqlite"

    compiler = PortableCompiler(_capabilities())
    cases = [
        (AccountMap.age.in_([1, 2, 3]), '"age" IN (?,?,?)', [1, 2, 3]),
        (AccountMap.age.not_in([1, 2]), '"age" NOT IN (?,?)', [1, 2]),
        (AccountMap.age.in_([]), "1=0", []),
        (AccountMap.age.not_in([]), "1=1", []),
    ]
    for criterion, where, parameters in cases:
        assert _where(compiler, criterion) == (where, parameters)
    two = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([1, 2])))
    three = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([1, 2, 3])))
    assert two.sql != three.sql


def test_different_criteria_shapes_give_different_sql(compiler: SqliteCompiler) -> None:
    """Criteria that differ in operator, column or structure never share a statement."""
    criteria = [
        AccountMap.age < 1,
        AccountMap.age > 1,
        AccountMap.version < 1,
        AccountMap.age.is_null(),
        AccountMap.age.is_not_null(),
        AccountMap.name.like("a"),
        AccountMap.name.ilike("a"),
        AccountMap.age.between(1, 2),
        (AccountMap.age < 1) & (AccountMap.version < 1),
        (AccountMap.age < 1) | (AccountMap.version < 1),
        ~(AccountMap.age < 1),
    ]
    texts = {compiler.select(Select(_meta(Account), where=c)).sql for c in criteria}
    assert len(texts) == len(criteria)
