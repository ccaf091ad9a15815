"""
The goals of issue 5 (and #10, #11 of issue 11), one function a goal: each runs its
measurement on the dataset and returns its rows of the table, with the goal and whether it
was met. #10 is a measurement with no numeric target: "met" there means a rate was held.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

from activitylog.models import AuthEvent
from bench import commands, delivery, engagement, load, pages, recording
from bench.dataset import Dataset
from bench.report import Line, ratio
from bench.scale import Scale
from clients.models import Client

FIRST_PAGE_RATIO, FIRST_PAGE_P50_MS = 1.3, 25.0
KEYSET_RATIO = 1.3
ADMIN_P50_MS = 300.0
WRITES_PER_S = 2_000
LOGIN_RATIO = 1.15
LIVE_P99_MS = 100.0
EXPORT_VS_PSQL, EXPORT_RSS_MB = 0.8, 150.0
VERIFY_PER_S = 200_000
SINCE_ANCHOR_SHARE = 0.1  # a nightly check of 1/1000 of the events, against a full one
GROWTH_RATIO = 1.3
LOAD_GOAL = f"a measurement: report the rate held at p99 ≤ {load.P99_LIMIT_MS:.0f} ms, 0 non-2xx"
CLIENT_LIST_P50_MS = 50.0


def verify_speed(ds: Dataset, scale: Scale) -> list[Line]:
    """
    #8: verify_activity_log over every chain, at 200,000 events a second or more; and
    from the anchor that full check wrote, a check of only what is new, at no cost for the
    history: first with nothing new (what any check since an anchor costs), then after
    one event in a thousand was recorded (10 k at full scale).
    """
    events = AuthEvent.objects.count()
    new = max(scale.total_events // 1000, 1)
    with commands.scratch_directory() as scratch:
        anchor = Path(scratch) / "anchor.json"
        full = commands.verify_all(write_anchor=anchor)
        nothing_new = commands.verify_since(anchor)
        recording.record_events(new)
        since = commands.verify_since(anchor)
    return [
        Line("8", f"`verify_activity_log`, {events:,} events",
             result=f"{full.rate(events):,.0f} events/s in {full.seconds:.0f} s, peak RSS {full.peak_rss_mb:.0f} MB",
             goal=f"≥ {VERIFY_PER_S:,} events/s", met=full.rate(events) >= VERIFY_PER_S),
        Line("8", f"`verify_activity_log --since-anchor`, {events:,} events, none new",
             result=f"{nothing_new.seconds:.2f} s, peak RSS {nothing_new.peak_rss_mb:.0f} MB"),
        Line("8", f"`verify_activity_log --since-anchor`, {events + new:,} events, {new:,} new",
             result=f"{since.seconds:.2f} s ({since.seconds / full.seconds:.1%} of the full check)",
             goal=f"≤ {SINCE_ANCHOR_SHARE:.0%} of the full check",
             met=since.seconds <= SINCE_ANCHOR_SHARE * full.seconds),
    ]


def first_page(ds: Dataset, scale: Scale) -> list[Line]:
    """#1: the tab's first page costs about the same at 1 k and at 1 M events."""
    tabs = pages.first_pages(ds, scale)
    small, whale = tabs["1 k"].p50, tabs["1 M"].p50
    return [
        *(Line("1", f"Activity Log tab, first page, client with {probe.events:,} events", tabs[label])
          for label, probe in ds.probes.items()),
        Line("1", "ratio 1 M / 1 k (medians)", result=ratio(whale, small),
             goal=f"≤ {FIRST_PAGE_RATIO}; 1 M median ≤ {FIRST_PAGE_P50_MS:.0f} ms",
             met=whale / small <= FIRST_PAGE_RATIO and whale <= FIRST_PAGE_P50_MS),
    ]


