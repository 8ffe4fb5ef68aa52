"""Repositories on every backend: add, get, find, count, remove, stream, criteria semantics."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from mapper import (
    Database,
    EntityNotFoundError,
    Registry,
    Repository,
    UnitOfWork,
    UnitOfWorkError,
)
from tests.integration.helpers import statements
from tests.integration.models import (
    Membership,
    Order,
    OrderMap,
    Role,
    RoleMap,
    Status,
    Tag,
    User,
    UserMap,
    registry,
)

UTC = dt.UTC


def people(count: int) -> list[User]:
    return [
        User(
            name=f"user{i:03d}",
            email=f"user{i:03d}@example.com",
            score=float(i),
            balance=decimal.Decimal(i) / 4,
            born=dt.date(1990, 1, 1) + dt.timedelta(days=i),
            created=dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=i),
            status=Status.BLOCKED if i % 3 == 0 else Status.ACTIVE,
            active=i % 2 == 0,
        )
        for i in range(count)
    ]


async def seed(db: Database, users: list[User]) -> list[User]:
    async with UnitOfWork(db, registry) as uow:
        uow.repository(User).add_all(users)
    return users


class TestAddAndGet:
    async def test_add_then_get_returns_an_equal_entity(self, store: Database) -> None:
        """An added entity reads back equal in a new unit of work, key and version set."""
        (ann,) = await seed(store, people(1))
        assert ann.id is not None and ann.version == 1
        async with UnitOfWork(store, registry) as uow:
            loaded = await uow.repository(User).get(ann.id)
        assert loaded == ann
        assert loaded is not ann

    async def test_get_of_a_missing_key_raises_entity_not_found(self, store: Database) -> None:
        """get() of a key with no row raises EntityNotFoundError naming entity and key."""
        async with UnitOfWork(store, registry) as uow:
            with pytest.raises(EntityNotFoundError, match="no User with key 404") as raised:
                await uow.repository(User).get(404)
        assert isinstance(raised.value, LookupError)

    async def test_get_many_keeps_the_order_given_and_leaves_out_missing(
        self, store: Database
    ) -> None:
        """get_many() returns entities in the order of the keys given, skipping missing keys."""
        users = await seed(store, people(5))
        wanted = [users[3].id, 999, users[0].id, users[3].id]
        async with UnitOfWork(store, registry) as uow:
            found = await uow.repository(User).get_many(wanted)
        assert [u.id for u in found] == [users[3].id, users[0].id, users[3].id]

    async def test_client_generated_keys_need_no_read_back(self, store: Database) -> None:
        """A UUID key from a column default is set before the insert and needs no RETURNING."""
        tag = Tag("urgent")
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                uow.repository(Tag).add(tag)
        assert isinstance(tag.id, uuid.UUID) and tag.id.version == 7
        (insert,) = [e for e in log.events if e.operation == "insert"]
        assert "RETURNING" not in (insert.sql or "")

    async def test_composite_keys_load_by_tuple(self, store: Database) -> None:
        """An entity with a composite key is stored and loaded by a tuple key."""
        (ann,) = await seed(store, people(1))
        tag = Tag("x")
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Tag).add(tag)
            await uow.flush()
            assert ann.id is not None and tag.id is not None
            uow.repository(Membership).add(Membership(ann.id, tag.id, dt.date(2024, 5, 1)))
        async with UnitOfWork(store, registry) as uow:
            members = uow.repository(Membership)
            loaded = await members.get((ann.id, tag.id))
            assert loaded == Membership(ann.id, tag.id, dt.date(2024, 5, 1))
            assert await members.get_many([(ann.id, tag.id), (ann.id, uuid.uuid4())]) == [loaded]
            with pytest.raises(TypeError, match="composite key"):
                await members.get(ann.id)

    async def test_reserved_words_round_trip(self, store: Database) -> None:
        """Table "order" and column "user" are quoted and work in every operation."""
        order = Order(user="bob", total=decimal.Decimal("9.99"))
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Order).add(order)
        async with UnitOfWork(store, registry) as uow:
            orders = uow.repository(Order)
            (found,) = await orders.find(OrderMap.user == "bob", order_by=OrderMap.user)
            assert found == order
            found.user = "carol"
        async with UnitOfWork(store, registry) as uow:
            orders = uow.repository(Order)
            assert (await orders.get(order.id)).user == "carol"
            orders.remove(await orders.get(order.id))
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(Order).count() == 0


class TestFind:
    async def test_find_filters_orders_and_pages(self, store: Database) -> None:
        """find() applies criteria, order_by, limit and offset."""
        await seed(store, people(20))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            page = await users.find(
                UserMap.score >= 5.0, order_by=UserMap.name.desc(), limit=3, offset=2
            )
        assert [u.name for u in page] == ["user017", "user016", "user015"]

    async def test_offset_without_limit(self, store: Database) -> None:
        """An offset without a limit skips rows and returns the rest."""
        await seed(store, people(5))
        async with UnitOfWork(store, registry) as uow:
            rest = await uow.repository(User).find(order_by=UserMap.name, offset=3)
        assert [u.name for u in rest] == ["user003", "user004"]

    @pytest.mark.parametrize(
        ("criterion", "expected"),
        [
            (UserMap.name == "user002", {2}),
            (UserMap.name != "user002", {0, 1, 3, 4, 5}),
            (UserMap.score < 2.0, {0, 1}),
            (UserMap.score <= 2.0, {0, 1, 2}),
            (UserMap.score > 4.0, {5}),
            (UserMap.score >= 4.0, {4, 5}),
            (UserMap.name.in_(["user001", "user004", "nobody"]), {1, 4}),
            (UserMap.name.not_in(["user001", "user004"]), {0, 2, 3, 5}),
            (UserMap.name.in_([]), set()),
            (UserMap.name.not_in([]), {0, 1, 2, 3, 4, 5}),
            (UserMap.name.like("user00%"), {0, 1, 2, 3, 4, 5}),
            (UserMap.name.like("USER00%"), set()),
            (UserMap.name.ilike("USER00_"), {0, 1, 2, 3, 4, 5}),
            (UserMap.name.like("user00_"), {0, 1, 2, 3, 4, 5}),
            (UserMap.score.between(1.0, 3.0), {1, 2, 3}),
            (UserMap.status == Status.BLOCKED, {0, 3}),
            (UserMap.active == True, {0, 2, 4}),  # noqa: E712 - builds a criterion
            ((UserMap.score < 1.0) | (UserMap.score > 4.0), {0, 5}),
            ((UserMap.score > 1.0) & (UserMap.score < 4.0), {2, 3}),
            (~(UserMap.score > 1.0), {0, 1}),
            (UserMap.balance > decimal.Decimal("0.5"), {3, 4, 5}),
            (UserMap.born < dt.date(1990, 1, 3), {0, 1}),
            (UserMap.created >= dt.datetime(2024, 1, 1, 4, tzinfo=UTC), {4, 5}),
        ],
    )
    async def test_criteria_select_the_same_rows_everywhere(
        self, store: Database, criterion: object, expected: set[int]
    ) -> None:
        """Each criterion kind selects the same rows on every backend."""
        await seed(store, people(6))
        async with UnitOfWork(store, registry) as uow:
            found = await uow.repository(User).find(criterion)  # type: ignore[arg-type]
        assert {int(u.name[-3:]) for u in found} == expected

    async def test_like_escapes_wildcards(self, store: Database) -> None:
        """A backslash escapes % and _ in like patterns."""
        await seed(store, [User("50%_off", "a@x"), User("50 and more", "b@x")])
        async with UnitOfWork(store, registry) as uow:
            found = await uow.repository(User).find(UserMap.name.like("50\\%\\_%"))
        assert [u.name for u in found] == ["50%_off"]

    async def test_null_comparisons_follow_sql(self, store: Database) -> None:
        """NULL matches is_null(), never == or !=, and sorts first ascending."""
        users = people(3)
        users[1].born = None
        await seed(store, users)
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            assert [u.name for u in await repo.find(UserMap.born.is_null())] == ["user001"]
            assert [u.name for u in await repo.find(UserMap.born == None)] == ["user001"]  # noqa: E711
            assert len(await repo.find(UserMap.born != dt.date(1990, 1, 1))) == 1
            ordered = await repo.find(order_by=UserMap.born)
            assert [u.name for u in ordered] == ["user001", "user000", "user002"]
            ordered = await repo.find(order_by=UserMap.born.desc())
            assert [u.name for u in ordered] == ["user002", "user000", "user001"]

    async def test_first_count_and_exists(self, store: Database) -> None:
        """first() gives the first match or None; count() and exists() agree with find()."""
        await seed(store, people(4))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            first = await users.first(UserMap.score > 1.0, order_by=UserMap.score)
            assert first is not None and first.name == "user002"
            assert await users.first(UserMap.score > 100.0) is None
            assert await users.count() == 4
            assert await users.count(UserMap.score > 1.0) == 2
            assert await users.exists(UserMap.name == "user003")
            assert not await users.exists(UserMap.name == "nobody")

    async def test_criteria_from_another_mapping_are_refused(self, store: Database) -> None:
        """A criterion on another mapping's column is refused before any SQL."""
        async with UnitOfWork(store, registry) as uow:
            with pytest.raises(Exception, match="belongs to OrderMap"):
                await uow.repository(User).find(OrderMap.user == "x")

    async def test_strings_are_not_criteria(self, store: Database) -> None:
        """Raw SQL strings are refused as criteria and as order_by."""
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            with pytest.raises(TypeError):
                await users.find("name = 'x'")  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await users.find(order_by="name")


