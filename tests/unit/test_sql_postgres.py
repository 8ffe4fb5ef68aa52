"""PostgresCompiler: the exact SQL text and parameters of every operation shape. No database.

Pins what `dialects/postgres.py` (on top of `dialects/base.py`) sends to asyncpg: `$n`
placeholders, one array per column with `unnest ... WITH ORDINALITY` for every batch whatever
its size, values converted by the column types' binders, generated keys sorted per statement
and stale rows found from the returned ordinals (GUARANTEES G6, G9).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import subprocess
import sys
import uuid
from typing import Any

import attrs
import pytest

from mapper import Column, ConfigurationError, DatabaseError, EntityMap, Registry
from mapper import types as t
from mapper.capabilities import Capabilities
from mapper.criteria import Criterion, as_ordering
from mapper.dialects.postgres import PostgresCompiler, PostgresDialect
from mapper.mapping import EntityMeta
from mapper.operations import (
    Count,
    DeleteBatch,
    InsertBatch,
    PickedRows,
    Select,
    UpdateBatch,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


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
class Other:
    id: int


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
class OtherMap(EntityMap[Other]):
    __table__ = "others"
    id = Column(t.Integer(), primary_key=True)


ACCOUNT_COLUMNS = '"id","name","age","born","seen","balance","token","color","data","version"'
SELECT_ACCOUNTS = f'SELECT {ACCOUNT_COLUMNS} FROM "accounts"'
ROWS = '"__mapper_rows"'

UTC = dt.UTC
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _capabilities() -> Capabilities:
    # make_capabilities reads nothing from a URL or a pool: no connection is made.
    return object.__new__(PostgresDialect).make_capabilities()


@pytest.fixture
def compiler() -> PostgresCompiler:
    return PostgresCompiler(_capabilities())


def _meta(entity: type) -> EntityMeta:
    return registry.meta(entity)


def _where(compiler: PostgresCompiler, criterion: Criterion) -> tuple[str, list[Any]]:
    bound = compiler.select(Select(_meta(Account), where=criterion))
    prefix = SELECT_ACCOUNTS + " WHERE "
    assert bound.sql.startswith(prefix)
    return bound.sql[len(prefix) :], list(bound.parameters)


# -- import ------------------------------------------------------------------------------------


def test_importing_the_dialect_does_not_load_the_driver() -> None:
    """Importing mapper.dialects.postgres leaves asyncpg unimported."""
    code = "import sys, mapper.dialects.postgres\nsys.exit(1 if 'asyncpg' in sys.modules else 0)\n"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()


def test_capabilities_declare_array_parameters_and_returning() -> None:
    """The PostgreSQL capabilities say arrays carry batches and RETURNING exists."""
    capabilities = _capabilities()
    assert capabilities.array_parameters is True
    assert capabilities.returning is True
    assert capabilities.generated_keys is True
    assert capabilities.parameter_limit == 32767


# -- select: criteria ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criterion", "where", "parameters"),
    [
        pytest.param(AccountMap.name == "Ann", '"name"=$1', ["Ann"], id="eq"),
        pytest.param(AccountMap.name != "Ann", '"name"<>$1', ["Ann"], id="ne"),
        pytest.param(AccountMap.age < 30, '"age"<$1', [30], id="lt"),
        pytest.param(AccountMap.age <= 30, '"age"<=$1', [30], id="le"),
        pytest.param(AccountMap.age > 30, '"age">$1', [30], id="gt"),
        pytest.param(AccountMap.age >= 30, '"age">=$1', [30], id="ge"),
        pytest.param(AccountMap.age.in_([1, 2, 3]), '"age"=ANY($1)', [[1, 2, 3]], id="in"),
        pytest.param(AccountMap.age.not_in([1, 2]), '"age"<>ALL($1)', [[1, 2]], id="not_in"),
        pytest.param(AccountMap.age.in_([]), '"age"=ANY($1)', [[]], id="in_empty"),
        pytest.param(AccountMap.age.not_in([]), '"age"<>ALL($1)', [[]], id="not_in_empty"),
        pytest.param(AccountMap.name.like("A%"), "\"name\" LIKE $1 ESCAPE '\\'", ["A%"], id="like"),
        pytest.param(
            AccountMap.name.ilike("a%"), "\"name\" ILIKE $1 ESCAPE '\\'", ["a%"], id="ilike"
        ),
        pytest.param(AccountMap.age.is_null(), '"age" IS NULL', [], id="is_null"),
        pytest.param(AccountMap.age.is_not_null(), 'NOT "age" IS NULL', [], id="is_not_null"),
        pytest.param(AccountMap.age == None, '"age" IS NULL', [], id="eq_none"),  # noqa: E711
        pytest.param(
            AccountMap.age != None,  # noqa: E711
            'NOT "age" IS NULL',
            [],
            id="ne_none",
        ),
        pytest.param(
            AccountMap.age.between(18, 65), '"age" BETWEEN $1 AND $2', [18, 65], id="between"
        ),
        pytest.param(AccountMap.age == AccountMap.version, '"age"="version"', [], id="columns"),
        pytest.param(
            (AccountMap.age > 1) & (AccountMap.name == "x"),
            '"age">$1 AND "name"=$2',
            [1, "x"],
            id="and",
        ),
        pytest.param(
            (AccountMap.age > 1) | (AccountMap.name == "x"),
            '"age">$1 OR "name"=$2',
            [1, "x"],
            id="or",
        ),
        pytest.param(~(AccountMap.age > 1), 'NOT "age">$1', [1], id="not"),
        pytest.param(
            ~((AccountMap.age > 1) | (AccountMap.name == "x")),
            'NOT ("age">$1 OR "name"=$2)',
            [1, "x"],
            id="not_or",
        ),
        pytest.param(
            ((AccountMap.age > 1) | (AccountMap.name == "x")) & AccountMap.name.like("A%"),
            '("age">$1 OR "name"=$2) AND "name" LIKE $3 ESCAPE \'\\\'',
            [1, "x", "A%"],
            id="or_inside_and",
        ),
        pytest.param(
            (AccountMap.age == 1) & ((AccountMap.name == "x") | AccountMap.age.in_([4, 5])),
            '"age"=$1 AND ("name"=$2 OR "age"=ANY($3))',
            [1, "x", [4, 5]],
            id="and_with_or",
        ),
    ],
)
def test_select_renders_each_criterion_kind(
    compiler: PostgresCompiler, criterion: Criterion, where: str, parameters: list[Any]
) -> None:
    """Each criterion kind renders with numbered placeholders and its values as parameters."""
    assert _where(compiler, criterion) == (where, parameters)


def test_select_without_criteria_reads_every_column() -> None:
    """A select with no criteria reads all mapped columns in declaration order."""
    bound = PostgresCompiler(_capabilities()).select(Select(_meta(Account)))
    assert bound.sql == SELECT_ACCOUNTS
    assert list(bound.parameters) == []
    assert bound.operation == "select"
    assert bound.table == "accounts"
    assert bound.fetch is True


def test_criteria_values_are_converted_by_the_column_binders(compiler: PostgresCompiler) -> None:
    """Criteria values are bound like stored values: exact Decimal, Enum value, UUID."""
    seen = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=PLUS_TWO)
    criterion = (
        (AccountMap.balance == decimal.Decimal("1.5"))
        & (AccountMap.color == Color.RED)
        & (AccountMap.token == TOKEN)
        & (AccountMap.seen < seen)
        & (AccountMap.born == dt.date(2000, 1, 2))
    )
    _, parameters = _where(compiler, criterion)
    assert parameters == [
        decimal.Decimal("1.50"),
        "red",
        TOKEN,
        seen,
        dt.date(2000, 1, 2),
    ]
    assert str(parameters[0]) == "1.50"


def test_in_list_values_are_converted_element_by_element(compiler: PostgresCompiler) -> None:
    """An IN list travels as one array whose elements went through the column binder."""
    _, parameters = _where(compiler, AccountMap.color.in_([Color.RED, Color.GREEN]))
    assert parameters == [["red", "green"]]


def test_criteria_on_another_mapping_are_refused(compiler: PostgresCompiler) -> None:
    """A criterion on a column of another mapping raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="OtherMap"):
        compiler.select(Select(_meta(Account), where=OtherMap.id == 1))


