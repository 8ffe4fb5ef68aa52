"""Relations on every backend: declaring, loading, criteria across them, and writing them.

The contract of issue 5, run on each backend of the suite: `load=` costs one query per
relation per level whatever the number of parents, every loaded row goes through the
identity map, unloaded relations hold placeholders that refuse any use and write nothing,
criteria across relations give the same rows everywhere (three-valued NULL logic included),
and a flush cascades adds, turns collection changes into foreign keys and link rows, follows
the delete rules and breaks row cycles. Statements are counted through `db.on_statement`.

The module has its own registry; its tables start with `rel_`, which no other module uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from mapper import (
    Column,
    ConfigurationError,
    Database,
    EntityMap,
    IntegrityError,
    ManyToMany,
    ManyToOne,
    OneToMany,
    OneToOne,
    Registry,
    RelationNotLoaded,
    StatementEvent,
    UnitOfWork,
    UnitOfWorkError,
    ValidationError,
)
from mapper import types as t
from mapper.criteria import Criterion
from tests.integration.conftest import fresh_schema
from tests.integration.helpers import StatementLog, statements

# -- the domain -----------------------------------------------------------------------------


@attrs.define
class Permission:
    code: str
    id: int | None = None


@attrs.define
class Role:
    name: str
    users: list[User] = attrs.Factory(list)
    permissions: list[Permission] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Tag:
    label: str
    articles: list[Article] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class User:
    name: str
    role: Role | None = None
    manager: User | None = None
    reports: list[User] = attrs.Factory(list)
    tags: list[Tag] = attrs.Factory(list)
    following: list[User] = attrs.Factory(list)
    followers: list[User] = attrs.Factory(list)
    version: int = 0
    id: int | None = None


@attrs.define
class Category:
    name: str
    parent: Category | None = None
    children: list[Category] = attrs.Factory(list)
    articles: list[Article] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Article:
    title: str
    category: Category | None = None
    tags: list[Tag] = attrs.Factory(list)
    comments: list[Comment] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Comment:
    body: str
    article: Article | None = None
    id: int | None = None


@attrs.define
class Person:
    name: str
    passport: Passport | None = None
    id: int | None = None


@attrs.define
class Passport:
    number: str
    person: Person | None = None
    id: int | None = None


registry = Registry()


@registry.map
class PermissionMap(EntityMap[Permission]):
    __table__ = "rel_permissions"
    id = Column(t.Integer(), primary_key=True, generated=True)
    code = Column(t.String(20), unique=True)


@registry.map
class RoleMap(EntityMap[Role]):
    __table__ = "rel_roles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20), unique=True)
    users = OneToMany(User, back="role", on_delete="set_null")
    permissions = ManyToMany(Permission, through="rel_role_permissions")


@registry.map
class TagMap(EntityMap[Tag]):
    __table__ = "rel_tags"
    id = Column(t.Integer(), primary_key=True, generated=True)
    label = Column(t.String(20), unique=True)
    articles = ManyToMany(Article, through="rel_article_tags")


@registry.map
class UserMap(EntityMap[User]):
    __table__ = "rel_users"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20), unique=True)
    version = Column(t.Integer(), version=True)
    role = ManyToOne(Role, column="role_id")
    manager = ManyToOne(User, column="manager_id")
    reports = OneToMany(User, back="manager", on_delete="set_null")
    tags = ManyToMany(Tag, through="rel_user_tags")
    following = ManyToMany(User, through="rel_follows", link_columns=("follower_id", "followed_id"))
    followers = ManyToMany(User, through="rel_follows", link_columns=("followed_id", "follower_id"))


@registry.map
class CategoryMap(EntityMap[Category]):
    __table__ = "rel_categories"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))
    parent = ManyToOne(Category, column="parent_id")
    children = OneToMany(Category, back="parent", on_delete="cascade")
    articles = OneToMany(Article, back="category", on_delete="restrict")


@registry.map
class ArticleMap(EntityMap[Article]):
    __table__ = "rel_articles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    title = Column(t.String(40))
    category = ManyToOne(Category, column="category_id")
    tags = ManyToMany(Tag, through="rel_article_tags")
    comments = OneToMany(Comment, back="article", on_delete="cascade")


@registry.map
class CommentMap(EntityMap[Comment]):
    __table__ = "rel_comments"
    id = Column(t.Integer(), primary_key=True, generated=True)
    body = Column(t.String(40))
    article = ManyToOne(Article, column="article_id", nullable=False)


@registry.map
class PersonMap(EntityMap[Person]):
    __table__ = "rel_people"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))
    passport = OneToOne(Passport, back="person", on_delete="cascade")


@registry.map
class PassportMap(EntityMap[Passport]):
    __table__ = "rel_passports"
    id = Column(t.Integer(), primary_key=True, generated=True)
    number = Column(t.String(20))
    person = OneToOne(Person, column="person_id")


@pytest.fixture
async def rdb(db: Database) -> Database:
    """The database under test with empty tables of this module's registry."""
    await fresh_schema(db, registry)
    return db


# -- helpers --------------------------------------------------------------------------------


def selects(log: StatementLog) -> int:
    return log.count("select")


def names(entities: list[Any]) -> list[str]:
    return sorted(getattr(e, "name", None) or getattr(e, "label", None) for e in entities)


async def link_rows(db: Database, relation: Any) -> set[tuple[str, str]]:
    """The links a many-to-many relation stores, as (owner name-or-title, target name-or-label)."""
    owner_meta = registry.meta_for_map(relation.owner)
    async with UnitOfWork(db, registry) as uow:
        owners = await uow.repository(owner_meta.entity).find(load=[relation])
        pairs = set()
        for owner in owners:
            for target in getattr(owner, relation.attribute):
                pairs.add((_label(owner), _label(target)))
    return pairs


def _label(entity: Any) -> str:
    for attribute in ("name", "label", "title", "code", "body", "number"):
        value = getattr(entity, attribute, None)
        if isinstance(value, str):
            return value
    raise AssertionError(entity)


async def seed_company(db: Database) -> dict[str, Any]:
    """Roles admin/staff/guest, users ann/bob/cat/dan, tags red/blue/green, permissions.

    ann: admin, tags red blue; bob: staff, tag red, managed by ann; cat: no role, no tags,
    managed by ann; dan: admin, tag green. admin may read and write, staff may read, guest
    has no users.
    """
    read, write = Permission("read"), Permission("write")
    admin = Role("admin", permissions=[read, write])
    staff = Role("staff", permissions=[read])
    guest = Role("guest")
    red, blue, green = Tag("red"), Tag("blue"), Tag("green")
    ann = User("ann", role=admin, tags=[red, blue])
    bob = User("bob", role=staff, manager=ann, tags=[red])
    cat = User("cat", manager=ann)
    dan = User("dan", role=admin, tags=[green])
    async with UnitOfWork(db, registry) as uow:
        uow.repository(Role).add_all([admin, staff, guest])
        uow.repository(User).add_all([ann, bob, cat, dan])
    return {
        e.name if hasattr(e, "name") else e.label: e
        for e in (admin, staff, guest, red, blue, green, ann, bob, cat, dan)
    }


async def seed_articles(db: Database) -> None:
    """Articles a (with comment c) and b (with none)."""
    async with UnitOfWork(db, registry) as uow:
        uow.repository(Article).add_all([Article("a", comments=[Comment("c")]), Article("b")])


async def articles_with_comments(uow: UnitOfWork) -> list[Article]:
    """Every article with its comments loaded, by title."""
    return await uow.repository(Article).find(load=[ArticleMap.comments], order_by=ArticleMap.title)


async def comments_by_article(db: Database) -> list[tuple[str, str]]:
    """Every stored comment as (body, its article's title), sorted."""
    async with UnitOfWork(db, registry) as uow:
        comments = await uow.repository(Comment).find(load=[CommentMap.article])
    return sorted((c.body, c.article.title) for c in comments)


@contextlib.asynccontextmanager
async def opened(db: Database) -> AsyncIterator[UnitOfWork]:
    """A unit of work closed (never committed) on leaving, whatever happened inside."""
    uow = UnitOfWork(db, registry)
    try:
        yield uow
    finally:
        await uow.close()


def fail_on(operation: str, table: str) -> Callable[[StatementEvent], None]:
    """A before-hook that fails the first statement of `operation` on `table`."""

    def hook(event: StatementEvent) -> None:
        if event.operation == operation and event.table == table:
            raise InjectedFault(f"{operation} on {table}")

    return hook


class InjectedFault(Exception):
    """Raised by a statement hook to fail a flush on purpose."""


# -- declaring ------------------------------------------------------------------------------


async def test_create_all_creates_the_link_tables(rdb: Database) -> None:
    """create_all creates every link table, and links can be written and read back."""
    async with UnitOfWork(rdb, registry) as uow:
        ann = User("ann", tags=[Tag("red")])
        bob = User("bob", following=[ann])
        role = Role("admin", permissions=[Permission("read")])
        article = Article("a", tags=[Tag("blue")])
        uow.repository(User).add_all([ann, bob])
        uow.repository(Role).add(role)
        uow.repository(Article).add(article)
    assert await link_rows(rdb, UserMap.tags) == {("ann", "red")}
    assert await link_rows(rdb, UserMap.following) == {("bob", "ann")}
    assert await link_rows(rdb, UserMap.followers) == {("ann", "bob")}
    assert await link_rows(rdb, RoleMap.permissions) == {("admin", "read")}
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "blue")}
    assert await link_rows(rdb, TagMap.articles) == {("blue", "a")}