class TestRemove:
    async def test_removed_entities_are_deleted(self, store: Database) -> None:
        """remove() deletes the row at flush; get() then raises."""
        users = await seed(store, people(3))
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            repo.remove(await repo.get(users[1].id))
            with pytest.raises(EntityNotFoundError):
                await repo.get(users[1].id)
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 2

    async def test_removing_a_new_entity_forgets_it(self, store: Database) -> None:
        """Removing an entity added in the same unit of work writes nothing."""
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                repo = uow.repository(User)
                ann = User("ann", "ann@x")
                repo.add(ann)
                repo.remove(ann)
        assert log.writes() == 0

    async def test_removing_an_unknown_entity_is_an_error(self, store: Database) -> None:
        """remove() of an entity this unit of work never loaded raises UnitOfWorkError."""
        (ann,) = await seed(store, people(1))
        async with UnitOfWork(store, registry) as uow:
            with pytest.raises(UnitOfWorkError, match="not in this unit of work"):
                uow.repository(User).remove(ann)

    async def test_remove_all_deletes_every_row_in_one_statement(self, store: Database) -> None:
        """remove_all() deletes what it is given at flush, as one batch."""
        users = await seed(store, people(5))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                repo = uow.repository(User)
                repo.remove_all(await repo.get_many([u.id for u in users[1:4]]))
        assert log.writes() == 1
        async with UnitOfWork(store, registry) as uow:
            left = await uow.repository(User).find(order_by=UserMap.id)
        assert [u.id for u in left] == [users[0].id, users[4].id]

    async def test_remove_all_forgets_new_entities(self, store: Database) -> None:
        """New entities given to remove_all() are forgotten; loaded ones are deleted."""
        (ann,) = await seed(store, people(1))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                repo = uow.repository(User)
                loaded = await repo.get(ann.id)
                bob = User("bob", "bob@x")
                repo.add(bob)
                repo.remove_all([bob, loaded])
        assert log.writes() == 1
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 0

    async def test_remove_all_with_an_unknown_entity_marks_none(self, store: Database) -> None:
        """One entity the unit of work does not hold refuses the whole call."""
        ann, bob = await seed(store, people(2))
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            loaded = await repo.get(ann.id)
            with pytest.raises(UnitOfWorkError, match="not in this unit of work"):
                repo.remove_all([loaded, bob])
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 2

    async def test_remove_all_refuses_another_mapping_s_entities(self, store: Database) -> None:
        """An entity of another mapping, new or loaded, refuses the whole call by its class."""
        (ann,) = await seed(store, people(1))
        async with UnitOfWork(store, registry) as uow:
            orders = uow.repository(Order)
            orders.add(Order("ann", decimal.Decimal("5.00")))
        async with UnitOfWork(store, registry) as uow:
            users, orders = uow.repository(User), uow.repository(Order)
            loaded, stored = await users.get(ann.id), await orders.first()
            new = Order("bob", decimal.Decimal("1.00"))
            orders.add(new)
            for stranger in (stored, new):
                with pytest.raises(TypeError, match="User repository cannot remove Order"):
                    users.remove_all([loaded, stranger])
                with pytest.raises(TypeError, match="User repository cannot remove Order"):
                    users.remove(stranger)
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 1
            assert await uow.repository(Order).count() == 2