# -- select: order, limit, offset ------------------------------------------------------------


def test_order_by_puts_nulls_first_ascending_and_last_descending(
    compiler: PostgresCompiler,
) -> None:
    """Ascending keys say NULLS FIRST and descending keys NULLS LAST, in the order given."""
    order = (AccountMap.name.asc(), AccountMap.age.desc(), *as_ordering(AccountMap.id))
    bound = compiler.select(Select(_meta(Account), order_by=order))
    assert bound.sql == (
        SELECT_ACCOUNTS + ' ORDER BY "name" ASC NULLS FIRST,"age" DESC NULLS LAST,'
        '"id" ASC NULLS FIRST'
    )


def test_limit_and_offset_are_parameters_after_the_criteria(compiler: PostgresCompiler) -> None:
    """LIMIT and OFFSET take the placeholders after the criteria values."""
    op = Select(
        _meta(Account),
        where=AccountMap.name == "Ann",
        order_by=(AccountMap.name.desc(),),
        limit=10,
        offset=20,
    )
    bound = compiler.select(op)
    assert bound.sql == (
        SELECT_ACCOUNTS + ' WHERE "name"=$1 ORDER BY "name" DESC NULLS LAST LIMIT $2 OFFSET $3'
    )
    assert list(bound.parameters) == ["Ann", 10, 20]


