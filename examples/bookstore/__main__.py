"""The bookstore scenario: `python -m examples.bookstore` runs it and prints what happens.

It uses SQLite in a temporary directory, or the database named by the environment variable
MAPPER_EXAMPLE_URL (postgresql://postgres@127.0.0.1:5432/test, say). It drops and creates
its tables first, so it can run any number of times. `main()` returns a `Summary` of what it
saw; `tests/integration/test_example.py` runs it on every backend and checks that summary.
The `example` session of `noxfile.py` runs this module.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import decimal
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from examples.bookstore import services
from examples.bookstore.domain import (
    Author,
    Book,
    Customer,
    Dimensions,
    isbn13,
    normalize_isbn,
)
from examples.bookstore.mappings import registry
from examples.bookstore.repositories import StockRepository
from mapper import (
    Database,
    IntegrityError,
    PlannedBatch,
    StaleEntityError,
    StatementEvent,
    UnitOfWork,
    ValidationError,
    connect,
)

__all__ = ["Summary", "main"]

URL_VARIABLE = "MAPPER_EXAMPLE_URL"
UTC = dt.UTC
# Fixed clock readings keep the output and the test's expectations the same on every run.
MORNING = dt.datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
IMPORTED_BOOKS = 500

Echo = Callable[[str], None]


@attrs.frozen
class Summary:
    """What the scenario did, step by step, for the caller to check."""

    backend: str
    tables: list[str]
    author_ids: list[int]
    import_statements: dict[str, int]
    validation_errors: list[str]
    """Entity.attribute of each value the mapper refused in the bad feed."""
    validation_statements: int
    """Statements run while the bad feed was refused: none."""
    duplicate_email: str | None
    report: services.CatalogueReport
    receipt: services.Receipt
    promotion: services.PromotionResult
    race: list[str]
    cancelled: services.OrderCancelled
    totals: services.Totals


@attrs.define
class StatementCounter:
    """A `db.on_statement` hook counting statements by operation (begin, insert, ...)."""

    counts: collections.Counter[str] = attrs.Factory(collections.Counter)

    def __call__(self, event: StatementEvent) -> None:
        self.counts[event.operation] += 1

    def take(self) -> dict[str, int]:
        """The counts since the last `take`, and start again from zero."""
        taken = dict(self.counts)
        self.counts.clear()
        return taken


def _counted(counts: dict[str, int]) -> str:
    listed = ", ".join(f"{operation} {n}" for operation, n in counts.items())
    return f"{sum(counts.values())} statements ({listed or 'none'})"


def _show_plan(echo: Echo, plan: Sequence[PlannedBatch]) -> None:
    for batch in plan:
        for sql in batch.sql:
            text = " ".join(sql.split())
            shown = text if len(text) <= 84 else text[:81] + "..."
            echo(f"     {batch.operation} {batch.table} x{batch.rows}: {shown}")


# serial, title, author, price, published, genres
_CLASSICS = [
    (1, "Frankenstein", "shelley", "7.99", dt.date(1818, 1, 1), ["horror", "sf"]),
    (2, "The Last Man", "shelley", "9.50", dt.date(1826, 2, 1), ["sf"]),
    (3, "A Wizard of Earthsea", "le guin", "9.99", dt.date(1968, 11, 1), ["fantasy"]),
    (4, "The Left Hand of Darkness", "le guin", "12.50", dt.date(1969, 3, 1), ["sf"]),
    (5, "The Dispossessed", "le guin", "13.99", dt.date(1974, 5, 1), ["sf", "utopia"]),
    (6, "Dune", "herbert", "11.99", dt.date(1965, 8, 1), ["sf"]),
    (7, "Kindred", "butler", "10.49", dt.date(1979, 6, 1), ["sf", "historical"]),
]


def _classics(authors: dict[str, int]) -> list[Book]:
    return [
        Book(
            isbn13(serial),
            title,
            authors[author],
            decimal.Decimal(price),
            published,
            list(genres),
            Dimensions(height=178, width=108, depth=45) if title == "Dune" else None,
        )
        for serial, title, author, price, published, genres in _CLASSICS
    ]


def _anthologies(editor_id: int, count: int) -> list[Book]:
    """`count` generated anthologies, spread over the years and a price range."""
    genres = ["sf", "fantasy", "horror", "poetry", "essays"]
    return [
        Book(
            isbn13(1000 + n),
            f"Collected Stories, Volume {n}",
            editor_id,
            decimal.Decimal(499 + (n * 37) % 2500) / 100,
            dt.date(2000 + n % 24, 1 + n % 12, 1 + n % 28),
            [genres[n % len(genres)]],
            Dimensions(height=198, width=129, depth=10 + n % 40),
        )
        for n in range(1, count + 1)
    ]


async def _race(db: Database, echo: Echo, isbn: str) -> tuple[list[str], int]:
    """Clerk B writes off 2 damaged copies while clerk A sells one; B retries through db.run.

    Clerk A's unit of work runs while clerk B's holds a connection, so this needs a pool of
    two connections (an in-memory SQLite database has one: use a file).
    """
    outcomes: list[str] = []

    async def write_off_two() -> int:
        attempt = len(outcomes) + 1
        try:
            async with UnitOfWork(db, registry) as uow:
                stock = await uow.repository(StockRepository).get(isbn)
                if attempt == 1:
                    # Clerk A's sale commits between clerk B's read and clerk B's write.
                    receipt = await services.place_order(db, "bob@example.com", {isbn: 1}, MORNING)
                    echo(f"   clerk A sold 1 copy (order #{receipt.order_id}) in the meantime")
                stock.take(2)
                left = stock.on_hand
        except StaleEntityError as error:
            outcomes.append("stale")
            echo(f"   clerk B, attempt {attempt}: StaleEntityError on {error.rows[0]}")
            raise  # db.run retries retryable errors by calling write_off_two again
        outcomes.append("committed")
        echo(f"   clerk B, attempt {attempt}: wrote off 2 copies, {left} left")
        return left

    left = await db.run(write_off_two, attempts=3)
    return outcomes, left


async def run(url: str, echo: Echo = print) -> Summary:
    """The whole scenario against the database at `url`."""
    db = await connect(url)
    async with db:
        counter = StatementCounter()
        db.on_statement(counter)
        echo(f"bookstore on {db.backend} ({db.url.render()})")

        tables = await services.reset_schema(db)
        echo(f"1. schema: dropped and created {len(tables)} tables: {', '.join(tables)}")

        names = {
            "shelley": Author("Mary Shelley", dt.date(1797, 8, 30)),
            "le guin": Author("Ursula K. Le Guin", dt.date(1929, 10, 21)),
            "herbert": Author("Frank Herbert", dt.date(1920, 10, 8)),
            "butler": Author("Octavia E. Butler", dt.date(1947, 6, 22)),
            "conklin": Author("Groff Conklin", dt.date(1904, 9, 6)),
        }
        author_ids = await services.add_authors(db, list(names.values()))
        ids = {key: author.id for key, author in names.items() if author.id is not None}
        echo(f"2. authors: added {len(author_ids)}, generated ids {author_ids}")

        classics = _classics(ids)
        await services.import_feed(db, services.Feed(books=classics, copies=6))
        echo(f"3. catalogue: {len(classics)} classics with 6 copies each")

        counter.take()
        started = time.perf_counter()
        imported = await services.import_feed(
            db, services.Feed(books=_anthologies(ids["conklin"], IMPORTED_BOOKS), copies=20)
        )
        elapsed = time.perf_counter() - started
        import_counts = counter.take()
        echo(
            f"4. import: {imported} books + {imported} stock rows (add_all, one flush) in "
            f"{_counted(import_counts)}, {elapsed * 1000:.0f} ms"
        )

        ann = await services.register_customer(db, "Ann", " Ann@Example.com", MORNING)
        bob = await services.register_customer(db, "Bob", "bob@example.com", MORNING)
        echo(f"5. customers: {ann.email} and {bob.email}, keys made by uuid7: {ann.id}")
        duplicate = None
        try:
            await services.register_customer(db, "Ann again", "ann@example.com", MORNING)
        except IntegrityError as error:
            duplicate = f"{error.entity}.{error.attribute}"
            echo(f"   a second ann@example.com: IntegrityError on {duplicate}, rolled back")

        isbn = isbn13(900_001)
        hyphenated = f"{isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}"
        new_book = Book(
            hyphenated, "Lilith's Brood", ids["butler"], decimal.Decimal("18.00"), MORNING.date()
        )
        # A legacy system's export: timestamps without a time zone.
        new_customer = Customer("Cleo", "cleo@example.com", dt.datetime(2024, 5, 1, 17, 45))
        counter.take()
        violations: list[str] = []
        refused: dict[str, int] = {}
        try:
            await services.import_feed(db, services.Feed([new_book], [new_customer]))
        except ValidationError as error:
            violations = [f"{v.entity}.{v.attribute}" for v in error.violations]
            refused = counter.take()
            echo(f"6. validation: a partner's feed was refused; {_counted(refused)} ran:")
            for violation in error.violations:
                echo(f"     {violation}")
        new_book.isbn = normalize_isbn(new_book.isbn)
        new_customer.created_at = new_customer.created_at.replace(tzinfo=UTC)
        await services.import_feed(db, services.Feed([new_book], [new_customer]))
        echo("   fixed (ISBN normalised, time zone attached) and imported")

        dune, wizard, frankenstein = classics[5].isbn, classics[2].isbn, classics[0].isbn
        report = await services.catalogue_report(
            db, [dune, wizard, frankenstein], ids["le guin"], "darkness"
        )
        echo(f"7. queries: get {dune} -> {report.book.title}, {report.book.dimensions}")
        echo(f"   get_many of 3 ISBNs + 1 unknown -> {len(report.fetched)} books")
        echo(f"   Le Guin, newest first (find, order_by, limit 3): {report.by_author}")
        cheapest = ", ".join(f"{title} {price}" for title, price in report.cheapest)
        echo(f"   cheapest since 2000 under 10.00: {cheapest}")
        echo(f"   first title containing 'darkness': {report.first_match}")
        echo(
            f"   count: {report.books} books, {report.under_ten} under 10.00; "
            f"exists before 1900: {report.has_pre_1900}"
        )
        top = ", ".join(f"{genre} {n}" for genre, n in list(report.genres.items())[:5])
        echo(f"   stream: {report.streamed} books in chunks of 100; genres: {top}")

        receipt = await services.place_order(db, "ann@example.com", {dune: 1, wizard: 2}, MORNING)
        echo(f"8. order #{receipt.order_id}: {receipt.lines} lines, total {receipt.total}")

        promotion = await services.run_promotion(db, ids["le guin"], 20, dt.date(1970, 1, 1))
        echo(
            f"9. promotion: 20% off {promotion.discounted} Le Guin books, "
            f"{promotion.tagged} tagged classic; uow.plan() before the commit:"
        )
        _show_plan(echo, promotion.plan)

        echo(f"10. optimistic concurrency on the stock of Dune ({dune}):")
        race, _ = await _race(db, echo, dune)

        cancelled = await services.cancel_order(db, receipt.order_id)
        echo(
            f"11. cancel order #{cancelled.order_id}: {cancelled.lines_removed} lines removed, "
            f"{cancelled.copies_restocked} copies back in stock; the plan was:"
        )
        _show_plan(echo, cancelled.plan)

        totals = await services.store_totals(db, [dune, frankenstein])
        echo(
            f"12. totals: books {totals.books}, customers {totals.customers}, orders "
            f"{totals.orders}, order lines {totals.order_lines}, copies {totals.copies}; "
            f"Dune {totals.on_hand[dune]} on hand"
        )
    return Summary(
        backend=db.backend,
        tables=tables,
        author_ids=author_ids,
        import_statements=import_counts,
        validation_errors=violations,
        validation_statements=sum(refused.values()),
        duplicate_email=duplicate,
        report=report,
        receipt=receipt,
        promotion=promotion,
        race=race,
        cancelled=cancelled,
        totals=totals,
    )


async def main(url: str | None = None, echo: Echo = print) -> Summary:
    """Run the scenario on `url`, on MAPPER_EXAMPLE_URL, or on a throwaway SQLite file."""
    url = url or os.environ.get(URL_VARIABLE)
    if url:
        return await run(url, echo)
    with tempfile.TemporaryDirectory(prefix="bookstore-") as directory:
        return await run(f"sqlite:///{Path(directory) / 'bookstore.db'}", echo)


if __name__ == "__main__":
    asyncio.run(main())