def load_older(ds: Dataset, scale: Scale) -> list[Line]:
    """#2: "Load older" deep in the whale's log costs about what its first page does."""
    older = pages.load_older(ds, scale)
    depth = f"{scale.load_older_depth:,}"
    first, keyset = older["first"].p50, older["keyset"].p50
    return [
        Line("2", "whale's tab, first page (alternated with the next row)", older["first"]),
        Line("2", f"whale's tab, \"Load older\" {depth} rows back (keyset cursor)", older["keyset"],
             result=ratio(keyset, first) + " of the first page",
             goal=f"≤ {KEYSET_RATIO}", met=keyset / first <= KEYSET_RATIO),
        Line("2", f"the page query alone, keyset at {depth}", older["keyset_sql"]),
        Line("2", f"the page query alone, OFFSET {depth}", older["offset_sql"],
             result=ratio(older["offset_sql"].p50, older["keyset_sql"].p50) + " of keyset"),
    ]


def admin_changelist(ds: Dataset, scale: Scale) -> list[Line]:
    """#3: Django admin's event list, filtered and searched, in 300 ms or less."""
    return [
        Line("3", f"admin event list, {label}", samples,
             goal=f"median ≤ {ADMIN_P50_MS:.0f} ms", met=samples.p50 <= ADMIN_P50_MS)
        for label, samples in pages.admin_changelists(ds, scale).items()
    ]


def recording_throughput(ds: Dataset, scale: Scale) -> list[Line]:
    """#4: 2,000 events a second through the recording service, and never a forked chain."""
    lines = []
    for t in recording.throughputs(scale):
        where = "all on one client" if t.same_client else "distinct clients"
        lines.append(Line(
            "4", f"`auth_event_record`, {_writers(t.writers)}, {where}", result=_throughput_text(t),
            # One client's appends queue on its row lock by design: there only the chain counts.
            goal="" if t.same_client else f"≥ {WRITES_PER_S:,} events/s; no forks",
            met=t.chains_intact if t.same_client else (t.chains_intact and t.per_second >= WRITES_PER_S),
        ))
    # The floor: what PostgreSQL on this machine allows those statements, with no app around them.
    for t in recording.floors(scale):
        lines.append(Line("4", f"floor: the service's SQL from bare psycopg, no push, {_writers(t.writers)}, "
                               "distinct clients", result=_throughput_text(t)))
    return lines


def _writers(count: int) -> str:
    return f"{count} writer process{'es' if count > 1 else ''}"


def _throughput_text(t: recording.Throughput) -> str:
    return (f"{t.per_second:,.0f} events/s; chains {'intact' if t.chains_intact else 'BROKEN'}; "
            f"CPU per event: writers {t.writer_cpu_ms:.2f} ms, PostgreSQL backends {t.backend_cpu_ms:.2f} ms")


def portal_login(ds: Dataset, scale: Scale) -> list[Line]:
    """#5: recording adds at most 15 % to the portal login."""
    recorded, unrecorded = recording.portal_logins(scale)
    return [
        Line("5", "portal login POST, recorded", recorded,
             result=ratio(recorded.p50, unrecorded.p50) + " of unrecorded",
             goal=f"≤ {LOGIN_RATIO}", met=recorded.p50 / unrecorded.p50 <= LOGIN_RATIO),
        Line("5", "portal login POST, activity log receivers disconnected", unrecorded),
    ]


def live_delivery(ds: Dataset, scale: Scale) -> list[Line]:
    """#6: no event lost on any socket, and at the most sockets a p99 of 100 ms or less, on one client or spread."""
    lines = []
    for d in delivery.deliveries(scale):
        if d.bare:
            lines += _floor_lines(d)
            continue
        most = d.sockets == max(scale.sockets)
        closed = sorted(set(d.closed_by_server))
        where = "on one client" if d.clients == 1 else f"spread over {d.clients:,} clients"
        lines.append(Line(
            "6", f"commit → websocket frame, {d.sockets:,} sockets {where}, 2 server processes, {d.events} events",
            d.latencies, goal=f"p99 ≤ {LIVE_P99_MS:.0f} ms; 0 lost" if most else "0 lost",
            result=f"{d.lost} lost of {d.expected:,}"
            + (f"; {len(d.closed_by_server)} sockets closed by the server (codes {closed})" if closed else ""),
            met=d.lost == 0 and (not most or (d.latencies is not None and d.latencies.p99 <= LIVE_P99_MS)),
        ))
        if most:
            lines.append(Line("6", f"  where the CPU went, {d.sockets:,} sockets {where}: ms per event",
                              result=" · ".join(f"{who} {ms:,.1f}" for who, ms in d.cpu_ms_per_event.items())))
    return lines