def test_offset_without_limit_needs_no_limit_clause(compiler: PostgresCompiler) -> None:
    """PostgreSQL accepts OFFSET alone."""
    bound = compiler.select(Select(_meta(Account), offset=5))
    assert bound.sql == SELECT_ACCOUNTS + " OFFSET $1"
    assert list(bound.parameters) == [5]


def test_limit_without_offset(compiler: PostgresCompiler) -> None:
    """A limit alone is one placeholder."""
    bound = compiler.select(Select(_meta(Account), limit=0))
    assert bound.sql == SELECT_ACCOUNTS + " LIMIT $1"
    assert list(bound.parameters) == [0]


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_limit_must_be_a_non_negative_int(compiler: PostgresCompiler, bad: Any) -> None:
    """A negative, boolean or non-integer limit raises ValueError."""
    with pytest.raises(ValueError, match="limit"):
        compiler.select(Select(_meta(Account), limit=bad))


# -- count and exists --------------------------------------------------------------------------


def test_count_counts_matching_rows(compiler: PostgresCompiler) -> None:
    """Count is SELECT COUNT(*) with the criteria as parameters."""
    bound = compiler.count(Count(_meta(Account), where=AccountMap.age > 3))
    assert bound.sql == 'SELECT COUNT(*) FROM "accounts" WHERE "age">$1'
    assert list(bound.parameters) == [3]
    assert bound.operation == "count"
    assert bound.fetch is True


def test_count_without_criteria(compiler: PostgresCompiler) -> None:
    """Count with no criteria counts the whole table."""
    bound = compiler.count(Count(_meta(Account)))
    assert bound.sql == 'SELECT COUNT(*) FROM "accounts"'
    assert list(bound.parameters) == []


def test_exists_stops_at_the_first_row(compiler: PostgresCompiler) -> None:
    """Exists selects a constant with LIMIT 1."""
    bound = compiler.count(Count(_meta(Account), where=AccountMap.name.in_(["a"]), exists=True))
    assert bound.sql == 'SELECT 1 FROM "accounts" WHERE "name"=ANY($1) LIMIT 1'
    assert list(bound.parameters) == [["a"]]


# -- insert ------------------------------------------------------------------------------------

INSERT_ACCOUNTS = (
    'INSERT INTO "accounts" ("name","age","born","seen","balance","token","color","data",'
    f'"version") SELECT {ROWS}.c0,{ROWS}.c1,{ROWS}.c2,{ROWS}.c3,{ROWS}.c4,{ROWS}.c5,{ROWS}.c6,'
    f"{ROWS}.c7,{ROWS}.c8 FROM unnest($1::text[],$2::integer[],$3::date[],"
    "$4::timestamptz[],$5::numeric[],$6::uuid[],$7::text[],$8::jsonb[],"
    f"$9::integer[]) WITH ORDINALITY AS {ROWS}(c0,c1,c2,c3,c4,c5,c6,c7,c8,ord) "
    f'ORDER BY {ROWS}.ord RETURNING "id"'
)


def _account_insert(rows: list[tuple[Any, ...]]) -> InsertBatch:
    meta = _meta(Account)
    columns = tuple(c for c in meta.columns if not c.generated)
    assert meta.generated is not None
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


def test_insert_with_generated_key_unnests_arrays_in_ordinal_order(
    compiler: PostgresCompiler,
) -> None:
    """An insert is INSERT ... SELECT FROM unnest WITH ORDINALITY ORDER BY ord RETURNING key."""
    (bound,) = compiler.insert(_account_insert([_account_row(1), _account_row(2)]))
    assert bound.sql == INSERT_ACCOUNTS
    assert bound.operation == "insert"
    assert bound.table == "accounts"
    assert bound.fetch is True
    assert bound.rows == 2


def test_insert_parameters_are_one_converted_array_per_column(compiler: PostgresCompiler) -> None:
    """Each parameter is one column's values, converted by that column's binder."""
    seen = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=PLUS_TWO)
    rows = [_account_row(1), ("bob", None, None, None, None, None, None, None, 1)]
    (bound,) = compiler.insert(_account_insert(rows))
    assert list(bound.parameters) == [
        ["user1", "bob"],
        [1, None],
        [dt.date(2000, 1, 2), None],
        [seen, None],
        [decimal.Decimal("1.50"), None],
        [TOKEN, None],
        ["green", None],
        ['{"n":1}', None],
        [1, 1],
    ]
    assert str(bound.parameters[4][0]) == "1.50"


def test_insert_is_one_statement_with_the_same_text_for_any_row_count(
    compiler: PostgresCompiler,
) -> None:
    """One row and 5000 rows give one statement each with the identical cached SQL text."""
    (one,) = compiler.insert(_account_insert([_account_row(0)]))
    many = compiler.insert(_account_insert([_account_row(i) for i in range(5000)]))
    assert len(many) == 1
    assert many[0].sql is one.sql
    assert many[0].rows == 5000
    assert len(many[0].parameters) == 9
    assert all(len(array) == 5000 for array in many[0].parameters)
    assert many[0].parameters[0][4999] == "user4999"


