"""The simulated back-office users of ``make load`` (run by :mod:`bench.load`).

Each user browses like a member of staff: mostly the three list pages (and
their next pages), some workspace pages, now and then a CSV export of one
workspace's licence holders.  Between clicks a user reads for 2 to 8
seconds.  The workspace keys and the month come from the environment
(``LOAD_KEYS``, ``LOAD_MONTH``, ``LOAD_LISTS``, ``LOAD_PAGES``), written by
:mod:`bench.load`: this file imports nothing of the project, so locust's gevent
patches stay in locust's own process.
"""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, between, task

KEYS = os.environ.get("LOAD_KEYS", "").split(",")
MONTH = os.environ.get("LOAD_MONTH", "")
#: The list pages, by the name their statistics are reported under (``LOAD_LISTS``).
LISTS: dict[str, str] = json.loads(os.environ.get("LOAD_LISTS", "{}"))
#: The page variants of a list a user opens.
PAGES: list[str] = json.loads(os.environ.get("LOAD_PAGES", '[""]'))


class BackOfficeUser(HttpUser):
    wait_time = between(2, 8)

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