# -- loading: query counts ------------------------------------------------------------------


async def test_a_hundred_users_load_with_their_roles_in_two_queries(rdb: Database) -> None:
    """find(load=[UserMap.role]) of 100 users over 5 roles runs 2 selects."""
    roles = [Role(f"r{i}") for i in range(5)]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(User).add_all(User(f"u{i:03d}", role=roles[i % 5]) for i in range(100))
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            users = await uow.repository(User).find(load=[UserMap.role], order_by=UserMap.name)
            assert [u.role.name for u in users] == [f"r{i % 5}" for i in range(100)]
    assert log.operations() == ["select", "select"]


async def test_fifty_articles_load_with_their_tags_in_two_queries(rdb: Database) -> None:
    """find(load=[ArticleMap.tags]) of 50 articles runs 2 selects (one join for all links)."""
    tags = [Tag(f"t{i}") for i in range(7)]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add_all(
            Article(f"a{i:02d}", tags=[tags[i % 7], tags[(i + 3) % 7]]) for i in range(50)
        )
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            articles = await uow.repository(Article).find(
                load=[ArticleMap.tags], order_by=ArticleMap.title
            )
            labels = [sorted(tag.label for tag in a.tags) for a in articles]
    assert log.operations() == ["select", "select"]
    assert labels == [sorted({f"t{i % 7}", f"t{(i + 3) % 7}"}) for i in range(50)]


async def test_ten_roles_load_with_their_users_in_two_queries(rdb: Database) -> None:
    """find(load=[RoleMap.users]) of 10 roles runs 2 selects, users grouped per role."""
    roles = [Role(f"r{i}") for i in range(10)]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(User).add_all(User(f"u{i:02d}", role=roles[i % 10]) for i in range(35))
        uow.repository(Role).add(Role("empty"))
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            found = await uow.repository(Role).find(load=[RoleMap.users], order_by=RoleMap.name)
            grouped = {r.name: sorted(u.name for u in r.users) for r in found}
    assert log.operations() == ["select", "select"]
    assert grouped["empty"] == []
    for i in range(10):
        assert grouped[f"r{i}"] == [f"u{j:02d}" for j in range(35) if j % 10 == i]


async def test_three_relations_of_one_query_load_in_four_queries(rdb: Database) -> None:
    """load=[role, tags, manager] on one find runs 4 selects in all."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            users = await uow.repository(User).find(
                UserMap.name.in_(["bob", "cat", "dan"]),
                load=[UserMap.role, UserMap.tags, UserMap.manager],
                order_by=UserMap.name,
            )
            seen = [
                (u.role and u.role.name, [x.label for x in u.tags], u.manager and u.manager.name)
                for u in users
            ]
    assert log.operations() == ["select"] * 4
    assert seen == [("staff", ["red"], "ann"), (None, [], "ann"), ("admin", ["green"], None)]


async def test_nested_paths_load_level_by_level(rdb: Database) -> None:
    """load=[(UserMap.role, RoleMap.permissions)] runs one select per level: 3 in all."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            users = await uow.repository(User).find(
                load=[UserMap.role, (UserMap.role, RoleMap.permissions)], order_by=UserMap.name
            )
            codes = {
                u.name: None if u.role is None else sorted(p.code for p in u.role.permissions)
                for u in users
            }
            # users were not asked for: the role's other collection stays unloaded
            with pytest.raises(RelationNotLoaded):
                len(users[0].role.users)
    assert log.operations() == ["select"] * 3
    assert codes == {
        "ann": ["read", "write"],
        "bob": ["read"],
        "cat": None,
        "dan": ["read", "write"],
    }


async def test_a_nested_path_through_a_collection_loads_in_one_query_per_level(
    rdb: Database,
) -> None:
    """load=[(RoleMap.users, UserMap.tags)] reads roles, users and tags: 3 selects."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            roles = await uow.repository(Role).find(
                load=[(RoleMap.users, UserMap.tags)], order_by=RoleMap.name
            )
            seen = {
                r.name: {u.name: sorted(x.label for x in u.tags) for u in r.users} for r in roles
            }
    assert log.operations() == ["select"] * 3
    assert seen == {
        "admin": {"ann": ["blue", "red"], "dan": ["green"]},
        "guest": {},
        "staff": {"bob": ["red"]},
    }


async def test_loading_costs_one_query_whatever_the_number_of_parents(rdb: Database) -> None:
    """Loading roles of 1 user and of 300 users runs the same number of selects."""
    roles = [Role(f"r{i}") for i in range(30)]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(User).add_all(User(f"u{i:03d}", role=roles[i % 30]) for i in range(300))
    counts = []
    for limit in (1, 300):
        with statements(rdb) as log:
            async with UnitOfWork(rdb, registry) as uow:
                found = await uow.repository(User).find(limit=limit, load=[UserMap.role])
                assert len(found) == limit and all(u.role is not None for u in found)
        counts.append(selects(log))
    assert counts == [2, 2]


async def test_relations_already_loaded_or_held_cost_no_query(rdb: Database) -> None:
    """uow.load of a loaded relation, or of targets all held, runs no select."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        roles = await uow.repository(Role).find()
        users = await uow.repository(User).find(UserMap.role.is_not_null())
        with statements(rdb) as log:
            await uow.load(users, UserMap.role)  # every role is held already
            await uow.load(roles, RoleMap.users)
            await uow.load(roles, RoleMap.users)  # loaded: nothing to do
        assert {u.role.name for u in users} == {"admin", "staff"}
        assert log.operations() == ["select"]


# -- loading: identity ----------------------------------------------------------------------


async def test_users_of_one_role_share_one_role_object(rdb: Database) -> None:
    """Every user pointing at a role holds the same object, and get() of it runs no query."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        users = await uow.repository(User).find(
            UserMap.role.is_not_null(), load=[UserMap.role], order_by=UserMap.name
        )
        ann, _bob, dan = users
        assert ann.role is dan.role
        with statements(rdb) as log:
            again = await uow.repository(Role).get(ann.role.id)
        assert again is ann.role
        assert log.count() == 0


async def test_tags_shared_by_articles_are_one_object(rdb: Database) -> None:
    """A tag linked to several articles (and loaded from both sides) is one object."""
    shared = Tag("shared")
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add_all([Article("a", tags=[shared]), Article("b", tags=[shared])])
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await uow.repository(Article).find(load=[ArticleMap.tags], order_by=ArticleMap.title)
        assert a.tags[0] is b.tags[0]
        (tag,) = await uow.repository(Tag).find(load=[TagMap.articles])
        assert tag is a.tags[0]
        assert {id(x) for x in tag.articles} == {id(a), id(b)}


async def test_a_held_entity_is_not_replaced_by_a_loaded_copy(rdb: Database) -> None:
    """A role held with a change keeps its object and its value when users load it."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        admin = await uow.repository(Role).first(RoleMap.name == "admin")
        assert admin is not None
        admin.name = "root"
        users = await uow.repository(User).find(UserMap.name == "ann", load=[UserMap.role])
        assert users[0].role is admin
        assert admin.name == "root"
        roles = await uow.repository(Role).find(RoleMap.name == "root", load=[RoleMap.users])
        assert roles == [admin]
        assert users[0] in admin.users


async def test_loaded_children_are_the_held_objects_with_their_back_reference(
    rdb: Database,
) -> None:
    """Loading role.users yields held users, and fills their role without another query."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        assert ann is not None
        ann.name = "anna"
        (admin,) = await uow.repository(Role).find(RoleMap.name == "admin", load=[RoleMap.users])
        assert any(u is ann for u in admin.users)
        assert ann.name == "anna"
        with statements(rdb) as log:
            assert all(u.role is admin for u in admin.users)
        assert log.count() == 0


# -- placeholders ---------------------------------------------------------------------------


async def test_unloaded_relations_hold_placeholders_that_refuse_use(rdb: Database) -> None:
    """An unloaded relation raises RelationNotLoaded naming the load= that fixes it."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        assert ann is not None
        with statements(rdb) as log:
            with pytest.raises(RelationNotLoaded, match=r"load=\[UserMap\.role\]"):
                _ = ann.role.name
            with pytest.raises(RelationNotLoaded, match=r"load=\[UserMap\.tags\]"):
                list(ann.tags)
            with pytest.raises(RelationNotLoaded, match=r"User\.reports"):
                len(ann.reports)
            with pytest.raises(RelationNotLoaded):
                ann.tags.append(Tag("new"))
            with pytest.raises(RelationNotLoaded):
                bool(ann.role)
            assert "not loaded" in repr(ann.role)
            assert "not loaded" in repr(ann)
        assert log.count() == 0  # no attribute access ever queries


