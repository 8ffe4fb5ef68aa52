"""Unit tests of `mapper.url` (parsing, rendering, password redaction) and of the connection
options `mapper.database.ConnectionOptions.from_url` reads from a URL and keywords."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapper.database import ConnectionOptions
from mapper.errors import ConfigurationError
from mapper.url import DatabaseURL

SECRET = "s3cr3t-Pa55"

url_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=20
)
"""User names, passwords, database names and option keys with any character trouble."""

hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,2}", fullmatch=True)
"""Plain DNS host names (lower case, as `urlsplit().hostname` returns them)."""


class TestSQLite:
    def test_a_relative_path(self) -> None:
        """sqlite:///app.db names app.db relative to the working directory."""
        url = DatabaseURL.parse("sqlite:///data/app.db")
        assert (url.backend, url.database) == ("sqlite", "data/app.db")
        assert url.host is None

    def test_an_absolute_path(self) -> None:
        """sqlite:////var/app.db (four slashes) names an absolute path."""
        assert DatabaseURL.parse("sqlite:////var/lib/app.db").database == "/var/lib/app.db"

    def test_an_in_memory_database(self) -> None:
        """sqlite:///:memory: is an in-memory database."""
        assert DatabaseURL.parse("sqlite:///:memory:").database == ":memory:"

    def test_an_escaped_path(self) -> None:
        """Percent-escapes in the path are decoded."""
        assert DatabaseURL.parse("sqlite:///my%20data/app%3F.db").database == "my data/app?.db"

    def test_options_come_from_the_query(self) -> None:
        """The query string gives backend options, as strings."""
        url = DatabaseURL.parse("sqlite:///app.db?busy_timeout=200&pool_max=1")
        assert url.database == "app.db"
        assert url.options == {"busy_timeout": "200", "pool_max": "1"}

    @pytest.mark.parametrize("text", ["sqlite://app.db", "sqlite://", "sqlite:///"])
    def test_a_url_without_a_path_is_refused(self, text: str) -> None:
        """A SQLite URL without a path after three slashes says what the forms are."""
        with pytest.raises(ConfigurationError, match="sqlite:///"):
            DatabaseURL.parse(text)

    @pytest.mark.parametrize(
        "text", ["sqlite:///app.db", "sqlite:////var/lib/app.db", "sqlite:///:memory:"]
    )
    def test_rendering_gives_the_url_back(self, text: str) -> None:
        """str() of a parsed SQLite URL is the URL."""
        assert str(DatabaseURL.parse(text)) == text
        assert DatabaseURL.parse(str(DatabaseURL.parse(text))) == DatabaseURL.parse(text)


class TestServerURLs:
    def test_every_part_is_parsed(self) -> None:
        """User, password, host, port, database and options are all read."""
        url = DatabaseURL.parse(f"postgresql://ann:{SECRET}@db.example.com:6432/shop?sslmode=off")
        assert url.backend == "postgresql"
        assert url.username == "ann"
        assert url.password == SECRET
        assert url.host == "db.example.com"
        assert url.port == 6432
        assert url.database == "shop"
        assert url.options == {"sslmode": "off"}

    @pytest.mark.parametrize(
        ("scheme", "backend"),
        [
            ("postgresql", "postgresql"),
            ("postgres", "postgresql"),
            ("POSTGRESQL", "postgresql"),
            ("postgresql+asyncpg", "postgresql"),
            ("mysql", "mysql"),
            ("mariadb", "mysql"),
            ("clickhouse", "clickhouse"),
        ],
    )
    def test_scheme_aliases_name_one_backend(self, scheme: str, backend: str) -> None:
        """Scheme aliases and driver suffixes map to the canonical backend name."""
        assert DatabaseURL.parse(f"{scheme}://host/db").backend == backend

    def test_escaped_passwords_are_decoded(self) -> None:
        """A password with @ : / % # ? written percent-escaped is decoded."""
        url = DatabaseURL.parse("postgresql://ann:p%40ss%3Aw%2Fo%25r%23d%3F@host/db")
        assert url.password == "p@ss:w/o%r#d?"
        assert url.host == "host"

    def test_escaped_user_and_database_names_are_decoded(self) -> None:
        """User and database names are percent-decoded too."""
        url = DatabaseURL.parse("postgresql://an%40n@host/my%20db")
        assert url.username == "an@n"
        assert url.database == "my db"

    def test_an_empty_password_is_kept(self) -> None:
        """`user:@host` has an empty password, not none."""
        assert DatabaseURL.parse("postgresql://ann:@host/db").password == ""

    def test_missing_parts_are_none(self) -> None:
        """A URL with only a host leaves user, password, port and database as None."""
        url = DatabaseURL.parse("postgresql://host")
        assert (url.username, url.password, url.port, url.database) == (None, None, None, None)

    def test_memory_needs_nothing_else(self) -> None:
        """memory:// is the in-process backend."""
        url = DatabaseURL.parse("memory://")
        assert url.backend == "memory"
        assert str(url) == "memory://"

    def test_an_ipv6_host_renders_in_brackets(self) -> None:
        """An IPv6 host keeps its brackets when rendered, so the text parses back the same."""
        url = DatabaseURL.parse("postgresql://ann@[::1]:5432/db")
        assert url.host == "::1"
        assert str(url) == "postgresql://ann@[::1]:5432/db"

    @pytest.mark.parametrize(
        "text",
        ["oracle://host/db", "http://host/db", "sqlite3:///app.db", "://host"],
    )
    def test_an_unknown_scheme_is_refused(self, text: str) -> None:
        """An unknown scheme names the schemes that work."""
        with pytest.raises(ConfigurationError, match="postgresql"):
            DatabaseURL.parse(text)

    @pytest.mark.parametrize("text", ["app.db", "", "postgresql:/host/db", "host:5432"])
    def test_text_that_is_not_a_url_is_refused(self, text: str) -> None:
        """Text without scheme:// is refused with examples of URLs."""
        with pytest.raises(ConfigurationError, match="not a database URL"):
            DatabaseURL.parse(text)

    def test_a_non_string_is_refused(self) -> None:
        """Only text is parsed."""
        with pytest.raises(ConfigurationError):
            DatabaseURL.parse(None)  # type: ignore[arg-type]

    @pytest.mark.parametrize("port", ["abc", "99999", "-1", "54 32"])
    def test_a_bad_port_is_refused(self, port: str) -> None:
        """A non-numeric or out-of-range port is a ConfigurationError that hides the password."""
        with pytest.raises(ConfigurationError, match="port") as error:
            DatabaseURL.parse(f"postgresql://ann:{SECRET}@host:{port}/db")
        assert SECRET not in str(error.value)
        assert "***" in str(error.value)


