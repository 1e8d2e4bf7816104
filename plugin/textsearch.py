"""Finding a name in any case, the same on SQLite and PostgreSQL.

``lower()`` folds ASCII only on SQLite, and on PostgreSQL whatever the
database's locale does (nothing beyond ASCII under ``C``, which is what
``initdb --no-locale`` gives): "MÜLLER" would not find "Müller".
:func:`folded` is a lower-casing that folds every letter on both:

- SQLite: ``billing_lower(x)``, Python's ``str.lower``, registered on every
  SQLite connection by :func:`register_sqlite_lower` (the extension calls
  it once in ``init_app``);
- PostgreSQL: ``lower(x COLLATE "und-x-icu")``, ICU's Unicode rules whatever
  the database's own locale (``und-x-icu`` exists on every PostgreSQL built
  with ICU, which Debian's, Ubuntu's and the official images are);
- other databases: plain ``lower(x)``.

Both sides of a comparison are folded the same way: the searched text in
Python with ``str.lower``, the column in SQL.  A search still scans (no
index serves ``LIKE '%…%'``), exactly like Flask-Admin's own ``ILIKE``
search, and adds no query to a page.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FUNCTION = "billing_lower"


class folded(FunctionElement[Any]):
    """``expr`` lower-cased by Unicode rules on every database (see the module)."""

    type = String()
    inherit_cache = True
    name = "folded"


@compiles(folded)
def _folded_default(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: Any, **kw: Any) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "und-x-icu")'


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(SQLITE_FUNCTION, 1, _lower, deterministic=True)


def register_sqlite_lower() -> None:
    """Give every SQLite connection opened from now on ``billing_lower`` (idempotent)."""
    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)


def contains_folded(column: Any, text: str) -> Any:
    """``column`` contains ``text``, in any case (LIKE wildcards in ``text`` are literal)."""
    return folded(column).contains(text.lower(), autoescape=True)


def search_term(column: Any, term: str) -> Any:
    """Flask-Admin's search syntax in any case: ``^abc`` starts with, ``=abc`` is, else contains."""
    if term.startswith("^"):
        return folded(column).startswith(term[1:].lower(), autoescape=True)
    if term.startswith("="):
        return folded(column) == term[1:].lower()
    return contains_folded(column, term)