def test_insert_with_client_key_returns_nothing(compiler: PostgresCompiler) -> None:
    """An insert whose keys come from the client has no RETURNING and fetches nothing."""
    meta = _meta(Tag)
    (bound,) = compiler.insert(InsertBatch(meta, meta.columns, [("b", "Bee"), ("a", "Ay")]))
    assert bound.sql == (
        f'INSERT INTO "tags" ("code","label") SELECT {ROWS}.c0,{ROWS}.c1 '
        f"FROM unnest($1::text[],$2::text[]) WITH ORDINALITY AS {ROWS}(c0,c1,ord) "
        f"ORDER BY {ROWS}.ord"
    )
    assert list(bound.parameters) == [["b", "a"], ["Bee", "Ay"]]
    assert bound.fetch is False


def test_insert_with_composite_key(compiler: PostgresCompiler) -> None:
    """A composite-key insert carries every key column as its own array."""
    meta = _meta(Line)
    (bound,) = compiler.insert(InsertBatch(meta, meta.columns, [(7, TOKEN, 3, 1)]))
    assert bound.sql == (
        f'INSERT INTO "lines" ("order_no","token","qty","version") SELECT {ROWS}.c0,'
        f"{ROWS}.c1,{ROWS}.c2,{ROWS}.c3 FROM unnest($1::integer[],$2::uuid[],$3::integer[],"
        f"$4::integer[]) WITH ORDINALITY AS {ROWS}(c0,c1,c2,c3,ord) ORDER BY {ROWS}.ord"
    )
    assert list(bound.parameters) == [[7], [TOKEN], [3], [1]]


def test_generated_values_are_sorted_because_returning_order_is_not_guaranteed(
    compiler: PostgresCompiler,
) -> None:
    """Generated keys come back sorted ascending, matching the rows in insertion order."""
    op = _account_insert([_account_row(i) for i in range(3)])
    assert compiler.generated_values(op, [[(12,), (10,), (11,)]]) == [(10,), (11,), (12,)]


def test_generated_values_are_sorted_per_statement(compiler: PostgresCompiler) -> None:
    """Each statement's keys are sorted on their own and statements keep their order."""
    op = _account_insert([_account_row(i) for i in range(4)])
    returned = [[(21,), (20,)], [(3,), (2,)]]
    assert compiler.generated_values(op, returned) == [(20,), (21,), (2,), (3,)]


# -- update ------------------------------------------------------------------------------------


def _account_update(versions: list[int] | None) -> UpdateBatch:
    meta = _meta(Account)
    columns = (meta.column("name"), meta.column("balance"))
    return UpdateBatch(
        meta,
        columns,
        keys=[(1,), (2,)],
        values=[("a", decimal.Decimal("2")), ("b", None)],
        versions=versions,
    )


def test_versioned_update_checks_and_bumps_the_version(compiler: PostgresCompiler) -> None:
    """A versioned update matches key and old version, sets the columns and adds one."""
    (bound,) = compiler.update(_account_update([3, 4]))
    assert bound.sql == (
        f'UPDATE "accounts" SET "name"={ROWS}.c0,"balance"={ROWS}.c1,'
        f'"version"="accounts"."version"+1 '
        "FROM unnest($1::integer[],$2::integer[],$3::text[],$4::numeric[]) "
        f"WITH ORDINALITY AS {ROWS}(k0,ver,c0,c1,ord) "
        f'WHERE "accounts"."id"={ROWS}.k0 AND "accounts"."version"={ROWS}.ver'
    )
    assert list(bound.parameters) == [[1, 2], [3, 4], ["a", "b"], [decimal.Decimal("2.00"), None]]
    assert bound.operation == "update"
    assert bound.fetch is False  # checked by the row count the server reports
    assert bound.rows == 2


def test_update_without_versions_matches_on_the_key_only(compiler: PostgresCompiler) -> None:
    """Without versions the update neither checks nor bumps the version column."""
    (bound,) = compiler.update(_account_update(None))
    assert bound.sql == (
        f'UPDATE "accounts" SET "name"={ROWS}.c0,"balance"={ROWS}.c1 '
        "FROM unnest($1::integer[],$2::text[],$3::numeric[]) "
        f"WITH ORDINALITY AS {ROWS}(k0,c0,c1,ord) "
        f'WHERE "accounts"."id"={ROWS}.k0'
    )
    assert list(bound.parameters) == [[1, 2], ["a", "b"], [decimal.Decimal("2.00"), None]]