async def test_a_null_foreign_key_loads_as_none_not_a_placeholder(rdb: Database) -> None:
    """A user with no role holds None for it without load=; its collections are placeholders."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        cat = await uow.repository(User).first(UserMap.name == "cat")
        assert cat is not None
        assert cat.role is None
        with pytest.raises(RelationNotLoaded):
            list(cat.tags)


async def test_untouched_placeholders_write_nothing(rdb: Database) -> None:
    """Loading entities with unloaded relations and committing runs no write at all."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            await uow.repository(User).find()
            await uow.repository(Role).find()
            await uow.repository(Tag).find()
            assert uow.plan() == []
    assert log.operations() == ["select"] * 3


async def test_changing_a_column_leaves_unloaded_relations_stored(rdb: Database) -> None:
    """A rename of a user with unloaded role and tags writes one update and keeps both."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            ann = await uow.repository(User).first(UserMap.name == "ann")
            assert ann is not None
            ann.name = "anna"
    assert log.writes() == 1 and log.count("update") == 1
    async with UnitOfWork(rdb, registry) as uow:
        anna = await uow.repository(User).first(
            UserMap.name == "anna", load=[UserMap.role, UserMap.tags]
        )
        assert anna is not None and anna.role is not None
        assert anna.role.name == "admin"
        assert sorted(x.label for x in anna.tags) == ["blue", "red"]


# -- loading: every entry point -------------------------------------------------------------


async def test_get_loads_relations(rdb: Database) -> None:
    """get(key, load=...) fills the relations, also for an entity already held."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).get(seeded["ann"].id, load=[UserMap.role, UserMap.tags])
        assert ann.role.name == "admin"
        assert sorted(x.label for x in ann.tags) == ["blue", "red"]
        held = await uow.repository(User).get(seeded["ann"].id, load=[UserMap.reports])
        assert held is ann
        assert sorted(u.name for u in ann.reports) == ["bob", "cat"]


async def test_get_many_loads_relations(rdb: Database) -> None:
    """get_many(keys, load=...) fills the relations of every entity found, in 2 queries."""
    seeded = await seed_company(rdb)
    keys = [seeded[name].id for name in ("dan", "bob", "cat")]
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            found = await uow.repository(User).get_many(keys, load=[UserMap.role])
            roles = [u.name + ":" + (u.role.name if u.role else "-") for u in found]
    assert roles == ["dan:admin", "bob:staff", "cat:-"]
    assert log.operations() == ["select", "select"]


async def test_first_loads_relations(rdb: Database) -> None:
    """first(load=...) fills the relations of the entity it returns."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        bob = await uow.repository(User).first(
            UserMap.name == "bob", load=[UserMap.manager, (UserMap.role, RoleMap.permissions)]
        )
        assert bob is not None
        assert bob.manager is not None and bob.manager.name == "ann"
        assert [p.code for p in bob.role.permissions] == ["read"]


async def test_an_empty_result_runs_no_relation_query(rdb: Database) -> None:
    """find or first that match nothing run one select whatever load= asks for."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            users = uow.repository(User)
            assert (
                await users.find(UserMap.name == "nobody", load=[UserMap.role, UserMap.tags]) == []
            )
            assert await users.first(UserMap.name == "nobody", load=[UserMap.reports]) is None
    assert log.operations() == ["select", "select"]


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        pytest.param(
            UserMap.role,
            lambda u: u.role and u.role.name,
            id="many_to_one",
        ),
        pytest.param(
            UserMap.reports,
            lambda u: sorted(x.name for x in u.reports),
            id="one_to_many",
        ),
        pytest.param(
            UserMap.tags,
            lambda u: sorted(x.label for x in u.tags),
            id="many_to_many",
        ),
    ],
)
async def test_stream_loads_relations(
    rdb: Database, relation: Any, expected: Callable[[User], Any]
) -> None:
    """stream(load=...) fills the relation of every entity it yields, chunk by chunk."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        want = {u.name: expected(u) for u in await uow.repository(User).find(load=[relation])}
    async with UnitOfWork(rdb, registry) as uow:
        got = {
            u.name: expected(u)
            async for u in uow.repository(User).stream(
                order_by=UserMap.name, chunk_size=2, load=[relation]
            )
        }
    assert got == want


async def test_uow_load_fills_entities_in_hand(rdb: Database) -> None:
    """await uow.load(entities, ...) fills relations and paths in one query per level."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        users = await uow.repository(User).find(order_by=UserMap.name)
        with statements(rdb) as log:
            await uow.load(users, UserMap.tags, (UserMap.role, RoleMap.permissions))
        assert log.operations() == ["select"] * 3
        assert [sorted(x.label for x in u.tags) for u in users] == [
            ["blue", "red"],
            ["red"],
            [],
            ["green"],
        ]
        assert [p.code for p in users[1].role.permissions] == ["read"]


async def test_uow_load_refuses_another_mappings_relation(rdb: Database) -> None:
    """uow.load(users, RoleMap.users) raises ConfigurationError naming it, with no select."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        users = await uow.repository(User).find()
        with statements(rdb) as log:
            with pytest.raises(ConfigurationError, match=r"RoleMap\.users"):
                await uow.load(users, RoleMap.users)
        assert selects(log) == 0


async def test_find_refuses_a_bad_load_before_any_select(rdb: Database) -> None:
    """find(load=[a column]) or load= of another mapping's relation fails before querying."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        with statements(rdb) as log:
            with pytest.raises(TypeError, match="load="):
                await uow.repository(User).find(load=[UserMap.name])
            with pytest.raises(ConfigurationError, match=r"RoleMap\.users"):
                await uow.repository(User).find(load=[RoleMap.users])
        assert selects(log) == 0


# -- criteria across relations --------------------------------------------------------------

Crit = Callable[[dict[str, Any]], Criterion]

USER_CRITERIA: list[Any] = [
    pytest.param(lambda s: UserMap.role.has(RoleMap.name == "admin"), ["ann", "dan"], id="has"),
    pytest.param(lambda s: ~UserMap.role.has(RoleMap.name == "admin"), ["bob"], id="not_has"),
    pytest.param(lambda s: UserMap.role.has(), ["ann", "bob", "dan"], id="has_any_role"),
    pytest.param(lambda s: ~UserMap.role.has(), [], id="not_has_any_role"),
    pytest.param(lambda s: UserMap.role == s["admin"], ["ann", "dan"], id="eq_entity"),
    pytest.param(lambda s: UserMap.role != s["admin"], ["bob"], id="ne_entity"),
    pytest.param(lambda s: ~(UserMap.role == s["admin"]), ["bob"], id="not_eq_entity"),
    pytest.param(lambda s: UserMap.role == None, ["cat"], id="eq_none"),  # noqa: E711
    pytest.param(lambda s: UserMap.role != None, ["ann", "bob", "dan"], id="ne_none"),  # noqa: E711
    pytest.param(lambda s: UserMap.role.is_null(), ["cat"], id="is_null"),
    pytest.param(lambda s: UserMap.role.is_not_null(), ["ann", "bob", "dan"], id="is_not_null"),
    pytest.param(lambda s: ~UserMap.role.is_null(), ["ann", "bob", "dan"], id="not_is_null"),
    pytest.param(
        lambda s: (UserMap.role == s["staff"]) | UserMap.role.is_null(),
        ["bob", "cat"],
        id="or_is_null",
    ),
    pytest.param(
        lambda s: UserMap.role.has(RoleMap.name.in_(["staff", "guest"])) & (UserMap.name > "a"),
        ["bob"],
        id="has_and_column",
    ),
    pytest.param(
        lambda s: UserMap.role.has(RoleMap.permissions.any(PermissionMap.code == "write")),
        ["ann", "dan"],
        id="nested_has_any",
    ),
    pytest.param(lambda s: UserMap.tags.any(TagMap.label == "red"), ["ann", "bob"], id="any"),
    pytest.param(lambda s: ~UserMap.tags.any(TagMap.label == "red"), ["cat", "dan"], id="not_any"),
    pytest.param(lambda s: UserMap.tags.any(), ["ann", "bob", "dan"], id="any_at_all"),
    pytest.param(lambda s: ~UserMap.tags.any(), ["cat"], id="none_at_all"),
    pytest.param(
        lambda s: UserMap.tags.any((TagMap.label == "green") | (TagMap.label == "blue")),
        ["ann", "dan"],
        id="any_or",
    ),
    pytest.param(
        lambda s: ~UserMap.tags.any((TagMap.label == "green") | (TagMap.label == "blue")),
        ["bob", "cat"],
        id="not_any_or",
    ),
    pytest.param(lambda s: UserMap.manager.has(UserMap.name == "ann"), ["bob", "cat"], id="self"),
    pytest.param(lambda s: ~UserMap.manager.has(UserMap.name == "ann"), [], id="not_self"),
    pytest.param(lambda s: UserMap.reports.any(), ["ann"], id="self_any"),
    pytest.param(
        lambda s: UserMap.reports.any(UserMap.role.is_null()), ["ann"], id="self_any_nested"
    ),
]

