"""The simulated back-office users of ``make load`` (run by :mod:`bench.load`).

Each user browses like a member of staff: mostly the three list pages (and
their next pages), some workspace pages, now and then a CSV export of one
workspace's licence holders.  Between clicks a user reads for 2 to 8
seconds.  The workspace keys and the month come from the environment
(``LOAD_KEYS``, ``LOAD_MONTH``, ``LOAD_LISTS``, ``LOAD_PAGES``), written by
:mod:`bench.load`: this file imports nothing of the project, so locust's gevent
patches stay in locust's own process.  Each request opens its own connection
(see :meth:`BackOfficeUser.on_start`).
"""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, between, events, task

KEYS = os.environ.get("LOAD_KEYS", "").split(",")
MONTH = os.environ.get("LOAD_MONTH", "")
#: The list pages, by the name their statistics are reported under (``LOAD_LISTS``).
LISTS: dict[str, str] = json.loads(os.environ.get("LOAD_LISTS", "{}"))
#: The page variants of a list a user opens.
PAGES: list[str] = json.loads(os.environ.get("LOAD_PAGES", '[""]'))


#: Where each request's start (epoch seconds), name, milliseconds and whether it
#: failed are written, a line each (``LOAD_SAMPLES``): bench.load takes its
#: percentiles from them (locust's own round to two digits) and splits the run
#: by what ran meanwhile.
SAMPLES = os.environ.get("LOAD_SAMPLES")
if SAMPLES:
    # Line-buffered: what was answered is on disk when locust is stopped.
    _samples = open(SAMPLES, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    @events.request.add_listener
    def _sample(name, response_time, exception, start_time=None, **kwargs) -> None:
        failed = int(exception is not None)
        _samples.write(f"{start_time:.3f}\t{name}\t{response_time:.1f}\t{failed}\n")


class BackOfficeUser(HttpUser):
    wait_time = between(2, 8)

    def on_start(self) -> None:
        # A connection per request, as behind nginx (whose proxy_pass opens one
        # per request) or a browser whose connection outlived gunicorn's 2 s
        # keep-alive while the user read the page.  A connection kept for the
        # whole run stays with the worker that accepted it, and Linux hands
        # most new connections to the same waiting worker.
        self.client.headers["Connection"] = "close"

    @task(6)
    def list_page(self) -> None:
        name, url = random.choice(list(LISTS.items()))
        self.client.get(url + random.choice(PAGES), name=name)

    @task(3)
    def workspace_page(self) -> None:
        self.client.get(f"/admin/billing_workspaces/w/{random.choice(KEYS)}/", name="workspace")

    @task(1)
    def export(self) -> None:
        key = random.choice(KEYS)
        self.client.get(
            f"/admin/billing_workspaces/w/{key}/export?month={MONTH}&format=csv", name="export"
        )