def test_update_arrays_come_straight_from_picked_rows(compiler: PostgresCompiler) -> None:
    """Keys and values given as picked rows (as the commit order gives them) bind the same
    arrays as plain tuples do, taken from the fuller rows, which are left as they were."""
    meta = _meta(Account)
    name, balance = meta.column("name").position, meta.column("balance").position
    full = []
    for written in [("a", decimal.Decimal("2")), ("b", None)]:
        row: list[Any] = [None] * len(meta.columns)
        row[name], row[balance] = written
        full.append(tuple(row))
    keys = [1, 2]
    picked = attrs.evolve(
        _account_update(None), keys=PickedRows(keys), values=PickedRows(full, (name, balance))
    )
    (plain,) = compiler.update(_account_update(None))
    (bound,) = compiler.update(picked)
    assert bound.sql == plain.sql
    assert list(bound.parameters) == list(plain.parameters)
    bound.parameters[0].append(3)
    assert keys == [1, 2]  # the key array is a list of its own


def test_update_of_an_unversioned_mapping(compiler: PostgresCompiler) -> None:
    """A mapping without a version column updates by key."""
    meta = _meta(Tag)
    op = UpdateBatch(meta, (meta.column("label"),), keys=[("a",)], values=[("Ay",)])
    (bound,) = compiler.update(op)
    assert bound.sql == (
        f'UPDATE "tags" SET "label"={ROWS}.c0 FROM unnest($1::text[],$2::text[]) '
        f'WITH ORDINALITY AS {ROWS}(k0,c0,ord) WHERE "tags"."code"={ROWS}.k0'
    )
    assert list(bound.parameters) == [["a"], ["Ay"]]


def test_update_with_composite_key_matches_every_key_column(compiler: PostgresCompiler) -> None:
    """A composite-key update joins on each key column and the version."""
    meta = _meta(Line)
    op = UpdateBatch(meta, (meta.column("qty"),), keys=[(7, TOKEN)], values=[(9,)], versions=[2])
    (bound,) = compiler.update(op)
    assert bound.sql == (
        f'UPDATE "lines" SET "qty"={ROWS}.c0,"version"="lines"."version"+1 '
        "FROM unnest($1::integer[],$2::uuid[],$3::integer[],$4::integer[]) "
        f"WITH ORDINALITY AS {ROWS}(k0,k1,ver,c0,ord) "
        f'WHERE "lines"."order_no"={ROWS}.k0 AND "lines"."token"={ROWS}.k1 '
        f'AND "lines"."version"={ROWS}.ver'
    )
    assert list(bound.parameters) == [[7], [TOKEN], [2], [9]]


def test_update_text_depends_on_the_column_set_not_the_row_count(
    compiler: PostgresCompiler,
) -> None:
    """Updates of the same columns share one cached text; other columns get another."""
    meta = _meta(Account)
    name = (meta.column("name"),)
    small = compiler.update(UpdateBatch(meta, name, keys=[(1,)], values=[("a",)], versions=[1]))
    large = compiler.update(
        UpdateBatch(
            meta,
            name,
            keys=[(i,) for i in range(3000)],
            values=[(f"n{i}",) for i in range(3000)],
            versions=[1] * 3000,
        )
    )
    other = compiler.update(
        UpdateBatch(meta, (meta.column("age"),), keys=[(1,)], values=[(5,)], versions=[1])
    )
    assert len(large) == 1
    assert large[0].sql is small[0].sql
    assert other[0].sql != small[0].sql
    assert '"age"=' in other[0].sql


# -- delete ------------------------------------------------------------------------------------


def test_versioned_delete_matches_key_and_version(compiler: PostgresCompiler) -> None:
    """A versioned delete joins the key and version arrays; the row count checks it."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Account), keys=[(1,), (2,)], versions=[3, 4]))
    assert bound.sql == (
        f'DELETE FROM "accounts" USING unnest($1::integer[],$2::integer[]) '
        f'WITH ORDINALITY AS {ROWS}(k0,ver,ord) WHERE "accounts"."id"={ROWS}.k0 '
        f'AND "accounts"."version"={ROWS}.ver'
    )
    assert list(bound.parameters) == [[1, 2], [3, 4]]
    assert bound.operation == "delete"
    assert bound.fetch is False
    assert bound.rows == 2


def test_a_delete_after_earlier_writes_returns_the_ordinals_it_matched(
    compiler: PostgresCompiler,
) -> None:
    """After other writes of its transaction a delete returns what it matched, as RETURNING."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,)], versions=[3, 4])
    (counted,) = compiler.delete(op)
    (bound,) = compiler.delete(op, after_writes=True)
    assert bound.sql == f"{counted.sql} RETURNING {ROWS}.ord"
    assert bound.fetch is True
    assert list(bound.parameters) == list(counted.parameters)


