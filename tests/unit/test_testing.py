"""Unit tests of `mapper.testing` that need no database: URL lists, imports, fixture ids."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mapper import ConfigurationError, Registry
from mapper.testing import URLS_VARIABLE, database_fixture, database_urls, fresh_database

pytest_plugins = ["pytester"]


def test_urls_default_to_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the variable unset, tests run on memory:// only."""
    monkeypatch.delenv(URLS_VARIABLE, raising=False)
    assert database_urls() == ["memory://"]


def test_urls_add_the_listed_ones_after_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed URLs follow the default, without blanks, surrounding spaces or repeats."""
    monkeypatch.setenv(
        URLS_VARIABLE, " sqlite:///a.db, ,postgresql://u@h/db,memory://,sqlite:///a.db,"
    )
    assert database_urls() == ["memory://", "sqlite:///a.db", "postgresql://u@h/db"]


def test_urls_read_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """`env` names the variable; `default` replaces memory://; env=None reads none."""
    monkeypatch.setenv("MY_DATABASES", "sqlite:///b.db")
    assert database_urls(default=(), env="MY_DATABASES") == ["sqlite:///b.db"]
    assert database_urls(default=["memory://x"], env=None) == ["memory://x"]


def test_a_bad_listed_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the variable fails at once, naming the variable."""
    monkeypatch.setenv(URLS_VARIABLE, "postgress://u@h/db")
    with pytest.raises(ConfigurationError, match=URLS_VARIABLE):
        database_urls()


async def test_fresh_database_refuses_a_bad_url_before_connecting() -> None:
    """An unknown scheme is a ConfigurationError, not a driver error."""
    with pytest.raises(ConfigurationError, match="unknown database scheme"):
        async with fresh_database("nosuch://x", Registry()):
            pass  # pragma: no cover - never entered


def test_database_fixture_needs_a_url() -> None:
    """An empty URL list is refused when the fixture is made."""
    with pytest.raises(ConfigurationError, match="at least one"):
        database_fixture(Registry(), urls=[])


def test_the_module_imports_without_pytest() -> None:
    """`import mapper.testing` works where pytest is not installed; the fixture says why not."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # any import of it now fails
        sys.modules["pytest_asyncio"] = None
        import mapper.testing
        print(mapper.testing.database_urls(env=None))
        try:
            mapper.testing.database_fixture(mapper.Registry())
        except mapper.ConfigurationError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines() == [
        "['memory://']",
        "database_fixture needs pytest and pytest-asyncio: pip install pytest-asyncio",
    ]


def test_the_fixture_runs_each_test_once_per_url(pytester: pytest.Pytester) -> None:
    """Collected tests are parametrized by URL, with the backend's name as the id."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        """
        from mapper import Registry
        from mapper.testing import database_fixture

        db = database_fixture(
            Registry(),
            urls=["memory://", "sqlite:///a.db", "sqlite:///b.db", "postgresql://u@h/d"],
        )
        """
    )
    pytester.makepyfile(
        """
        def test_it(db):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "test_the_fixture_runs_each_test_once_per_url.py::test_it[[]memory[]]",
            "test_the_fixture_runs_each_test_once_per_url.py::test_it[[]sqlite[]]",
            "test_the_fixture_runs_each_test_once_per_url.py::test_it[[]sqlite-2[]]",
            "test_the_fixture_runs_each_test_once_per_url.py::test_it[[]postgresql[]]",
        ]
    )
    assert result.ret == 0
