"""Database URLs: parsing `scheme://user:password@host:port/database?option=value`.

The password never appears in `repr` or `str` (GUARANTEES G15); `render(hide_password=False)`
is the only way to get it back into text. Query options are kept as strings for the
connection options to parse. Pure; called by `database.connect`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import attrs

from mapper.errors import ConfigurationError

__all__ = ["DatabaseURL"]

_SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "memory": "memory",
    "mysql": "mysql",
    "mariadb": "mysql",
    "clickhouse": "clickhouse",
}


@attrs.frozen(repr=False)
class DatabaseURL:
    """A parsed database URL. `backend` is the canonical backend name."""

    backend: str
    scheme: str
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    """The database name, or for SQLite the file path (or ':memory:')."""
    options: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        if not isinstance(url, str) or "://" not in url:
            raise ConfigurationError(
                f"not a database URL: {_redact(url)!r}; expected e.g. sqlite:///app.db, "
                "postgresql://user@host/db or memory://"
            )
        scheme = url.split("://", 1)[0].lower()
        backend = _SCHEMES.get(scheme.split("+", 1)[0])
        if backend is None:
            raise ConfigurationError(
                f"unknown database scheme {scheme!r}; use one of {', '.join(sorted(set(_SCHEMES)))}"
            )
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        if backend == "memory":
            name = url.split("://", 1)[1].split("?", 1)[0].strip("/")
            return cls(backend, scheme, database=unquote(name) or None, options=options)
        if backend == "sqlite":
            path = url.split("://", 1)[1].split("?", 1)[0]
            if not path.startswith("/"):
                raise ConfigurationError(
                    "a SQLite URL is sqlite:///relative/path.db, sqlite:////absolute/path.db "
                    "or sqlite:///:memory:"
                )
            path = unquote(path[1:])
            if not path:
                raise ConfigurationError("the SQLite URL names no file; use sqlite:///:memory:")
            return cls(backend, scheme, database=path, options=options)
        try:
            port = parts.port
        except ValueError as error:
            raise ConfigurationError(f"bad port in {_redact(url)!r}: {error}") from None
        database = unquote(parts.path.lstrip("/")) or None
        return cls(
            backend,
            scheme,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            database=database,
            options=options,
        )

    def render(self, hide_password: bool = True) -> str:
        """The URL as text; the password is `***` unless `hide_password=False`."""
        if self.backend == "sqlite":
            text = f"{self.scheme}:///{quote(self.database or '', safe='/:')}"
        elif self.backend == "memory":
            text = f"{self.scheme}://{quote(self.database or '', safe='')}"
        else:
            auth = ""
            if self.username is not None:
                auth = quote(self.username, safe="")
                if self.password is not None:
                    secret = "***" if hide_password else quote(self.password, safe="")
                    auth += f":{secret}"
                auth += "@"
            host = self.host or ""
            if ":" in host:  # IPv6
                host = f"[{host}]"
            port = f":{self.port}" if self.port is not None else ""
            path = f"/{quote(self.database, safe='')}" if self.database else ""
            text = f"{self.scheme}://{auth}{host}{port}{path}"
        if self.options:
            query = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.options.items())
            text += f"?{query}"
        return text

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.render()!r})"


# user:password@ anywhere in the text, whether or not the rest parses as a URL.
_CREDENTIALS = re.compile(r"([^:/@\s]*):([^@\s]*)@")


def _redact(url: object) -> str:
    if not isinstance(url, str):
        return "<not a string>"
    return _CREDENTIALS.sub(r"\1:***@", url)