class TestPasswordsStaySecret:
    URL = f"postgresql://ann:{SECRET}@host:5432/shop?sslmode=require"

    def test_repr_hides_the_password(self) -> None:
        """repr() shows *** instead of the password."""
        text = repr(DatabaseURL.parse(self.URL))
        assert SECRET not in text
        assert text == "DatabaseURL('postgresql://ann:***@host:5432/shop?sslmode=require')"

    def test_str_hides_the_password(self) -> None:
        """str() and render() show *** instead of the password."""
        url = DatabaseURL.parse(self.URL)
        assert SECRET not in str(url)
        assert SECRET not in url.render()
        assert SECRET not in f"{url}"

    def test_render_can_show_the_password_when_asked(self) -> None:
        """render(hide_password=False) is the one way to get the password into text."""
        assert DatabaseURL.parse(self.URL).render(hide_password=False) == self.URL

    def test_an_escaped_password_is_hidden_in_both_forms(self) -> None:
        """Neither the raw nor the escaped form of the password appears."""
        url = DatabaseURL.parse("postgresql://ann:p%40ss%21word@host/db")
        for text in (repr(url), str(url)):
            assert "p@ss!word" not in text
            assert "p%40ss%21word" not in text

    @pytest.mark.parametrize(
        "text",
        [
            f"postgresql//ann:{SECRET}@host/db",
            f"postgresql:/ann:{SECRET}@host/db",
            f"ann:{SECRET}@host/db",
        ],
    )
    def test_a_malformed_url_does_not_leak_its_password(self, text: str) -> None:
        """The error for a mistyped URL never repeats the password it contains."""
        with pytest.raises(ConfigurationError) as error:
            DatabaseURL.parse(text)
        assert SECRET not in str(error.value)

    def test_an_unknown_scheme_does_not_leak_the_password(self) -> None:
        """The error for an unknown scheme never repeats the password."""
        with pytest.raises(ConfigurationError) as error:
            DatabaseURL.parse(f"oracle://ann:{SECRET}@host/db")
        assert SECRET not in str(error.value)

    @given(
        username=url_text,
        password=url_text,
        host=hostnames,
        port=st.none() | st.integers(min_value=1, max_value=65535),
        database=st.none() | url_text,
        options=st.dictionaries(url_text, st.text(max_size=10).filter(str.isprintable)),
    )
    def test_rendering_without_hiding_parses_back_equal(  # noqa: PLR0917
        self,
        username: str,
        password: str,
        host: str,
        port: int | None,
        database: str | None,
        options: dict[str, str],
    ) -> None:
        """parse(render(hide_password=False)) gives the same URL for any names and options."""
        url = DatabaseURL(
            "postgresql",
            "postgresql",
            username=username,
            password=password,
            host=host,
            port=port,
            database=database,
            options=options,
        )
        assert DatabaseURL.parse(url.render(hide_password=False)) == url

    @given(password=url_text)
    def test_no_password_appears_in_repr(self, password: str) -> None:
        """repr() and str() show *** whatever characters the password has."""
        url = DatabaseURL("postgresql", "postgresql", username="u", password=password, host="h")
        assert str(url) == "postgresql://u:***@h"
        assert repr(url) == "DatabaseURL('postgresql://u:***@h')"


