"""3. Admin list pages at full scale: SQL queries per request, and latency against an
unmodified Flask-Admin ModelView over the same table (same page size)."""

from __future__ import annotations

from datetime import datetime

from .app import LIST_PAGES, bench_app, counting_queries, dispose
from .databases import Scale
from .harness import Figure, check, interleaved, seconds


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    app = bench_app(data.url)
    client = app.test_client()

    def get(url: str) -> int:
        response = client.get(url)
        check(response.status_code == 200, f"{url} answered {response.status_code}")
        check(response.data.count(b"<td") > 20, f"{url} lists no rows")
        return len(response.data)

    def count_queries(url: str) -> int:
        get(url)  # warm
        with counting_queries(app) as statements:
            get(url)
        return len(statements)

    figures, queries, ratios = [], {}, {}
    for page, (plugin_url, plain_url, _) in LIST_PAGES.items():
        counted = {url: count_queries(url) for url in (plugin_url, plain_url)}
        queries[page] = counted[plugin_url]
        times = interleaved(
            {"plugin": lambda u=plugin_url: get(u), "plain": lambda u=plain_url: get(u)},
            runs,
            warmup=0,
        )
        ratios[page] = times["plugin"].median / times["plain"].median
        figures.append(
            Figure(
                f"list page {plugin_url} vs plain ModelView ({counted[plugin_url]} vs "
                f"{counted[plain_url]} queries)",
                data.name,
                ratios[page],
                plugin=seconds(times["plugin"].median),
                baseline=seconds(times["plain"].median),
            )
        )
    xl_url = LIST_PAGES["workspaces"][0] + "?search=xl-"
    xl_queries = count_queries(xl_url)
    xl = interleaved({"plugin": lambda: get(xl_url)}, runs, warmup=0)["plugin"].median
    figures.append(
        Figure(
            f"list page {xl_url}: the 3 big xl- workspaces ({xl_queries} queries)",
            data.name,
            xl,
            plugin=seconds(xl),
            unit="s",
        )
    )
    dispose(app)
    worst = max(ratios, key=ratios.get)
    most = max(queries, key=queries.get)
    return [
        Figure(
            f"SQL queries per list request, most of the three ({most})",
            data.name,
            queries[most],
            key="list_queries",
            plugin=", ".join(f"{page} {n}" for page, n in queries.items()),
            unit="queries",
        ),
        Figure(
            f"list page latency vs plain ModelView, worst of the three ({worst})",
            data.name,
            ratios[worst],
            key="list_vs_flask_admin",
        ),
        *figures,
    ]