def test_delete_without_versions_matches_its_keys_by_any(compiler: PostgresCompiler) -> None:
    """Without versions, checked by its count, a delete matches the key array with = ANY."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Account), keys=[(1,), (2,)]))
    assert bound.sql == 'DELETE FROM "accounts" WHERE "accounts"."id"=ANY($1::integer[])'
    assert list(bound.parameters) == [[1, 2]]
    assert bound.fetch is False


@pytest.mark.parametrize("why", ["after_writes", "uncounted"])
def test_a_delete_that_returns_ordinals_joins_the_key_array(
    compiler: PostgresCompiler, why: str
) -> None:
    """A delete that must name its stale rows by ordinal joins unnest WITH ORDINALITY."""
    if why == "uncounted":
        compiler.counts_rows["accounts"] = False
    (bound,) = compiler.delete(
        DeleteBatch(_meta(Account), keys=[(1,), (2,)]), after_writes=why == "after_writes"
    )
    assert bound.sql == (
        f'DELETE FROM "accounts" USING unnest($1::integer[]) WITH ORDINALITY AS {ROWS}(k0,ord) '
        f'WHERE "accounts"."id"={ROWS}.k0 RETURNING {ROWS}.ord'
    )
    assert list(bound.parameters) == [[1, 2]]
    assert bound.fetch is True


def test_delete_with_composite_key(compiler: PostgresCompiler) -> None:
    """A composite-key delete matches every key column."""
    (bound,) = compiler.delete(DeleteBatch(_meta(Line), keys=[(7, TOKEN)], versions=[5]))
    assert bound.sql == (
        f'DELETE FROM "lines" USING unnest($1::integer[],$2::uuid[],$3::integer[]) '
        f'WITH ORDINALITY AS {ROWS}(k0,k1,ver,ord) WHERE "lines"."order_no"={ROWS}.k0 '
        f'AND "lines"."token"={ROWS}.k1 AND "lines"."version"={ROWS}.ver'
    )
    assert list(bound.parameters) == [[7], [TOKEN], [5]]


def test_delete_text_is_the_same_for_any_row_count(compiler: PostgresCompiler) -> None:
    """A delete of one row and of 5000 rows share the cached text."""
    meta = _meta(Tag)
    one = compiler.delete(DeleteBatch(meta, keys=[("a",)]))
    many = compiler.delete(DeleteBatch(meta, keys=[(f"k{i}",) for i in range(5000)]))
    assert len(many) == 1
    assert many[0].sql is one[0].sql


# -- a commit sent alone -----------------------------------------------------------------------

GUARD = "mapper guard: batch rows matched %s, rows written %s"


def test_an_update_sent_alone_is_guarded_by_its_own_count(compiler: PostgresCompiler) -> None:
    """Alone, the update's written ordinals are counted in the statement, against the batch
    size and the guard's text, which travel as the last two parameters."""
    (plain,) = compiler.update(_account_update([3, 4]))
    (bound,) = compiler.update(_account_update([3, 4]), alone=True)
    assert bound.sql == (
        f'WITH "__mapper_written" AS ({plain.sql} RETURNING 1) '
        "SELECT CASE WHEN count(*)=$5 THEN count(*) "
        "ELSE format($6::text,count(*),count(*))::integer END "
        'FROM "__mapper_written"'
    )
    assert list(bound.parameters) == [*plain.parameters, 2, GUARD]
    assert bound.fetch is True and bound.rows == 2
    assert bound.reports_count is True  # the hook's row count is the value it returns
    assert plain.reports_count is False


def test_a_delete_sent_alone_is_guarded_and_counts_distinct_rows_without_a_unique_key(
    compiler: PostgresCompiler,
) -> None:
    """Alone, a delete is guarded the same way; on a table whose keys no unique index keeps
    unique, the guard also counts distinct batch rows, so a twin key cannot make up for a
    stale row."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,), (3,)], versions=[3, 4, 5])
    (plain,) = compiler.delete(op)
    (bound,) = compiler.delete(op, alone=True)
    assert bound.sql.startswith(f'WITH "__mapper_written" AS ({plain.sql} RETURNING 1)')
    assert "WHEN count(*)=$3 THEN" in bound.sql
    assert list(bound.parameters) == [*plain.parameters, 3, GUARD]
    compiler.counts_rows["accounts"] = False
    (uncounted,) = compiler.delete(op, alone=True)
    assert uncounted.sql.startswith(
        f'WITH "__mapper_written" AS ({plain.sql} RETURNING {ROWS}.ord)'
    )
    assert "WHEN count(*)=$3 AND count(DISTINCT ord)=$3 THEN" in uncounted.sql
    assert "format($4::text,count(DISTINCT ord),count(*))" in uncounted.sql


def test_an_unversioned_delete_sent_alone_is_guarded_around_any(
    compiler: PostgresCompiler,
) -> None:
    """Alone, an unversioned delete keeps = ANY inside the guard; the count comes after."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,)])
    (plain,) = compiler.delete(op)
    (bound,) = compiler.delete(op, alone=True)
    assert bound.sql == (
        f'WITH "__mapper_written" AS ({plain.sql} RETURNING 1) '
        "SELECT CASE WHEN count(*)=$2 THEN count(*) "
        "ELSE format($3::text,count(*),count(*))::integer END "
        'FROM "__mapper_written"'
    )
    assert list(bound.parameters) == [[1, 2], 2, GUARD]