def _floor_lines(d: delivery.Delivery) -> list[Line]:
    return [
        Line("6", f"floor: publish → frame, the same {d.sockets:,} sockets and frames on 2 bare websocket servers "
             "(no Django, Channels or daphne; bench/broadcaster.py), " f"{d.events} events", d.latencies,
             result=f"{d.lost} lost of {d.expected:,}"),
        Line("6", "  where the CPU went, the floor: ms per event",
             result=" · ".join(f"{who} {ms:,.1f}" for who, ms in d.cpu_ms_per_event.items())),
    ]


def csv_export(ds: Dataset, scale: Scale) -> list[Line]:
    """#7: the CSV export at 0.8 × psql's speed or better, in 150 MB or less."""
    rows = AuthEvent.objects.count()
    with commands.scratch_directory() as scratch:
        psql = commands.psql_copy(Path(scratch))
        export = commands.export_csv(Path(scratch))
    share = export.rate(rows) / psql.rate(rows)
    return [
        Line("7", f"`export_activity_log --format csv`, {rows:,} rows",
             result=f"{export.rate(rows):,.0f} rows/s ({share:.2f}× psql), peak RSS {export.peak_rss_mb:.0f} MB",
             goal=f"≥ {EXPORT_VS_PSQL} × psql; RSS ≤ {EXPORT_RSS_MB:.0f} MB",
             met=share >= EXPORT_VS_PSQL and export.peak_rss_mb <= EXPORT_RSS_MB),
        Line("7", f"`psql \\copy (same query) to stdout csv`, {rows:,} rows",
             result=f"{psql.rate(rows):,.0f} rows/s, peak RSS {psql.peak_rss_mb:.0f} MB"),
    ]


def client_list_engagement(ds: Dataset, scale: Scale) -> list[Line]:
    """#11: the Clients list with last login and 30-day logins, sorted and filtered by them, p50 ≤ 50 ms."""
    goal = f"median ≤ {CLIENT_LIST_P50_MS:.0f} ms"
    agency_clients = Client.objects.filter(agency__clients__pk=ds.whale.client_id).count()
    lines = [
        Line("11", f"Clients list of the whale's agency ({agency_clients} clients), {label}", samples,
             goal=goal, met=samples.p50 <= CLIENT_LIST_P50_MS)
        for label, samples in engagement.client_lists(ds, scale).items()
    ]
    lines.append(Line("11", "the whale's Overview: each portal user's last login and logins (all time, up to 10,000)",
                      engagement.whale_overview(ds, scale)))
    everyone = Client.objects.filter(is_archived=False).count()
    lines += [
        Line("11", f"the list's query alone over all {everyone:,} clients, {label}", samples)
        for label, samples in engagement.whole_table_queries(ds, scale).items()
    ]
    return lines


def growth_figures(ds: Dataset, scale: Scale) -> dict:
    """#9, after each stage of the build: #1 (the 1 k client and the whale) and #4 (4 writers)."""
    tabs = pages.first_pages(ds, scale, only=("1 k", "1 M"))
    writes = recording.throughput(writers=4, same_client=False, seconds=scale.write_seconds)
    return {
        "total": ds.total_events, "whale_events": ds.whale.events,
        "small_p50": tabs["1 k"].p50, "whale_p50": tabs["1 M"].p50,
        "writes_per_s": writes.per_second, "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
    }