ROLE_CRITERIA: list[Any] = [
    pytest.param(lambda s: RoleMap.users.any(), ["admin", "staff"], id="any"),
    pytest.param(lambda s: ~RoleMap.users.any(), ["guest"], id="not_any"),
    pytest.param(lambda s: RoleMap.users.any(UserMap.name == "bob"), ["staff"], id="any_where"),
    pytest.param(
        lambda s: ~RoleMap.users.any(UserMap.name.in_(["bob", "cat"])),
        ["admin", "guest"],
        id="not_any_in",
    ),
    pytest.param(
        lambda s: RoleMap.users.any((UserMap.name == "cat") | (UserMap.name == "bob")),
        ["staff"],
        id="any_or",
    ),
    pytest.param(
        # cat has no role: a user without one must not make every role "unknown"
        lambda s: ~RoleMap.users.any((UserMap.name == "cat") | (UserMap.name == "bob")),
        ["admin", "guest"],
        id="not_any_or",
    ),
    pytest.param(
        lambda s: RoleMap.users.any(UserMap.tags.any(TagMap.label == "green")),
        ["admin"],
        id="nested_any",
    ),
    pytest.param(
        lambda s: (
            RoleMap.permissions.any() & ~RoleMap.permissions.any(PermissionMap.code == "write")
        ),
        ["staff"],
        id="many_to_many",
    ),
]


@pytest.mark.parametrize(("criterion", "expected"), USER_CRITERIA)
async def test_users_filter_across_relations(
    rdb: Database, criterion: Crit, expected: list[str]
) -> None:
    """find, count and exists with a criterion across a relation agree on every backend."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        users = uow.repository(User)
        where = criterion(seeded)
        assert names(await users.find(where)) == expected
        assert await users.count(where) == len(expected)
        assert await users.exists(where) is bool(expected)


@pytest.mark.parametrize(("criterion", "expected"), ROLE_CRITERIA)
async def test_roles_filter_across_collections(
    rdb: Database, criterion: Crit, expected: list[str]
) -> None:
    """Criteria on one-to-many and many-to-many collections agree on every backend."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        roles = uow.repository(Role)
        where = criterion(seeded)
        assert names(await roles.find(where)) == expected
        assert await roles.count(where) == len(expected)


async def test_criteria_across_relations_see_unflushed_changes(rdb: Database) -> None:
    """A relation criterion autoflushes first, so it sees a role assigned in this unit of work."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        cat = await uow.repository(User).first(UserMap.name == "cat")
        staff = await uow.repository(Role).get(seeded["staff"].id)
        assert cat is not None
        cat.role = staff
        found = await uow.repository(User).find(UserMap.role.has(RoleMap.name == "staff"))
        assert names(found) == ["bob", "cat"]


async def test_comparing_with_an_entity_without_a_key_is_refused(rdb: Database) -> None:
    """UserMap.role == a role that has no key, or == a tag, raises ValidationError, no SQL."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        with statements(rdb) as log:
            with pytest.raises(ValidationError, match="no key yet"):
                await uow.repository(User).find(UserMap.role == Role("unsaved"))
            with pytest.raises(ValidationError, match="expected a Role"):
                await uow.repository(User).find(UserMap.role == Tag("red"))
        assert log.count() == 0


async def test_a_criterion_of_the_wrong_mapping_inside_has_is_refused(rdb: Database) -> None:
    """UserMap.role.has(TagMap.label == ...) raises ConfigurationError on every backend."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        with pytest.raises(ConfigurationError, match="TagMap"):
            await uow.repository(User).find(UserMap.role.has(TagMap.label == "red"))


# -- writing: cascade on add and foreign keys -----------------------------------------------


async def test_adding_an_entity_adds_what_it_reaches(rdb: Database) -> None:
    """Adding a user inserts its new role, permissions, manager and tags, keys propagated."""
    boss = User("boss", role=Role("chief"))
    ann = User(
        "ann",
        role=Role("admin", permissions=[Permission("read")]),
        manager=boss,
        tags=[Tag("red"), Tag("blue")],
    )
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            uow.repository(User).add(ann)
    # permissions, roles, tags, users, and the two link tables: one insert each
    assert log.by_operation()["insert"] == 6
    assert None not in (ann.id, boss.id, ann.role.id, ann.tags[0].id, ann.tags[1].id)
    async with UnitOfWork(rdb, registry) as uow:
        stored = await uow.repository(User).get(
            ann.id, load=[UserMap.manager, (UserMap.role, RoleMap.permissions), UserMap.tags]
        )
        assert stored.manager.id == boss.id
        assert stored.role.id == ann.role.id
        assert [p.code for p in stored.role.permissions] == ["read"]
        assert sorted(x.label for x in stored.tags) == ["blue", "red"]
        assert await uow.repository(Role).count() == 2


async def test_adding_a_parent_adds_its_new_children_with_their_key(rdb: Database) -> None:
    """Adding a role with new users inserts them pointing at it, back references set."""
    role = Role("admin", users=[User("ann"), User("bob")])
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Role).add(role)
    assert all(u.role is role for u in role.users)
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role.has(RoleMap.name == "admin"))
        assert names(found) == ["ann", "bob"]


async def test_assigning_a_new_target_sets_the_key_it_gets(rdb: Database) -> None:
    """Pointing a loaded user at a new role inserts the role and updates the key at flush."""
    await seed_company(rdb)
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            cat = await uow.repository(User).first(UserMap.name == "cat")
            assert cat is not None
            fresh = Role("fresh")
            cat.role = fresh
    assert (log.count("insert"), log.count("update")) == (1, 1)
    assert fresh.id is not None
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.role == fresh)) == ["cat"]


async def test_reassigning_and_clearing_a_reference_writes_the_key(rdb: Database) -> None:
    """Setting a loaded user's role to another role or to None updates role_id."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann, bob = await uow.repository(User).find(
            UserMap.name.in_(["ann", "bob"]), order_by=UserMap.name
        )
        staff = await uow.repository(Role).get(seeded["staff"].id)
        ann.role = staff
        bob.role = None
    async with UnitOfWork(rdb, registry) as uow:
        users = uow.repository(User)
        assert names(await users.find(UserMap.role == seeded["staff"])) == ["ann"]
        assert names(await users.find(UserMap.role.is_null())) == ["bob", "cat"]


async def test_a_stored_target_from_another_unit_of_work_is_not_inserted_again(
    rdb: Database,
) -> None:
    """A new user pointing at a role from an earlier unit of work inserts only the user."""
    seeded = await seed_company(rdb)
    staff = seeded["staff"]
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            uow.repository(User).add(User("eve", role=staff))
    assert log.count("insert") == 1
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.role == staff)) == ["bob", "eve"]


async def _assign_role(db: Database, value: Any) -> tuple[ValidationError | None, int]:
    """Assign `value` to cat's role and flush: the ValidationError raised, and writes sent."""
    async with opened(db) as uow:
        cat = await uow.repository(User).first(UserMap.name == "cat")
        assert cat is not None
        cat.role = value
        with statements(db) as log:
            try:
                await uow.flush()
            except ValidationError as error:
                return error, log.writes()
        return None, log.writes()


async def test_an_entity_of_another_kind_in_a_reference_is_refused(rdb: Database) -> None:
    """A tag assigned to user.role raises ValidationError naming User.role, before any write."""
    await seed_company(rdb)
    error, writes = await _assign_role(rdb, Tag("x"))
    assert error is not None and writes == 0
    (violation,) = error.violations
    assert (violation.entity, violation.attribute) == ("User", "role")


async def test_the_refusal_of_a_wrong_reference_says_a_role_is_expected(rdb: Database) -> None:
    """The violation for a tag in user.role says a Role is expected (not the key's type)."""
    await seed_company(rdb)
    error, _ = await _assign_role(rdb, Tag("x"))
    assert error is not None
    (violation,) = error.violations
    assert "Role" in violation.rule


async def test_a_bare_key_in_a_reference_is_refused(rdb: Database) -> None:
    """An int assigned to user.role (a key, not a Role) raises ValidationError, no write."""
    seeded = await seed_company(rdb)
    error, writes = await _assign_role(rdb, seeded["staff"].id)
    assert error is not None and writes == 0
    (violation,) = error.violations
    assert (violation.entity, violation.attribute) == ("User", "role")


async def test_flushing_twice_writes_links_once(rdb: Database) -> None:
    """A second flush writes nothing; a tag appended after the first flush is linked then."""
    article = Article("a", tags=[Tag("t")])
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            uow.repository(Article).add(article)
            await uow.flush()
            log.clear()
            await uow.flush()
            assert log.count() == 0
            article.tags.append(Tag("u"))
            await uow.flush()
            assert [(e.operation, e.table) for e in log.events] == [
                ("insert", "rel_tags"),
                ("insert", "rel_article_tags"),
            ]
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "t"), ("a", "u")}


async def test_assigning_the_back_side_of_a_one_to_one_sets_the_owning_key(
    rdb: Database,
) -> None:
    """person.passport = Passport(...) stores the passport pointing at the person."""
    ann = Person("ann")
    ann.passport = Passport("X1")
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Person).add(ann)
    async with UnitOfWork(rdb, registry) as uow:
        (passport,) = await uow.repository(Passport).find(load=[PassportMap.person])
        assert passport.person is not None and passport.person.name == "ann"