def options(text: str, **keywords: Any) -> ConnectionOptions:
    return ConnectionOptions.from_url(DatabaseURL.parse(text), keywords)


class TestConnectionOptions:
    def test_defaults(self) -> None:
        """Without options the pool is 1-10 connections, 30 s to acquire, values hidden."""
        parsed = options("sqlite:///app.db")
        assert parsed == ConnectionOptions(
            pool_min=1,
            pool_max=10,
            pool_timeout=30.0,
            connect_timeout=10.0,
            log_parameters=False,
            extra={},
        )

    def test_url_options_are_parsed(self) -> None:
        """pool_min, pool_max, timeouts and log_parameters come typed from the query."""
        parsed = options(
            "postgresql://host/db?pool_min=2&pool_max=5&pool_timeout=0.5"
            "&connect_timeout=3&log_parameters=yes"
        )
        assert (parsed.pool_min, parsed.pool_max) == (2, 5)
        assert (parsed.pool_timeout, parsed.connect_timeout) == (0.5, 3.0)
        assert parsed.log_parameters is True

    def test_other_options_are_kept_as_extra_text(self) -> None:
        """Backend-specific options pass through as strings, keywords included."""
        parsed = options("postgresql://host/db?statement_cache_size=0", search_path="app")
        assert parsed.extra == {"statement_cache_size": "0", "search_path": "app"}

    def test_keywords_override_url_options(self) -> None:
        """A keyword wins over the same option in the URL."""
        parsed = options(
            "postgresql://host/db?pool_max=5&log_parameters=true&busy_timeout=1",
            pool_max=3,
            log_parameters=False,
            busy_timeout=9,
        )
        assert parsed.pool_max == 3
        assert parsed.log_parameters is False
        assert parsed.extra == {"busy_timeout": "9"}

    def test_parsing_leaves_the_url_alone(self) -> None:
        """Reading options does not consume them from the URL."""
        url = DatabaseURL.parse("postgresql://host/db?pool_max=5&x=1")
        ConnectionOptions.from_url(url, {"pool_min": 0})
        assert url.options == {"pool_max": "5", "x": "1"}

    @pytest.mark.parametrize(
        ("flag", "expected"),
        [("1", True), ("TRUE", True), ("on", True), ("0", False), ("No", False), ("off", False)],
    )
    def test_boolean_spellings(self, flag: str, expected: bool) -> None:
        """log_parameters takes 1/0, true/false, yes/no and on/off in any case."""
        assert options(f"sqlite:///a.db?log_parameters={flag}").log_parameters is expected

    @pytest.mark.parametrize(
        "query",
        [
            "pool_max=ten",
            "pool_min=1.5",
            "pool_timeout=soon",
            "connect_timeout=",
            "log_parameters=maybe",
        ],
    )
    def test_unparseable_values_are_refused(self, query: str) -> None:
        """A value of the wrong kind is a ConfigurationError naming the value."""
        with pytest.raises(ConfigurationError):
            options(f"sqlite:///a.db?{query}")

    @pytest.mark.parametrize(
        "query", ["pool_max=0", "pool_min=-1", "pool_min=5&pool_max=4", "pool_max=-3"]
    )
    def test_inconsistent_pool_sizes_are_refused(self, query: str) -> None:
        """Pool sizes need 0 <= pool_min <= pool_max and pool_max >= 1, and say so."""
        with pytest.raises(ConfigurationError, match="pool_min <= pool_max"):
            options(f"sqlite:///a.db?{query}")

    def test_an_empty_minimum_pool_is_allowed(self) -> None:
        """pool_min=0 opens no connection up front."""
        assert options("sqlite:///a.db?pool_min=0&pool_max=1").pool_min == 0

    @pytest.mark.parametrize(
        "query",
        [
            "pool_timeout=-1",
            "pool_timeout=nan",
            "connect_timeout=-5",
            "connect_timeout=nan",
        ],
    )
    def test_timeouts_must_not_be_negative_or_nan(self, query: str) -> None:
        """A negative or NaN timeout is refused, not passed on to the pool."""
        with pytest.raises(ConfigurationError):
            options(f"sqlite:///a.db?{query}")

    def test_a_fractional_pool_size_keyword_is_refused(self) -> None:
        """pool_max=2.7 as a keyword is refused, as pool_max=2.7 in the URL is."""
        with pytest.raises(ConfigurationError):
            options("sqlite:///a.db?pool_max=2.7")
        with pytest.raises(ConfigurationError):
            options("sqlite:///a.db", pool_max=2.7)
