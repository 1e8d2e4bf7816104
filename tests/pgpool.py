"""Migrated PostgreSQL databases for the tests of one process, reused instead of recreated.

``CREATE DATABASE … TEMPLATE`` copies every file of the template, the system
catalogues included (about 8 MB): on a busy two-core machine it took most of a
second per test, more than most tests themselves.  Emptying a database a test
has finished with takes a few hundredths of a second, so a database goes back to
the pool when its test ends, and the next test gets it, as clean as a clone:

1. every other connection to it is terminated (a process the test left behind
   loses its connection, as with ``DROP DATABASE … WITH (FORCE)``);
2. it is renamed, so that such a process cannot reconnect to it either, and the
   next test gets a name that no test has used before;
3. its schema is compared with the template's (tables, columns, defaults,
   constraints, indexes, triggers, functions, views, types, settings); a test
   that changed the schema (a downgrade, say) leaves a database that is dropped,
   not reused;
4. every row is deleted (triggers off; tables that grew large are truncated),
   the template's rows (the Alembic version) are put back, and every sequence is
   set to where the template's stands.

Where the tests run on a server of one's own (``BILLING_TEST_POSTGRES_URL``) as a
user who is no superuser, every table is truncated instead, which is slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import create_engine, literal, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

#: The user's schemas (not the system's, nor temporary ones, which go with their session).
USER_NAMESPACES = (
    "SELECT oid FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname <> 'information_schema'"
)
#: One digest of everything a test could change in a schema, to tell whether a database
#: is still at the template's.
SCHEMA_DIGEST = f"""
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
  SELECT 'schema ' || nspname FROM pg_namespace WHERE oid IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' '
         || c.relrowsecurity::text
  FROM pg_class c WHERE c.relnamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass::text || ' ' || a.attname || ' '
         || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace IN ({USER_NAMESPACES}) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
         || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relnamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(oid) || ' ' || tgenabled::text
  FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'function ' || oid::regprocedure::text || ' ' || md5(prosrc)
  FROM pg_proc WHERE pronamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'view ' || oid::regclass::text || ' ' || pg_get_viewdef(oid)
  FROM pg_class WHERE relkind IN ('v', 'm') AND relnamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'type ' || oid::regtype::text || ' ' || typtype::text
  FROM pg_type WHERE typnamespace IN ({USER_NAMESPACES})
  UNION ALL
  SELECT 'enum ' || enumtypid::regtype::text || ' ' || enumlabel FROM pg_enum
  UNION ALL
  SELECT 'sequence ' || seqrelid::regclass::text || ' ' || seqstart::text || ' '
         || seqincrement::text || ' ' || seqmin::text || ' ' || seqmax::text
  FROM pg_sequence
  UNION ALL
  SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
  UNION ALL
  SELECT 'setting ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
  WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS items(item)
