"""
The security signals at scale: the plans of their queries and the tab's first page, on a
client with a million events (issue 10). Smaller than `make bench`: one whale of 1 M
events, a 100 k client and a 1 k client, built with the same builder in a database of
its own.

    python -m bench.signals [--rebuild]

BENCH_DATABASE_URL names that database (it is dropped and rebuilt when it holds another
dataset), so point it somewhere other than the full benchmark's. Prints, as markdown,
`EXPLAIN (ANALYZE, BUFFERS)` of the page's signal query and of an expanded row's
queries on the whale, then the first page's timings.
"""

import argparse
import os
import sys
from dataclasses import replace

SIGNALS_SCALE = dict(
    name="signals", total_events=1_120_000, clients=40, agencies=4, whale_events=1_000_000,
    big_events=100_000, big_clients=1, small_events=1_000, growth_stages=(1_120_000,), page_iterations=200,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="Drop the database and build the dataset again.")
    arguments = parser.parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench import builder, pages
    from bench.scale import FULL

    scale = replace(FULL, **SIGNALS_SCALE)
    dataset = builder.build(scale, log=lambda m: print(m, file=sys.stderr, flush=True), rebuild=arguments.rebuild)
    print(_plans(dataset.whale.client_id))
    tabs = pages.first_pages(dataset, scale)
    print("\n| client | first page median | p95 |\n| --- | --- | --- |")
    for label, samples in tabs.items():
        print(f"| {label} | {samples.p50:.1f} ms | {samples.p95:.1f} ms |")
    return 0


def _plans(client_id: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the signal queries, on the whale's newest events."""
    from django.db import connection

    from activitylog import security
    from activitylog.models import AuthEvent
    from clients.models import Client

    client = Client.objects.get(pk=client_id)
    newest = list(AuthEvent.objects.filter(client_id=client_id).order_by("-occurred_at", "-id")[:50])
    failure = AuthEvent.objects.filter(client_id=client_id, event_type="login_failed").order_by("-occurred_at").first()
    queries = {
        "row signals of the first page (50 rows)": security.signals_query([e.pk for e in newest]),
        "summary: the last failure and the counts of the last 7 days": security.failure_counts_query(client=client),
        "an expanded row: other events from the same IP": security.same_ip_query(event=failure, before=True),
    }
    out = []
    for title, queryset in queries.items():
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        out.append(f"### {title}\n\n```\n{plan}\n```\n")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