# -- writing: one-to-many collections -------------------------------------------------------


async def test_appending_to_a_collection_sets_the_childs_key(rdb: Database) -> None:
    """Appending a new and a moved user to role.users points both at the role."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        (staff,) = await uow.repository(Role).find(RoleMap.name == "staff", load=[RoleMap.users])
        dan = await uow.repository(User).first(UserMap.name == "dan")
        assert dan is not None
        eve = User("eve")
        staff.users.extend([eve, dan])
        await uow.flush()
        assert eve.role is staff and dan.role is staff
        assert eve.id is not None
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role == seeded["staff"])
        assert names(found) == ["bob", "dan", "eve"]


async def test_removing_from_a_set_null_collection_clears_the_key(rdb: Database) -> None:
    """Removing a user from role.users (set_null) keeps the user with no role."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        (admin,) = await uow.repository(Role).find(RoleMap.name == "admin", load=[RoleMap.users])
        ann = next(u for u in admin.users if u.name == "ann")
        admin.users.remove(ann)
        await uow.flush()
        assert ann.role is None
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.role.is_null())) == ["ann", "cat"]
        assert await uow.repository(User).count() == 4


async def test_removing_from_a_cascade_collection_deletes_the_child(rdb: Database) -> None:
    """Removing a comment from article.comments (cascade) deletes it."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a", comments=[Comment("one"), Comment("two")]))
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            (article,) = await uow.repository(Article).find(load=[ArticleMap.comments])
            article.comments.remove(next(c for c in article.comments if c.body == "one"))
    assert log.count("delete") == 1 and log.count("update") == 0
    async with UnitOfWork(rdb, registry) as uow:
        assert [c.body for c in await uow.repository(Comment).find()] == ["two"]


async def test_a_child_moved_between_collections_is_kept(rdb: Database) -> None:
    """Moving a comment from one article's cascade collection to another's updates it."""
    await seed_articles(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await articles_with_comments(uow)
        comment = a.comments.pop()
        b.comments.append(comment)
    async with UnitOfWork(rdb, registry) as uow:
        (comment,) = await uow.repository(Comment).find(load=[CommentMap.article])
        assert comment.article.title == "b"


# -- writing: many-to-many ------------------------------------------------------------------


async def test_many_to_many_changes_are_one_insert_and_one_delete(rdb: Database) -> None:
    """Two links added and two removed write one link insert and one link delete."""
    tags = [Tag(f"t{i}") for i in range(4)]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a", tags=tags[:3]))
        uow.repository(Tag).add(tags[3])
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            (article,) = await uow.repository(Article).find(load=[ArticleMap.tags])
            (t3,) = await uow.repository(Tag).find(TagMap.label == "t3")
            article.tags = [tag for tag in article.tags if tag.label == "t2"]
            article.tags += [t3, Tag("t4")]
    link = [e for e in log.events if e.table == "rel_article_tags"]
    assert [e.operation for e in link if e.operation != "lock"] == ["select", "insert", "delete"]
    assert log.count("insert") == 2  # the new tag, then the links
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "t2"), ("a", "t3"), ("a", "t4")}


async def test_a_collection_replaced_without_loading_is_compared_with_the_stored_one(
    rdb: Database,
) -> None:
    """Assigning a list over an unloaded collection links and unlinks by the stored links."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        green = await uow.repository(Tag).first(TagMap.label == "green")
        red = await uow.repository(Tag).first(TagMap.label == "red")
        assert ann is not None
        ann.tags = [red, green]
    assert await link_rows(rdb, UserMap.tags) == {
        ("ann", "red"),
        ("ann", "green"),
        ("bob", "red"),
        ("dan", "green"),
    }


async def test_the_same_link_added_from_both_sides_is_written_once(rdb: Database) -> None:
    """Appending a tag to article.tags and the article to tag.articles stores one link."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a"))
        uow.repository(Tag).add(Tag("t"))
    async with UnitOfWork(rdb, registry) as uow:
        (article,) = await uow.repository(Article).find(load=[ArticleMap.tags])
        (tag,) = await uow.repository(Tag).find(load=[TagMap.articles])
        article.tags.append(tag)
        tag.articles.append(article)
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "t")}


async def test_unlinking_and_removing_a_target_in_one_flush_deletes_the_link_once(
    rdb: Database,
) -> None:
    """Removing a tag from article.tags and removing the tag in one flush succeeds everywhere."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a", tags=[Tag("t"), Tag("u")]))
    async with UnitOfWork(rdb, registry) as uow:
        (article,) = await uow.repository(Article).find(load=[ArticleMap.tags])
        doomed = next(tag for tag in article.tags if tag.label == "t")
        article.tags.remove(doomed)
        uow.repository(Tag).remove(doomed)
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "u")}
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(Tag).find()) == ["u"]


async def test_self_referential_many_to_many_works_from_both_sides(rdb: Database) -> None:
    """following and followers share one link table, each seeing the other's links."""
    ann, bob, cat = User("ann"), User("bob"), User("cat")
    ann.following = [bob, cat]
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(User).add_all([ann, bob, cat])
    async with UnitOfWork(rdb, registry) as uow:
        users = await uow.repository(User).find(
            load=[UserMap.following, UserMap.followers], order_by=UserMap.name
        )
        seen = {u.name: (names(u.following), names(u.followers)) for u in users}
        users[2].following.append(users[1])  # cat follows bob
    assert seen == {"ann": (["bob", "cat"], []), "bob": ([], ["ann"]), "cat": ([], ["ann"])}
    assert await link_rows(rdb, UserMap.followers) == {
        ("bob", "ann"),
        ("bob", "cat"),
        ("cat", "ann"),
    }


# -- delete rules ---------------------------------------------------------------------------


async def test_cascade_deletes_unloaded_children(rdb: Database) -> None:
    """Removing an article whose comments are not loaded deletes the comments first."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add_all(
            [Article("a", comments=[Comment("1"), Comment("2")]), Article("b")]
        )
    async with UnitOfWork(rdb, registry) as uow:
        (a,) = await uow.repository(Article).find(ArticleMap.title == "a")
        uow.repository(Article).remove(a)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Comment).count() == 0
        assert [x.title for x in await uow.repository(Article).find()] == ["b"]


async def test_cascade_follows_the_tree_and_removes_links(rdb: Database) -> None:
    """Removing a root category deletes its whole subtree, whatever was loaded."""
    root = Category("root", children=[Category("a", children=[Category("a1")]), Category("b")])
    other = Category("other")
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add_all([root, other])
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(Category).first(CategoryMap.name == "root")
        assert found is not None
        uow.repository(Category).remove(found)
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(Category).find()) == ["other"]


async def test_set_null_clears_the_key_of_unloaded_and_loaded_children(rdb: Database) -> None:
    """Removing a role sets its users' role to None, in the database and on held users."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann", load=[UserMap.role])
        assert ann is not None
        uow.repository(Role).remove(ann.role)
        await uow.flush()
        assert ann.role is None
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.role.is_null())) == [
            "ann",
            "cat",
            "dan",
        ]
        assert names(await uow.repository(Role).find()) == ["guest", "staff"]


async def test_set_null_on_a_child_changed_before_the_flush_writes_both(rdb: Database) -> None:
    """A held user renamed, whose role is then removed (set null): the flush writes the new
    name and the cleared role together, though the rule wrote the role after the change scan
    had read the user."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann", load=[UserMap.role])
        assert ann is not None
        ann.name = "anne"
        uow.repository(Role).remove(ann.role)
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.role.is_null())) == [
            "anne",
            "cat",
            "dan",
        ]


async def test_restrict_refuses_to_delete_a_parent_with_children(rdb: Database) -> None:
    """Removing a category with articles raises IntegrityError naming Category everywhere."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a", category=Category("news")))
    with pytest.raises(IntegrityError) as raised:
        async with UnitOfWork(rdb, registry) as uow:
            news = await uow.repository(Category).first(CategoryMap.name == "news")
            assert news is not None
            uow.repository(Category).remove(news)
    error = raised.value
    assert (error.entity, error.table) == ("Category", "rel_categories")
    assert str(error).startswith("Category")
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Category).count() == 1
        assert await uow.repository(Article).count() == 1


async def test_restrict_allows_deleting_a_parent_without_children(rdb: Database) -> None:
    """A category with no articles is deleted under the restrict rule."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add(Category("empty"))
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(Category).first()
        assert found is not None
        uow.repository(Category).remove(found)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Category).count() == 0


async def test_cascade_into_a_restricted_child_is_refused(rdb: Database) -> None:
    """Removing a root whose descendant has articles raises IntegrityError; the tree stays."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(
            Article("a", category=Category("leaf", parent=Category("root")))
        )
    with pytest.raises(IntegrityError):
        async with UnitOfWork(rdb, registry) as uow:
            root = await uow.repository(Category).first(CategoryMap.name == "root")
            assert root is not None
            uow.repository(Category).remove(root)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Category).count() == 2


