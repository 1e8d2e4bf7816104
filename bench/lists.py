"""3. Admin list pages at full scale: SQL queries per request, and latency against an
unmodified Flask-Admin ModelView over the same table (same page size).

The workspace list keeps its counts in the app's counts cache under each
workspace's stamp.  The latency figure is the steady state (the page viewed
again, nothing changed); the queries figure is the first view, counts computed
(the cache emptied first), which is the most a page takes; the first view's
latency is shown as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from .app import LIST_PAGES, bench_app, counting_queries, dispose
from .databases import Scale
from .harness import Figure, check, interleaved, ratio, seconds


def without_csrf(page: bytes) -> bytes:
    """The page without its CSRF token, which holds the second it was made in."""
    return re.sub(rb'(name="csrf_token" type="hidden" value=")[^"]*', rb"\1", page)


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    app = bench_app(data.url)
    client = app.test_client()

    def get(url: str) -> bytes:
        response = client.get(url)
        check(response.status_code == 200, f"{url} answered {response.status_code}")
        check(response.data.count(b"<td") > 20, f"{url} lists no rows")
        return response.data

    cache = app.extensions["billing"].counts_cache(app)

    def first_view(url: str) -> bytes:
        cache.clear()
        return get(url)

    def count_queries(url: str, view: Callable[[str], bytes]) -> int:
        get(url)  # warm
        with counting_queries(app) as statements:
            view(url)
        return len(statements)

    figures, queries, ratios = [], {}, {}
    for page, (plugin_url, plain_url, _) in LIST_PAGES.items():
        queries[page] = count_queries(plugin_url, first_view)
        again, plain = count_queries(plugin_url, get), count_queries(plain_url, get)
        times = interleaved(
            {"plugin": lambda u=plugin_url: get(u), "plain": lambda u=plain_url: get(u)},
            runs,
            warmup=0,
        )
        ratios[page] = ratio(times, "plugin", "plain")
        figures.append(
            Figure.of_ratio(
                f"list page {plugin_url} vs plain ModelView ({again} vs {plain} queries; "
                f"first view {queries[page]})",
                data.name,
                ratios[page],
                plugin=seconds(times["plugin"].median),
                baseline=seconds(times["plain"].median),
            )
        )
    workspaces_url, plain_url, _ = LIST_PAGES["workspaces"]
    check(
        without_csrf(first_view(workspaces_url)) == without_csrf(get(workspaces_url)),
        "the workspace list from the counts cache differs from the one computed",
    )
    first = interleaved(
        {"plugin": lambda: first_view(workspaces_url), "plain": lambda: get(plain_url)},
        runs,
        warmup=0,
    )
    figures.append(
        Figure.of_ratio(
            f"first view of {workspaces_url}, counts computed, vs plain ModelView",
            data.name,
            ratio(first, "plugin", "plain"),
            plugin=seconds(first["plugin"].median),
            baseline=seconds(first["plain"].median),
        )
    )
    xl_url = workspaces_url + "?search=xl-"
    xl_queries = count_queries(xl_url, first_view)
    xl = interleaved({"plugin": lambda: first_view(xl_url)}, runs, warmup=0)["plugin"].median
    figures.append(
        Figure(
            f"first view of {xl_url}: the 3 big xl- workspaces ({xl_queries} queries)",
            data.name,
            xl,
            plugin=seconds(xl),
            unit="s",
        )
    )
    dispose(app)
    worst = max(ratios, key=lambda page: ratios[page].median)
    most = max(queries, key=queries.get)
    return [
        Figure(
            f"SQL queries per list request (first view), most of the three ({most})",
            data.name,
            queries[most],
            key="list_queries",
            plugin=", ".join(f"{page} {n}" for page, n in queries.items()),
            unit="queries",
        ),
        Figure.of_ratio(
            f"list page latency vs plain ModelView, worst of the three ({worst})",
            data.name,
            ratios[worst],
            key="list_vs_flask_admin",
        ),
        *figures,
    ]