def growth(ds: Dataset, scale: Scale) -> list[Line]:
    """#9: as the table grows, #1 and #4 change by 30 % at the most (figures from the build)."""
    if not ds.growth:
        return []
    lines = [
        Line("9", f"at {g['total']:,} events: #1 first page (1 k client; whale of {g['whale_events']:,}); #4 4 writers",
             result=f"{g['small_p50']:.1f} ms; {g['whale_p50']:.1f} ms; {g['writes_per_s']:,.0f} events/s")
        for g in ds.growth
    ]
    spreads = []
    for key in ("small_p50", "whale_p50", "writes_per_s"):
        values = [g[key] for g in ds.growth]
        spreads.append(max(values) / min(values))
    lines.append(Line(
        "9", "spread across sizes (largest / smallest): #1 1 k, #1 whale, #4",
        result=" · ".join(f"{s:.2f}×" for s in spreads), goal=f"each ≤ {GROWTH_RATIO}",
        met=all(s <= GROWTH_RATIO for s in spreads),
    ))
    return lines


def tab_under_load(ds: Dataset, scale: Scale) -> list[Line]:
    """#10 (issue 11): the requests a second held at p99 ≤ 100 ms, on one daphne process and on two."""
    ramps = load.tab_under_load(ds, scale)
    lines = []
    for r in ramps:
        processes = f"{r.processes} daphne process{'es' if r.processes > 1 else ''}"
        held = r.held
        lines.append(Line(
            "10", f"the tab under load, {processes}: 60 % first page (half htmx), 25 % filter, 15 % Load older",
            held.latencies if held else None, result=_held_text(r), goal=LOAD_GOAL, met=held is not None,
        ))
        lines.append(Line("10", f"steps on {processes}: req/s, p99, non-2xx (✓ held)",
                          result=" · ".join(_step_text(step) for step in r.steps)))
        if held:
            lines.append(Line("10", f"at the rate held on {processes}, by kind: median / p99",
                              result=" · ".join(f"{kind} {s.p50:,.0f} / {s.p99:,.0f} ms"
                                                for kind, s in sorted(held.by_kind.items()))))
    one, two = (r.held for r in ramps)
    if one and two:
        floors = " (both ramps ended held: a ratio of floors)" if all(r.capped for r in ramps) else ""
        lines.append(Line("10", "ratio 2 processes / 1 process, rates held", result=ratio(two.rate, one.rate) + floors,
                          goal=f"a measurement ({os.cpu_count()} cores shared with PostgreSQL and the generator)"))
    return lines


def _held_text(r: load.Ramp) -> str:
    held = r.held
    if held is None:
        first = r.steps[0]
        return (f"no step held: at {first.rate:g} req/s p99 {first.latencies.p99:,.0f} ms, {first.errors} non-2xx; "
                f"machine CPU {first.cpu['machine']:.2f} of {os.cpu_count()} cores")
    cpu = held.cpu
    daphne = f"{cpu['daphne']:.2f}"
    if r.processes > 1:
        daphne += " (" + " + ".join(f"{cpu[f'daphne {n}']:.2f}" for n in range(1, r.processes + 1)) + ")"
    return (
        f"{'≥ ' if r.capped else ''}{held.rate:g} req/s held ({sum(held.statuses.values()):,} requests, 0 non-2xx); "
        f"CPU s/s: daphne {daphne}, PostgreSQL {cpu['PostgreSQL']:.2f}, "
        f"generator {cpu['generator']:.2f}, machine {cpu['machine']:.2f} of {os.cpu_count()} cores"
        + ("; the generator was saturated: the figure is its limit" if cpu["generator"] >= load.SATURATED else "")
    )


def _step_text(step: load.Step) -> str:
    return f"{step.rate:g}: {step.latencies.p99:,.0f} ms, {step.errors}{' ✓' if step.held else ''}"