async def test_removing_an_entity_removes_its_links_on_both_sides(rdb: Database) -> None:
    """Removing a user (tags unloaded) or a tag deletes their link rows, not the others."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("a", tags=[Tag("solo"), Tag("kept")]))
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        solo = await uow.repository(Tag).first(TagMap.label == "solo")
        assert ann is not None and solo is not None
        uow.repository(User).remove(ann)
        uow.repository(Tag).remove(solo)
    assert await link_rows(rdb, UserMap.tags) == {("bob", "red"), ("dan", "green")}
    assert await link_rows(rdb, ArticleMap.tags) == {("a", "kept")}


async def test_set_null_on_a_self_reference_keeps_the_reports(rdb: Database) -> None:
    """Removing a manager (reports unloaded) clears the manager of each report."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        assert ann is not None
        uow.repository(User).remove(ann)
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(User).find(UserMap.manager.is_null())) == [
            "bob",
            "cat",
            "dan",
        ]


async def test_set_null_leaves_a_child_moved_to_another_parent(rdb: Database) -> None:
    """Removing a role keeps the new role of a user moved away from it in the same flush."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann")
        staff = await uow.repository(Role).get(seeded["staff"].id)
        admin = await uow.repository(Role).get(seeded["admin"].id)
        assert ann is not None
        ann.role = staff
        uow.repository(Role).remove(admin)
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role == seeded["staff"])
        assert names(found) == ["ann", "bob"]


async def test_cascade_spares_a_child_moved_to_another_parent(rdb: Database) -> None:
    """Removing an article keeps a comment moved to another article in the same flush."""
    await seed_articles(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await uow.repository(Article).find(order_by=ArticleMap.title)
        comment = await uow.repository(Comment).first()
        assert comment is not None
        comment.article = b
        uow.repository(Article).remove(a)
    assert await comments_by_article(rdb) == [("c", "b")]


async def test_set_null_reaches_a_new_child_moved_into_the_removed_parent(
    rdb: Database,
) -> None:
    """A new user moved by collections into a removed set-null role's users loses the role."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        staff, admin = [
            await uow.repository(Role).get(seeded[name].id, load=[RoleMap.users])
            for name in ("staff", "admin")
        ]
        fay = User("fay", role=staff)
        staff.users.append(fay)
        uow.repository(User).add(fay)
        # Moved through the two collections only: the reference still says staff.
        staff.users.remove(fay)
        admin.users.append(fay)
        uow.repository(Role).remove(admin)
        await uow.flush()
        assert fay.role is None and fay not in staff.users
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role.is_null())
        assert names(found) == ["ann", "cat", "dan", "fay"]


async def test_cascade_reaches_a_child_moved_into_the_removed_parent(rdb: Database) -> None:
    """A comment moved by collections into a removed article's comments is deleted with it."""
    await seed_articles(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await articles_with_comments(uow)
        kept, moved = Comment("kept"), Comment("moved")
        a.comments.extend([kept, moved])
        uow.repository(Comment).add_all([kept, moved])
        a.comments.remove(moved)
        b.comments.append(moved)
        uow.repository(Article).remove(b)
    assert await comments_by_article(rdb) == [("c", "a"), ("kept", "a")]


async def test_a_stored_child_a_live_parent_keeps_is_spared_by_a_removed_one(
    rdb: Database,
) -> None:
    """A comment left in a's comments and also appended to removed b's stays under a."""
    await seed_articles(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await articles_with_comments(uow)
        b.comments.append(a.comments[0])
        uow.repository(Article).remove(b)
    assert await comments_by_article(rdb) == [("c", "a")]


@pytest.mark.parametrize("live_first", [True, False], ids=["live_first", "removed_first"])
async def test_a_new_child_in_a_live_and_a_removed_parent_goes_in_under_the_live_one(
    rdb: Database, live_first: bool
) -> None:
    """A new comment referring to a, in both a's and removed b's comments, is inserted
    under a, whichever collection got it first."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add_all([Article("a"), Article("b")])
    async with UnitOfWork(rdb, registry) as uow:
        a, b = await articles_with_comments(uow)
        comment = Comment("both", article=a)
        for article in (a, b) if live_first else (b, a):
            article.comments.append(comment)
        uow.repository(Comment).add(comment)
        uow.repository(Article).remove(b)
        await uow.flush()
        assert comment.article is a and comment.id is not None
    assert await comments_by_article(rdb) == [("both", "a")]


async def test_set_null_spares_a_child_a_live_parent_keeps(rdb: Database) -> None:
    """bob, left in staff's users and also appended to removed admin's, keeps staff."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        staff, admin = [
            await uow.repository(Role).get(seeded[name].id, load=[RoleMap.users])
            for name in ("staff", "admin")
        ]
        admin.users.append(next(u for u in staff.users if u.name == "bob"))
        uow.repository(Role).remove(admin)
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role == seeded["staff"])
        assert names(found) == ["bob"]


async def test_a_one_to_one_child_its_live_owner_keeps_is_spared_by_a_removed_one(
    rdb: Database,
) -> None:
    """A passport p1 still holds, also given to removed p2 (cascade), stays p1's."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Person).add_all([Person("p1", passport=Passport("X")), Person("p2")])
    async with UnitOfWork(rdb, registry) as uow:
        p1, p2 = await uow.repository(Person).find(
            load=[PersonMap.passport], order_by=PersonMap.name
        )
        p2.passport = p1.passport
        uow.repository(Person).remove(p2)
    async with UnitOfWork(rdb, registry) as uow:
        passports = await uow.repository(Passport).find(load=[PassportMap.person])
        assert [(p.number, p.person.name) for p in passports] == [("X", "p1")]


async def test_a_child_whose_live_parent_replaced_its_collection_goes_with_a_removed_one(
    rdb: Database,
) -> None:
    """A comment loaded without its article (a placeholder naming a), whose a replaced its
    comments by an empty list, goes with removed b (cascade) when appended to b's."""
    await seed_articles(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        comment = await uow.repository(Comment).first()
        (a,) = await uow.repository(Article).find(ArticleMap.title == "a")
        (b,) = await uow.repository(Article).find(
            ArticleMap.title == "b", load=[ArticleMap.comments]
        )
        assert comment is not None
        a.comments = []
        b.comments.append(comment)
        uow.repository(Article).remove(b)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Comment).count() == 0


async def test_a_child_appended_to_a_removed_restrict_parent_keeps_its_reference(
    rdb: Database,
) -> None:
    """Appending an article to a category's articles (restrict) and removing the category
    removes the category; the article keeps no category, as its reference says."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add(Category("x"))
        uow.repository(Article).add(Article("a"))
    async with UnitOfWork(rdb, registry) as uow:
        (category,) = await uow.repository(Category).find(load=[CategoryMap.articles])
        article = await uow.repository(Article).first()
        assert article is not None
        category.articles.append(article)
        uow.repository(Category).remove(category)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Category).count() == 0
        (article,) = await uow.repository(Article).find(load=[ArticleMap.category])
        assert article.category is None


async def test_an_untracked_child_of_a_removed_parent_is_left_alone(rdb: Database) -> None:
    """A new comment appended only to a removed article's comments, never added, is not
    inserted and its reference is not touched."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add(Article("b"))
    async with UnitOfWork(rdb, registry) as uow:
        (b,) = await uow.repository(Article).find(load=[ArticleMap.comments])
        stray = Comment("stray")
        b.comments.append(stray)
        uow.repository(Article).remove(b)
        await uow.flush()
        assert stray.article is None and stray.id is None
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Comment).count() == 0