def test_the_guard_knows_its_own_error_and_no_other() -> None:
    """The counts come back out of the guard's error text; any other DataError is not it."""
    from mapper.dialects.postgres import _guard_counts
    from mapper.errors import DataError

    filled = GUARD % (3, 4)
    ours = DataError(f'invalid input syntax for type integer: "{filled}"', code="22P02")
    assert _guard_counts(ours) == (3, 4)
    theirs = DataError('invalid input syntax for type integer: "abc"', code="22P02")
    assert _guard_counts(theirs) is None
    elsewhere = DataError(f'value "{filled}" is out of range', code="22003")
    assert _guard_counts(elsewhere) is None  # the marker alone is not enough


def test_the_dialect_compiles_for_plan_as_commit_sends_alone() -> None:
    """compile(alone=True) gives plan() the guarded text the connection sends."""
    dialect = object.__new__(PostgresDialect)
    dialect.compiler = PostgresCompiler(_capabilities())
    op = DeleteBatch(_meta(Tag), keys=[("a",)])
    (sql,) = dialect.compile(op, alone=True)
    assert sql.startswith("WITH ") and sql == dialect.compiler.delete(op, alone=True)[0].sql


# -- stale rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "stale"),
    [
        pytest.param([[(1,), (2,), (3,)]], [], id="all_matched"),
        pytest.param([[(3,), (1,)]], [1], id="middle_missing"),
        pytest.param([[]], [0, 1, 2], id="none_matched"),
        pytest.param([[(2,)]], [0, 2], id="one_matched"),
    ],
)
def test_stale_rows_come_from_the_returned_ordinals(
    compiler: PostgresCompiler, returned: list[list[tuple[int]]], stale: list[int]
) -> None:
    """Rows whose 1-based ordinal did not come back are reported by 0-based index."""
    op = UpdateBatch(
        _meta(Account),
        (_meta(Account).column("name"),),
        keys=[(10,), (20,), (30,)],
        values=[("a",), ("b",), ("c",)],
        versions=[1, 1, 1],
    )
    compiler.update(op)
    assert compiler.stale_rows(op, returned) == stale


def test_stale_rows_of_a_delete_come_from_the_returned_ordinals(
    compiler: PostgresCompiler,
) -> None:
    """A delete reports the rows whose ordinal was not returned."""
    op = DeleteBatch(_meta(Tag), keys=[("a",), ("b",)])
    compiler.delete(op, after_writes=True)
    assert compiler.stale_rows(op, [[(2,)]]) == [0]


def test_a_table_whose_row_count_cannot_be_trusted_returns_what_it_matched(
    compiler: PostgresCompiler,
) -> None:
    """Without a unique index on the mapped key (or as a view), writes return their ordinals."""
    compiler.counts_rows["accounts"] = False
    (update,) = compiler.update(_account_update([3, 4]))
    (delete,) = compiler.delete(DeleteBatch(_meta(Account), keys=[(1,), (2,)], versions=[3, 4]))
    assert update.sql.endswith(f"RETURNING {ROWS}.ord")
    assert delete.sql.endswith(f"RETURNING {ROWS}.ord")
    assert update.fetch is delete.fetch is True
    compiler.counts_rows["accounts"] = True
    (counted,) = compiler.update(_account_update([3, 4]))
    assert "RETURNING" not in counted.sql


def test_an_ordinal_returned_twice_means_the_key_is_not_enforced(
    compiler: PostgresCompiler,
) -> None:
    """One batch row matching two stored rows is refused, naming entity, table and key."""
    op = DeleteBatch(_meta(Account), keys=[(1,), (2,), (3,)])
    with pytest.raises(
        DatabaseError, match=r"more than one row of table accounts \(4 rows for 3 keys\).*\(id\)"
    ):
        compiler.stale_rows(op, [[(1,), (1,), (2,), (3,)]])


def test_rows_an_update_did_not_write_are_asked_by_transaction_id(
    compiler: PostgresCompiler,
) -> None:
    """After a short UPDATE, the batch rows without this transaction's xmin are the stale ones."""
    bound = compiler.unwritten(_account_update([3, 4]))
    assert bound.sql == (
        f"SELECT {ROWS}.ord FROM unnest($1::integer[]) WITH ORDINALITY AS {ROWS}(k0,ord) "
        f'WHERE NOT EXISTS (SELECT 1 FROM "accounts" WHERE "accounts"."id"={ROWS}.k0 '
        f'AND "accounts".xmin=pg_current_xact_id()::xid) ORDER BY {ROWS}.ord'
    )
    assert list(bound.parameters) == [[1, 2]]
    assert bound.fetch is True


