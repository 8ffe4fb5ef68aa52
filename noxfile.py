"""Development sessions: `nox -l` lists them, `nox` runs them all (the README's test command).

`tests(<db>)` runs the integration suite against one backend's real server; a missing
server fails the session, it never skips. Tags select by backend: `nox -t postgres`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typing", "unit", "tests", "example", "bench_quick"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
BACKENDS = ["memory", "sqlite", "postgres"]
POSTGRES_URL = os.environ.get(
    "MAPPER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _install(session: nox.Session, extras: str, *groups: str) -> None:
    session.install("-e", f".[{extras}]")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting of src, tests, examples and benchmarks."""
    _install(session, "sqlite", "lint")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the library, the example app and the typed-API test."""
    _install(session, "all", "typing")
    session.run("mypy", "--strict", "src", "examples", "tests/unit/test_typing.py")


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests: no database, no driver connection."""
    _install(session, "sqlite", "test")
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session
@nox.parametrize("db", [nox.param(name, tags=[name]) for name in BACKENDS])
def tests(session: nox.Session, db: str) -> None:
    """The contract suite and backend cases against one real backend, then the example's tests."""
    # Every driver: backend-specific test modules are collected (then deselected) everywhere.
    _install(session, "all", "test")
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")}
    session.run("pytest", "tests/integration", f"--backend={db}", *session.posargs, env=env)
    # The bookstore's own suite (mapper.testing) runs on memory://, then on MAPPER_TEST_URLS.
    session.run("pytest", "examples/bookstore/tests", env={"MAPPER_TEST_URLS": _urls(session, db)})


def _urls(session: nox.Session, db: str) -> str:
    """MAPPER_TEST_URLS for the example's tests on `db` (memory:// runs anyway)."""
    if db == "sqlite":
        return f"sqlite:///{Path(session.create_tmp()).resolve() / 'bookstore-tests.db'}"
    return POSTGRES_URL if db == "postgres" else ""


@nox.session
def example(session: nox.Session) -> None:
    """The bookstore example app, on SQLite unless MAPPER_EXAMPLE_URL names a database."""
    _install(session, "all")
    session.run("python", "-m", "examples.bookstore", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against raw drivers and peer ORMs: `nox -s bench -- --quick` for a smoke run.

    DotORM needs Python 3.12+: the harness makes .venv-bench312 for it (bench-dotorm group).
    Not in the default sessions: it needs PostgreSQL and writes benchmarks/results/.
    """
    _install(session, "all", "bench")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def bench_quick(session: nox.Session) -> None:
    """The benchmark suite in quick mode (small sizes, one run, every system and backend), so
    it never rots; results go to a scratch directory, never over benchmarks/results/."""
    _install(session, "all", "bench")
    output = Path(session.create_tmp()) / "bench-quick"
    session.run("python", "-m", "benchmarks", "--quick", "--output", str(output))
