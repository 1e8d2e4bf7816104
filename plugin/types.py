"""Column types shared by the plugin's models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, DateTime, Numeric, Row, Select, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC.

    PostgreSQL keeps it as ``timestamptz``.  SQLite has no such type: there the
    value is stored as naive UTC text, which sorts and compares correctly as
    long as every value goes through this type.  Naive datetimes are refused
    on the way in, so local wall-clock time can never sneak into the history.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: billing instants must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current instant, timezone-aware."""
    return datetime.now(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Money and rates as exact decimals on every database.

    PostgreSQL stores ``NUMERIC``.  SQLite has no exact decimal type (its
    NUMERIC goes through floating point), so there the value is stored as
    its decimal text and read back into a ``Decimal`` unchanged.
    """

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"{value!r}: money is a Decimal, never {type(value).__name__}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if isinstance(value, str) else Decimal(value).normalize()


#: A SELECT and its rows of any columns (SQLAlchemy 2.1 types them by their columns).
AnySelect = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]

_T = TypeVar("_T")
#: A column or a mapped attribute, as a query's ``WHERE`` takes them.
Expression = ColumnElement[_T] | QueryableAttribute[_T]