def test_rows_a_delete_did_not_match_are_asked_by_key_and_version(
    compiler: PostgresCompiler,
) -> None:
    """After a short DELETE (and its rollback), batch rows matching no stored row are stale."""
    bound = compiler.unmatched(DeleteBatch(_meta(Account), keys=[(1,), (2,)], versions=[3, 4]))
    assert bound.sql == (
        f"SELECT {ROWS}.ord FROM unnest($1::integer[],$2::integer[]) WITH ORDINALITY AS "
        f'{ROWS}(k0,ver,ord) WHERE NOT EXISTS (SELECT 1 FROM "accounts" WHERE '
        f'"accounts"."id"={ROWS}.k0 AND "accounts"."version"={ROWS}.ver) ORDER BY {ROWS}.ord'
    )
    assert list(bound.parameters) == [[1, 2], [3, 4]]


# -- statement cache ----------------------------------------------------------------------------


def test_same_select_shape_reuses_the_cached_text_with_new_values(
    compiler: PostgresCompiler,
) -> None:
    """Two selects of one shape return the identical SQL object and only values differ."""
    first = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([1]), limit=1))
    second = compiler.select(Select(_meta(Account), where=AccountMap.age.in_([4, 5, 6]), limit=50))
    assert second.sql is first.sql
    assert list(first.parameters) == [[1], 1]
    assert list(second.parameters) == [[4, 5, 6], 50]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(AccountMap.age < 1, AccountMap.age <= 1, id="operator"),
        pytest.param(AccountMap.age < 1, AccountMap.version < 1, id="column"),
        pytest.param(AccountMap.age == 1, AccountMap.age == AccountMap.version, id="operand"),
        pytest.param(AccountMap.age.in_([1]), AccountMap.age.not_in([1]), id="negation"),
        pytest.param(AccountMap.name.like("a"), AccountMap.name.ilike("a"), id="case"),
        pytest.param(AccountMap.age.is_null(), AccountMap.age.is_not_null(), id="null"),
        pytest.param(
            (AccountMap.age == 1) & (AccountMap.name == "a"),
            (AccountMap.age == 1) | (AccountMap.name == "a"),
            id="and_or",
        ),
        pytest.param(AccountMap.age == 1, ~(AccountMap.age == 1), id="not"),
    ],
)
def test_different_criteria_shapes_give_different_sql(
    compiler: PostgresCompiler, one: Criterion, other: Criterion
) -> None:
    """Criteria of different shapes never share a cached statement."""
    first = compiler.select(Select(_meta(Account), where=one))
    second = compiler.select(Select(_meta(Account), where=other))
    assert first.sql != second.sql


def test_order_limit_and_offset_are_part_of_the_shape(compiler: PostgresCompiler) -> None:
    """Changing the order, or adding a limit or offset, gives another statement."""
    meta = _meta(Account)
    texts = {
        compiler.select(Select(meta)).sql,
        compiler.select(Select(meta, order_by=(AccountMap.age.asc(),))).sql,
        compiler.select(Select(meta, order_by=(AccountMap.age.desc(),))).sql,
        compiler.select(Select(meta, limit=1)).sql,
        compiler.select(Select(meta, offset=1)).sql,
        compiler.select(Select(meta, limit=1, offset=1)).sql,
    }
    assert len(texts) == 6


def test_count_and_exists_are_cached_separately(compiler: PostgresCompiler) -> None:
    """Count and exists of one criterion are distinct cached statements."""
    meta = _meta(Account)
    count = compiler.count(Count(meta, where=AccountMap.age == 1))
    exists = compiler.count(Count(meta, where=AccountMap.age == 2, exists=True))
    again = compiler.count(Count(meta, where=AccountMap.age == 3))
    assert count.sql != exists.sql
    assert again.sql is count.sql
    assert list(again.parameters) == [3]


def test_the_statement_cache_is_bounded(compiler: PostgresCompiler) -> None:
    """Past cache_size shapes the oldest is dropped and later rebuilt equal."""
    compiler.cache_size = 2  # type: ignore[misc]
    meta = _meta(Account)
    first = compiler.select(Select(meta, where=AccountMap.age == 1)).sql
    assert compiler.select(Select(meta, where=AccountMap.age == 2)).sql is first
    compiler.select(Select(meta, where=AccountMap.age < 1))
    compiler.select(Select(meta, where=AccountMap.age > 1))
    rebuilt = compiler.select(Select(meta, where=AccountMap.age == 3)).sql
    assert rebuilt == first
    assert rebuilt is not first