async def test_replacing_an_unloaded_cascade_collection_deletes_its_stored_children(
    rdb: Database,
) -> None:
    """An article loaded without its comments, given an empty list, loses them (cascade)."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Article).add_all(
            [
                Article("a", comments=[Comment("c1"), Comment("c2")]),
                Article("b", comments=[Comment("other")]),
            ]
        )
    async with UnitOfWork(rdb, registry) as uow:
        (a,) = await uow.repository(Article).find(ArticleMap.title == "a")
        a.comments = []
    async with UnitOfWork(rdb, registry) as uow:
        assert [c.body for c in await uow.repository(Comment).find()] == ["other"]


async def test_replacing_an_unloaded_set_null_collection_clears_its_stored_children(
    rdb: Database,
) -> None:
    """A role loaded without its users, given an empty list, leaves them without a role."""
    seeded = await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        admin = await uow.repository(Role).get(seeded["admin"].id)
        admin.users = []
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(User).find(UserMap.role.is_null())
        assert names(found) == ["ann", "cat", "dan"]
        assert await uow.repository(User).count() == 4


@pytest.mark.parametrize("entity", ["loaded", "new"])
async def test_another_relations_placeholder_is_refused_before_any_write(
    rdb: Database, entity: str
) -> None:
    """A user's unloaded role given as a comment's article is refused, naming Comment.article
    and Role, before anything is written."""
    seeded = await seed_company(rdb)
    await seed_articles(rdb)
    with statements(rdb) as log:
        with pytest.raises(ValidationError) as refused:
            async with UnitOfWork(rdb, registry) as uow:
                ann = await uow.repository(User).get(seeded["ann"].id)
                if entity == "loaded":
                    comment = await uow.repository(Comment).first()
                    assert comment is not None
                    comment.article = ann.role
                else:
                    uow.repository(Comment).add(Comment("stray", article=ann.role))
    (violation,) = refused.value.violations
    assert (violation.entity, violation.attribute) == ("Comment", "article")
    assert "expected a Article" in violation.rule and "to a Role" in violation.rule
    assert set(log.operations()) == {"select"}
    assert await comments_by_article(rdb) == [("c", "a")]


async def test_loading_a_relation_leaves_another_relations_placeholder_alone(
    rdb: Database,
) -> None:
    """uow.load() of comments' articles does not turn a role placeholder given as an article
    into the article with the same key; the flush still refuses it."""
    seeded = await seed_company(rdb)
    await seed_articles(rdb)
    with pytest.raises(ValidationError, match=r"Comment\.article"):
        async with UnitOfWork(rdb, registry) as uow:
            ann = await uow.repository(User).get(seeded["ann"].id)
            comment = await uow.repository(Comment).first()
            assert comment is not None
            role = ann.role
            comment.article = role
            await uow.load([comment], CommentMap.article)
            assert comment.article is role
    assert await comments_by_article(rdb) == [("c", "a")]


async def test_a_collection_holding_what_is_not_its_entity_is_refused_before_any_write(
    rdb: Database,
) -> None:
    """None and a Role in an article's comments, and a string in its tags, are all
    refused at once, naming Article.comments and Article.tags, before any write."""
    await seed_articles(rdb)
    with statements(rdb) as log:
        with pytest.raises(ValidationError) as refused:
            async with UnitOfWork(rdb, registry) as uow:
                a = (await articles_with_comments(uow))[0]
                await uow.load([a], ArticleMap.tags)
                a.comments.extend([None, Role("intruder")])
                a.tags.append("red")  # type: ignore[arg-type]
    found = {(v.entity, v.attribute, repr(v.value)) for v in refused.value.violations}
    assert found == {
        ("Article", "comments", "None"),
        ("Article", "comments", repr(Role("intruder"))),
        ("Article", "tags", "'red'"),
    }
    assert all("expected" in v.rule for v in refused.value.violations)
    assert set(log.operations()) == {"select"}
    assert await comments_by_article(rdb) == [("c", "a")]


async def test_a_linked_target_without_a_declared_relation_is_restricted(
    rdb: Database,
) -> None:
    """Removing a permission roles still link to raises IntegrityError on every backend."""
    await seed_company(rdb)
    with pytest.raises(IntegrityError):
        async with UnitOfWork(rdb, registry) as uow:
            read = await uow.repository(Permission).first(PermissionMap.code == "read")
            assert read is not None
            uow.repository(Permission).remove(read)
    assert await link_rows(rdb, RoleMap.permissions) == {
        ("admin", "read"),
        ("admin", "write"),
        ("staff", "read"),
    }


# -- one-to-one -----------------------------------------------------------------------------


async def test_one_to_one_loads_from_both_sides(rdb: Database) -> None:
    """A passport's person and a person's passport load, each one object, 2 queries a side."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Passport).add(Passport("X1", person=Person("ann")))
        uow.repository(Person).add(Person("bob"))
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            people = await uow.repository(Person).find(
                load=[PersonMap.passport], order_by=PersonMap.name
            )
            assert people[0].passport is not None and people[0].passport.number == "X1"
            assert people[0].passport.person is people[0]
            assert people[1].passport is None
    assert log.operations() == ["select", "select"]


async def test_one_to_one_criteria_work_from_both_sides(rdb: Database) -> None:
    """has / == across a one-to-one give the same rows on every backend, from either side."""
    ann = Person("ann")
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Passport).add(Passport("X1", person=ann))
        uow.repository(Person).add(Person("bob"))
    async with UnitOfWork(rdb, registry) as uow:
        people, passports = uow.repository(Person), uow.repository(Passport)
        assert names(await people.find(PersonMap.passport.has(PassportMap.number == "X1"))) == [
            "ann"
        ]
        assert names(await people.find(~PersonMap.passport.has())) == ["bob"]
        found = await passports.find(PassportMap.person.has(PersonMap.name == "ann"))
        assert [p.number for p in found] == ["X1"]
        assert [p.number for p in await passports.find(PassportMap.person == ann)] == ["X1"]


async def test_the_back_side_of_a_one_to_one_answers_is_null(rdb: Database) -> None:
    """PersonMap.passport.is_null() finds the people without a passport."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Passport).add(Passport("X1", person=Person("ann")))
        uow.repository(Person).add(Person("bob"))
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(Person).find(PersonMap.passport.is_null())
        assert names(found) == ["bob"]


async def test_one_to_one_refuses_a_second_owner(rdb: Database) -> None:
    """Two passports for one person raise IntegrityError naming Passport.person."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Person).add(Person("ann"))
    with pytest.raises(IntegrityError) as raised:
        async with UnitOfWork(rdb, registry) as uow:
            ann = await uow.repository(Person).first()
            uow.repository(Passport).add_all([Passport("A", person=ann), Passport("B", person=ann)])
    assert (raised.value.entity, raised.value.attribute) == ("Passport", "person")


async def test_one_to_one_cascade_deletes_the_other_side(rdb: Database) -> None:
    """Removing a person removes the passport (on_delete="cascade" on the back side)."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Passport).add(Passport("X1", person=Person("ann")))
    async with UnitOfWork(rdb, registry) as uow:
        ann = await uow.repository(Person).first()
        assert ann is not None
        uow.repository(Person).remove(ann)
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(Passport).count() == 0


# -- trees and cycles -----------------------------------------------------------------------


async def test_a_new_tree_is_inserted_with_its_parent_keys(rdb: Database) -> None:
    """A three-level tree of new categories lands with every parent key right."""
    root = Category("root", children=[Category("a", children=[Category("a1"), Category("a2")])])
    root.children.append(Category("b"))
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add(root)
    assert all(c.parent is root for c in root.children)
    async with UnitOfWork(rdb, registry) as uow:
        stored = await uow.repository(Category).find(load=[CategoryMap.parent])
        parents = {c.name: c.parent and c.parent.name for c in stored}
    assert parents == {"root": None, "a": "root", "b": "root", "a1": "a", "a2": "a"}


async def test_a_tree_loads_level_by_level(rdb: Database) -> None:
    """Roots with load=[(children, children)] read three levels in three selects."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add_all(
            [
                Category(
                    "r1",
                    children=[
                        Category("a", children=[Category("a1", children=[Category("deep")])])
                    ],
                ),
                Category("r2", children=[Category("b")]),
            ]
        )
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            roots = await uow.repository(Category).find(
                CategoryMap.parent.is_null(),
                load=[(CategoryMap.children, CategoryMap.children)],
                order_by=CategoryMap.name,
            )
            shape = {r.name: {c.name: names(c.children) for c in r.children} for r in roots}
            a1 = roots[0].children[0].children[0]
            assert a1.parent is roots[0].children[0]
            with pytest.raises(RelationNotLoaded):
                list(a1.children)
    assert log.operations() == ["select"] * 3
    assert shape == {"r1": {"a": ["a1"]}, "r2": {"b": []}}


async def test_moving_a_subtree_updates_one_key(rdb: Database) -> None:
    """Re-parenting a node writes one update, and its subtree moves with it."""
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(Category).add_all(
            [Category("r1", children=[Category("a", children=[Category("a1")])]), Category("r2")]
        )
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            a = await uow.repository(Category).first(CategoryMap.name == "a")
            r2 = await uow.repository(Category).first(CategoryMap.name == "r2")
            assert a is not None
            a.parent = r2
    assert log.writes() == 1
    async with UnitOfWork(rdb, registry) as uow:
        found = await uow.repository(Category).find(
            CategoryMap.parent.has(CategoryMap.parent.has(CategoryMap.name == "r2"))
        )
        assert names(found) == ["a1"]


async def test_rows_pointing_at_each_other_are_inserted_then_linked(rdb: Database) -> None:
    """Two new users managing each other go in with one insert and one update."""
    a, b = User("a"), User("b")
    a.manager, b.manager = b, a
    with statements(rdb) as log:
        async with UnitOfWork(rdb, registry) as uow:
            uow.repository(User).add(a)
    assert (log.count("insert"), log.count("update")) == (1, 1)
    assert a.version == 1 and b.version == 1
    async with UnitOfWork(rdb, registry) as uow:
        (x,) = await uow.repository(User).find(
            UserMap.name == "a", load=[(UserMap.manager, UserMap.manager)]
        )
        assert x.manager.name == "b" and x.manager.manager is x


async def test_a_three_row_cycle_is_broken(rdb: Database) -> None:
    """a -> b -> c -> a, all new, lands with every manager right."""
    a, b, c = User("a"), User("b"), User("c")
    a.manager, b.manager, c.manager = b, c, a
    async with UnitOfWork(rdb, registry) as uow:
        uow.repository(User).add_all([c, a, b])
    async with UnitOfWork(rdb, registry) as uow:
        users = await uow.repository(User).find(load=[UserMap.manager])
        assert {u.name: u.manager.name for u in users} == {"a": "b", "b": "c", "c": "a"}