class TestStream:
    async def test_stream_yields_every_row_in_chunks(self, store: Database) -> None:
        """stream() yields all matching entities, in order, reading chunk by chunk."""
        await seed(store, people(25))
        async with UnitOfWork(store, registry) as uow:
            names = [
                u.name
                async for u in uow.repository(User).stream(
                    UserMap.score >= 5.0, order_by=UserMap.name, chunk_size=4
                )
            ]
        assert names == [f"user{i:03d}" for i in range(5, 25)]

    async def test_stream_does_not_track_new_entities(self, store: Database) -> None:
        """Streamed entities that were not held are not tracked, so changes are not saved."""
        await seed(store, people(3))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                async for user in uow.repository(User).stream():
                    user.name = "changed"
        assert log.writes() == 0

    async def test_stream_yields_held_entities(self, store: Database) -> None:
        """An entity the unit of work already holds comes out of stream() as that object."""
        (ann,) = await seed(store, people(1))
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            held = await repo.get(ann.id)
            streamed = [u async for u in repo.stream()]
            assert streamed == [held] and streamed[0] is held


class TestUntrackedFind:
    async def test_untracked_entities_are_read_but_their_changes_not_saved(
        self, store: Database
    ) -> None:
        """find(track=False) reads every row; changing what it returned writes nothing."""
        await seed(store, people(3))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                found = await uow.repository(User).find(order_by=UserMap.name, track=False)
                assert [u.name for u in found] == ["user000", "user001", "user002"]
                for user in found:
                    user.name = "changed"
        assert log.writes() == 0
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count(UserMap.name == "changed") == 0

    async def test_an_untracked_find_yields_held_entities(self, store: Database) -> None:
        """An entity the unit of work already holds comes back as that object, still tracked."""
        (ann,) = await seed(store, people(1))
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            held = await repo.get(ann.id)
            (found,) = await repo.find(track=False)
            assert found is held
            found.name = "renamed"
        async with UnitOfWork(store, registry) as uow:
            assert (await uow.repository(User).get(ann.id)).name == "renamed"

    async def test_get_after_an_untracked_find_gives_a_tracked_entity(
        self, store: Database
    ) -> None:
        """The entity to change is got again, tracked (one query); its change is saved."""
        await seed(store, people(4))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                repo = uow.repository(User)
                shown = await repo.find(order_by=UserMap.name, track=False)
                (chosen,) = await repo.get_many([shown[2].id])
                assert chosen is not shown[2] and chosen == shown[2]
                chosen.score = 99.0
        assert log.count("update") == 1
        async with UnitOfWork(store, registry) as uow:
            scores = [u.score for u in await uow.repository(User).find(order_by=UserMap.name)]
        assert scores == [0.0, 1.0, 99.0, 3.0]

    async def test_untracked_entities_cost_the_flush_nothing(self, store: Database) -> None:
        """Untracked rows are not held, so a flush has only the tracked one to look at."""
        await seed(store, people(30))
        async with UnitOfWork(store, registry) as uow:
            repo = uow.repository(User)
            await repo.find(track=False)
            (one,) = await repo.find(UserMap.name == "user007")
            one.active = not one.active
            planned = uow.plan()
            assert repr(uow).startswith("<UnitOfWork open: 1 held,")
        assert [(p.operation, p.table, p.rows) for p in planned] == [("update", "users", 1)]
        assert repr(uow) == "<UnitOfWork closed>"


class RoleRepository(Repository[Role]):
    """A custom repository using only the neutral API."""

    async def named(self, name: str) -> Role | None:
        return await self.first(RoleMap.name == name)


class TestCustomRepository:
    async def test_a_custom_repository_class_is_returned_typed(self, store: Database) -> None:
        """uow.repository(CustomRepository) returns that class, bound to its entity."""
        async with UnitOfWork(store, registry) as uow:
            roles = uow.repository(RoleRepository)
            assert isinstance(roles, RoleRepository)
            roles.add(Role("admin"))
            found = await roles.named("admin")
            assert found is not None and found.id is not None
            assert uow.repository(RoleRepository) is roles

    async def test_a_registered_repository_serves_its_entity(self, store: Database) -> None:
        """registry.repository(Role, RoleRepository) makes uow.repository(Role) a RoleRepository."""
        roles_only = Registry()
        roles_only.map(RoleMap)
        roles_only.repository(Role, RoleRepository)
        async with UnitOfWork(store, roles_only) as uow:
            roles = uow.repository(Role)
            assert isinstance(roles, RoleRepository)
            roles.add(Role("auditor"))
        async with UnitOfWork(store, registry) as uow:
            assert type(uow.repository(Role)) is Repository