"""
TABLES = (
    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
    "WHERE schemaname NOT LIKE 'pg\\_%' AND schemaname <> 'information_schema' ORDER BY 1"
)
SEQUENCES = (
    "SELECT format('%I.%I', schemaname, sequencename), start_value, last_value "
    "FROM pg_sequences WHERE schemaname NOT LIKE 'pg\\_%' "
    "AND schemaname <> 'information_schema' ORDER BY 1"
)

#: A table this large (its dead rows included) is truncated rather than emptied row by row.
LARGE_TABLE_BYTES = 512 * 1024


class SchemaChanged(Exception):
    """A test changed the schema of its database: it is dropped rather than reused."""


class Template:
    """What a database must hold to be as the migrated template, and the script that
    brings a database the tests used back to it in one round trip."""

    def __init__(self, connection: Connection) -> None:
        self.digest: str = connection.execute(text(SCHEMA_DIGEST)).scalar_one()
        self.tables: list[str] = list(connection.execute(text(TABLES)).scalars())
        superuser = connection.execute(text("SHOW is_superuser")).scalar_one() == "on"
        statements = [
            # The schema first: a test that changed it leaves a database that is dropped.
            f"DO $$ BEGIN IF ({SCHEMA_DIGEST}) IS DISTINCT FROM '{self.digest}' THEN "
            "RAISE EXCEPTION 'billing-test-schema-changed'; END IF; END $$",
            *self._emptying(superuser),
        ]
        for table in self.tables:
            result = connection.execute(text(f"SELECT * FROM {table}"))
            keys = result.keys()  # a Result's column names, not a dict's
            columns = ", ".join(f'"{column}"' for column in keys)
            rows = [
                "(" + ", ".join(self._literal(connection, value) for value in row) + ")"
                for row in result
            ]
            if rows:
                statements.append(f"INSERT INTO {table} ({columns}) VALUES {', '.join(rows)}")
        # setval(name, value, is_called): a sequence never used starts at its start value.
        sequences = [
            f"setval('{name}', {start if last is None else last}, {last is not None})"
            for name, start, last in connection.execute(text(SEQUENCES))
        ]
        if sequences:
            statements.append(f"SELECT {', '.join(sequences)}")
        self.script = ";\n".join(statements)

    @staticmethod
    def _literal(connection: Connection, value: object) -> str:
        return str(literal(value).compile(connection, compile_kwargs={"literal_binds": True}))

    def _emptying(self, superuser: bool) -> list[str]:
        """Delete every row, without triggers (a superuser's ``session_replication_role``),
        so in any order: a few milliseconds, where ``TRUNCATE`` of every table takes a
        tenth of a second (a new file for each table and index).  Tables that grew
        large are truncated all the same, so that no test scans the dead rows of
        others (the throw-away server runs no autovacuum)."""
        if not self.tables:
            return []
        everything = f"TRUNCATE {', '.join(self.tables)} CASCADE"
        if not superuser:
            return [everything]
        names = ", ".join(f"'{table}'" for table in self.tables)
        return [
            "DO $$ DECLARE t regclass; BEGIN "
            f"FOREACH t IN ARRAY ARRAY[{names}]::regclass[] LOOP "
            f"IF pg_relation_size(t) > {LARGE_TABLE_BYTES} THEN "
            "EXECUTE format('TRUNCATE %s CASCADE', t); END IF; END LOOP; END $$",
            "SET LOCAL session_replication_role = replica",
            *(f"DELETE FROM {table}" for table in self.tables),
        ]

    def restore(self, connection: Connection) -> None:
        """Bring the database back to the template's rows; :class:`SchemaChanged` if a
        test changed its schema."""
        # The driver's cursor: no parameters, so no placeholders to look for in the script.
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            cursor.execute(self.script)
        except Exception as error:
            if "billing-test-schema-changed" in str(error):
                raise SchemaChanged from None
            raise
        finally:
            cursor.close()


class PostgresPool:
    """Hands out migrated databases of one server: reused ones first, else new clones."""

    def __init__(self, admin: Engine, url: str, new_name: Callable[[], str]):
        self._admin = admin
        self._url = url
        self._new_name = new_name
        self._template: Template | None = None
        self._template_name: str | None = None
        self._spare: list[str] = []
        self._handed_out: set[str] = set()

    def _engine(self, name: str) -> Engine:
        return create_engine(self._database_url(name), poolclass=NullPool)

    def _database_url(self, name: str) -> str:
        return make_url(self._url).set(database=name).render_as_string(hide_password=False)

    def set_template(self, name: str) -> None:
        """Remember database ``name`` (migrated, no longer connected to) as the template."""
        engine = self._engine(name)
        with engine.connect() as connection:
            self._template = Template(connection)
        engine.dispose()
        self._template_name = name

    def take(self) -> str:
        """A database at the template's schema and rows, for one test."""
        if self._spare:
            name = self._spare.pop()
        else:
            name = self._new_name()
            with self._admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {self._template_name}"))
        self._handed_out.add(name)
        return self._database_url(name)

    def owns(self, url: str) -> bool:
        return make_url(url).database in self._handed_out

    def give_back(self, url: str) -> None:
        """The test of ``url`` is over: clean its database for the next test, or drop it."""
        name = make_url(url).database
        self._handed_out.discard(name)
        fresh = self._new_name()
        with self._admin.connect() as connection:
            self._terminate(connection, name)
            try:
                connection.execute(text(f"ALTER DATABASE {name} RENAME TO {fresh}"))
            except DBAPIError:  # somebody reconnected at once: no reuse
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                return
        assert self._template is not None
        engine = self._engine(fresh)
        try:
            with engine.begin() as connection:
                self._template.restore(connection)
        except SchemaChanged:
            self.drop(fresh)
        else:
            self._spare.append(fresh)
        finally:
            engine.dispose()

    @staticmethod
    def _terminate(connection: Connection, name: str) -> None:
        """End every connection to database ``name`` and wait until they are gone.

        ``pg_terminate_backend(pid, timeout)`` waits in steps of 100 ms; the
        test's own connections, just closed, are usually gone within a few.
        """
        others = text(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + 10
        pause = 0.001
        while connection.execute(others, {"name": name}).first() is not None:
            if time.monotonic() > deadline:
                return  # the rename fails, and the database is dropped
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        """Drop the spare databases (a server of one's own keeps none of the run's)."""
        while self._spare:
            self.drop(self._spare.pop())