# -- failures -------------------------------------------------------------------------------


async def test_a_failed_flush_restores_keys_and_back_references(rdb: Database) -> None:
    """A failed flush puts back the keys and back references it wrote into entities."""
    await seed_company(rdb)
    async with opened(rdb) as uow:
        (staff,) = await uow.repository(Role).find(RoleMap.name == "staff", load=[RoleMap.users])
        bob = staff.users[0]
        eve = User("eve", tags=[Tag("fresh")])
        staff.users.append(eve)  # the flush writes eve.role
        staff.users.remove(bob)  # the flush writes bob.role = None
        newcomer = User("new", role=Role("newrole"))
        uow.repository(User).add(newcomer)
        with rdb.on_statement(fail_on("insert", "rel_user_tags"), when="before"):
            with pytest.raises(InjectedFault):
                await uow.flush()
        assert eve.id is None and eve.tags[0].id is None
        assert newcomer.id is None and newcomer.role is not None and newcomer.role.id is None
        assert eve.role is None  # what the user left it as
        assert bob.role is staff
        assert (eve.version, newcomer.version) == (0, 0)
    async with UnitOfWork(rdb, registry) as again:  # a retry inserts them again
        again.repository(User).add_all([eve, newcomer])
    assert eve.id is not None and newcomer.role.id is not None


async def test_a_failed_flush_restores_a_set_null_rule(rdb: Database) -> None:
    """A failed delete of a role puts the role back on the held users the rule cleared."""
    await seed_company(rdb)
    async with opened(rdb) as uow:
        ann = await uow.repository(User).first(UserMap.name == "ann", load=[UserMap.role])
        assert ann is not None
        admin = ann.role
        uow.repository(Role).remove(admin)
        with rdb.on_statement(fail_on("delete", "rel_roles"), when="before"):
            with pytest.raises(InjectedFault):
                await uow.flush()
        assert ann.role is admin
    async with UnitOfWork(rdb, registry) as uow:
        assert names(
            await uow.repository(User).find(UserMap.role.has(RoleMap.name == "admin"))
        ) == ["ann", "dan"]


async def test_a_failed_cycle_flush_restores_both_rows(rdb: Database) -> None:
    """A failure at the update that closes a cycle leaves both users without keys."""
    a, b = User("a"), User("b")
    a.manager, b.manager = b, a
    async with opened(rdb) as uow:
        uow.repository(User).add(a)
        with rdb.on_statement(fail_on("update", "rel_users"), when="before"):
            with pytest.raises(InjectedFault):
                await uow.flush()
        assert (a.id, b.id, a.version, b.version) == (None, None, 0, 0)
        assert a.manager is b and b.manager is a
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(User).count() == 0


# -- plan -----------------------------------------------------------------------------------


def _batches(uow: UnitOfWork) -> list[tuple[str, str, int]]:
    return [(p.operation, p.table, p.rows) for p in uow.plan() if p.operation != "lock"]


def _before(planned: list[tuple[str, str, int]], first: str, then: str) -> bool:
    tables = [table for _, table, _ in planned]
    return tables.index(first) < tables.index(then)


async def test_plan_shows_relation_batches_in_flush_order(rdb: Database) -> None:
    """plan() lists the cascaded inserts parents first, then the links, running nothing."""
    async with UnitOfWork(rdb, registry) as uow:
        role = Role("admin", permissions=[Permission("p")])
        uow.repository(User).add(User("ann", role=role, tags=[Tag("a"), Tag("b")]))
        with statements(rdb) as log:
            planned = _batches(uow)
        assert log.count() == 0
        assert sorted(planned) == [
            ("insert", "rel_permissions", 1),
            ("insert", "rel_role_permissions", 1),
            ("insert", "rel_roles", 1),
            ("insert", "rel_tags", 2),
            ("insert", "rel_user_tags", 2),
            ("insert", "rel_users", 1),
        ]
        assert _before(planned, "rel_roles", "rel_users")
        assert _before(planned, "rel_roles", "rel_role_permissions")
        assert _before(planned, "rel_permissions", "rel_role_permissions")
        assert _before(planned, "rel_users", "rel_user_tags")
        assert _before(planned, "rel_tags", "rel_user_tags")
        with statements(rdb) as log:
            await uow.flush()
        ran = [(e.operation, e.table) for e in log.events if e.operation == "insert"]
        assert ran == [(operation, table) for operation, table, _ in planned]


async def test_plan_shows_link_and_rule_batches(rdb: Database) -> None:
    """plan() of loaded collection changes and a set_null removal lists their batches."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        (ann,) = await uow.repository(User).find(UserMap.name == "ann", load=[UserMap.tags])
        (staff,) = await uow.repository(Role).find(
            RoleMap.name == "staff", load=[RoleMap.users, RoleMap.permissions]
        )
        green = await uow.repository(Tag).first(TagMap.label == "green")
        ann.tags = [green]
        uow.repository(Role).remove(staff)
        planned = _batches(uow)
        assert sorted(planned) == [
            ("delete", "rel_role_permissions", 1),
            ("delete", "rel_roles", 1),
            ("delete", "rel_user_tags", 2),
            ("insert", "rel_user_tags", 1),
            ("update", "rel_users", 1),  # bob's role cleared by the set_null rule
        ]
        assert _before(planned, "rel_role_permissions", "rel_roles")
        await uow.commit()
    assert await link_rows(rdb, UserMap.tags) == {
        ("ann", "green"),
        ("bob", "red"),
        ("dan", "green"),
    }


async def test_plan_refuses_what_needs_unloaded_rows_and_flush_still_works(
    rdb: Database,
) -> None:
    """plan() of a removal whose children are not loaded names the load=; flush() does it."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        staff = await uow.repository(Role).first(RoleMap.name == "staff")
        assert staff is not None
        uow.repository(Role).remove(staff)
        with statements(rdb) as log:
            with pytest.raises(UnitOfWorkError, match=r"load=\[RoleMap\.users\]"):
                uow.plan()
        assert log.count() == 0
        await uow.flush()
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(Role).find()) == ["admin", "guest"]


async def test_plan_leaves_no_trace_on_the_next_flush(rdb: Database) -> None:
    """New entities appended, planned, then taken out again are not inserted by the flush."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        (ann,) = await uow.repository(User).find(UserMap.name == "ann", load=[UserMap.tags])
        (staff,) = await uow.repository(Role).find(RoleMap.name == "staff", load=[RoleMap.users])
        tag, eve = Tag("x"), User("eve")
        ann.tags.append(tag)
        staff.users.append(eve)
        uow.plan()
        ann.tags.remove(tag)
        staff.users.remove(eve)
        assert eve.role is None
        assert _batches(uow) == []
    async with UnitOfWork(rdb, registry) as uow:
        assert names(await uow.repository(Tag).find()) == ["blue", "green", "red"]
        assert names(await uow.repository(User).find()) == ["ann", "bob", "cat", "dan"]


async def test_a_cascaded_child_refused_by_validation_can_be_taken_out(rdb: Database) -> None:
    """After a ValidationError, taking the bad new child out of its collection fixes it."""
    await seed_company(rdb)
    async with UnitOfWork(rdb, registry) as uow:
        (staff,) = await uow.repository(Role).find(RoleMap.name == "staff", load=[RoleMap.users])
        bad = User("x" * 50)
        staff.users.append(bad)
        with pytest.raises(ValidationError, match="longer than 20"):
            await uow.flush()
        staff.users.remove(bad)
        await uow.flush()
        assert bad.id is None and bad.role is None
    async with UnitOfWork(rdb, registry) as uow:
        assert await uow.repository(User).count() == 4


# -- tables that refer to each other --------------------------------------------------------


@attrs.define
class Team:
    name: str
    captain: Player | None = None
    players: list[Player] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Player:
    name: str
    team: Team | None = None
    id: int | None = None


cycle_registry = Registry()


@cycle_registry.map
class TeamMap(EntityMap[Team]):
    __table__ = "rel_teams"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))
    captain = ManyToOne(Player, column="captain_id")
    players = OneToMany(Player, back="team", on_delete="set_null")


@cycle_registry.map
class PlayerMap(EntityMap[Player]):
    __table__ = "rel_players"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))
    team = ManyToOne(Team, column="team_id")


async def test_tables_that_refer_to_each_other_create_fill_and_drop(db: Database) -> None:
    """A team and its captain (each table refers to the other) create, insert, load and drop."""
    await fresh_schema(db, cycle_registry)
    team = Team("t")
    captain = Player("cap", team=team)
    team.captain = captain
    team.players.append(Player("other"))
    async with UnitOfWork(db, cycle_registry) as uow:
        uow.repository(Team).add(team)
    async with UnitOfWork(db, cycle_registry) as uow:
        (found,) = await uow.repository(Team).find(load=[TeamMap.captain, TeamMap.players])
        assert found.captain.name == "cap"
        assert names(found.players) == ["cap", "other"]
        assert found.captain.team is found
    await fresh_schema(db, cycle_registry)  # drops tables full of rows that refer to each other
    async with UnitOfWork(db, cycle_registry) as uow:
        assert await uow.repository(Team).count() == 0
