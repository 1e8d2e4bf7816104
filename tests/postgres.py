"""A throw-away PostgreSQL server for the test suite.

PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user that Debian's package creates.  It lives in a
temporary directory, listens on 127.0.0.1 on a free port only, and is built
for speed (no fsync): nothing in it outlives the test run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL is not installed (apt-get install postgresql); `make test` installs it"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server(*, autovacuum: bool = True) -> Iterator[str]:
    """Start a server; yield its SQLAlchemy URL; stop it and remove every file.

    The test suite switches autovacuum off: its databases are emptied and reused
    (``tests/pgpool.py``), and a vacuum between two tests could hand a table's
    freed space to the next one, so that its rows would not come in the order
    they were inserted, as in a new database.
    """
    bindir = _bindir()
    workdir = Path(tempfile.mkdtemp(prefix="billing-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = workdir / "data", workdir / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, cwd=workdir)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "billing",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {workdir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
            f" -c autovacuum={'on' if autovacuum else 'off'}"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        yield f"postgresql+psycopg://billing@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                cwd=workdir,
            )
        shutil.rmtree(workdir, ignore_errors=True)
