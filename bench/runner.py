"""One benchmark run: build or reuse the dataset, measure #1-#9, and report against the goals."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import redis
from django.conf import settings

from bench import commands, dataset, delivery, pages, recording
from bench.database import BenchmarkSetupError
from bench.report import Line, document, ratio, save, table
from bench.scale import Scale

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SMOKE_REPORT = ROOT / "var" / "benchmarks-smoke.md"

# The goals of issue 5.
FIRST_PAGE_RATIO, FIRST_PAGE_P50_MS = 1.3, 25.0
KEYSET_RATIO = 1.3
ADMIN_P50_MS = 300.0
WRITES_PER_S = 2_000
LOGIN_RATIO = 1.15
LIVE_P99_MS, LIVE_AT_SOCKETS = 100.0, 1_000
EXPORT_VS_PSQL, EXPORT_RSS_MB = 0.8, 150.0
VERIFY_PER_S = 200_000
GROWTH_RATIO = 1.3


def _check_redis() -> None:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise BenchmarkSetupError(
            f"Redis is not reachable at {settings.REDIS_URL} ({exc}). Start it, or set BENCH_REDIS_URL."
        ) from exc


def run(scale: Scale, *, rebuild: bool, log: Callable[[str], None]) -> str:
    started = time.monotonic()
    _check_redis()

    def growth(ds: dataset.Dataset) -> dict:
        log(f"Growth measurements at {ds.total_events:,} events")
        tabs = pages.first_pages(ds, scale, only=("1 k", "1 M"))
        writes = recording.throughput(writers=4, same_client=False, seconds=scale.write_seconds)
        return {
            "total": ds.total_events, "whale_events": ds.whale.events,
            "small_p50": tabs["1 k"].p50, "whale_p50": tabs["1 M"].p50,
            "writes_per_s": writes.per_second, "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
        }

    ds = dataset.build(scale, log=log, on_stage=growth, rebuild=rebuild)
    log(f"Dataset: {ds.total_events:,} events; the whale has {ds.whale.events:,}.")
    lines: list[Line] = []
    notes: list[str] = []

    log("#8 verify_activity_log over the whole table (also proves the dataset's chains valid)")
    total_events = _count_events()
    verify = commands.verify_all()
    lines.append(Line("8", f"`verify_activity_log`, {total_events:,} events",
                      result=f"{verify.rate(total_events):,.0f} events/s in {verify.seconds:.0f} s, "
                             f"peak RSS {verify.peak_rss_mb:.0f} MB",
                      goal=f"≥ {VERIFY_PER_S:,} events/s", met=verify.rate(total_events) >= VERIFY_PER_S))

    log("#1 Activity Log tab, first page")
    tabs = pages.first_pages(ds, scale)
    for label, probe in ds.probes.items():
        lines.append(Line("1", f"Activity Log tab, first page, client with {probe.events:,} events", tabs[label]))
    first_ratio = tabs["1 M"].p50 / tabs["1 k"].p50
    lines.append(Line("1", "ratio 1 M / 1 k (medians)", result=ratio(tabs["1 M"].p50, tabs["1 k"].p50),
                      goal=f"≤ {FIRST_PAGE_RATIO}; 1 M median ≤ {FIRST_PAGE_P50_MS:.0f} ms",
                      met=first_ratio <= FIRST_PAGE_RATIO and tabs["1 M"].p50 <= FIRST_PAGE_P50_MS))

    log("#2 Load older, deep in the whale's log")
    older = pages.load_older(ds, scale)
    depth = f"{scale.load_older_depth:,}"
    lines += [
        Line("2", "whale's tab, first page (alternated with the next row)", older["first"]),
        Line("2", f"whale's tab, \"Load older\" {depth} rows back (keyset cursor)", older["keyset"],
             result=ratio(older["keyset"].p50, older["first"].p50) + " of the first page",
             goal=f"≤ {KEYSET_RATIO}", met=older["keyset"].p50 / older["first"].p50 <= KEYSET_RATIO),
        Line("2", f"the page query alone, keyset at {depth}", older["keyset_sql"]),
        Line("2", f"the page query alone, OFFSET {depth}", older["offset_sql"],
             result=ratio(older["offset_sql"].p50, older["keyset_sql"].p50) + " of keyset"),
    ]

    log("#3 Django admin changelist")
    for label, samples in pages.admin_changelists(ds, scale).items():
        lines.append(Line("3", f"admin event list, {label}", samples,
                          goal=f"median ≤ {ADMIN_P50_MS:.0f} ms", met=samples.p50 <= ADMIN_P50_MS))

    log("#4 Recording throughput")
    for t in recording.throughputs(scale):
        where = "all on one client" if t.same_client else "distinct clients"
        lines.append(Line(
            "4", f"`auth_event_record`, {t.writers} writer process{'es' if t.writers > 1 else ''}, {where}",
            result=f"{t.per_second:,.0f} events/s; chains {'intact' if t.chains_intact else 'BROKEN'}",
            goal="" if t.same_client else f"≥ {WRITES_PER_S:,} events/s; no forks",
            met=t.chains_intact if t.same_client else (t.chains_intact and t.per_second >= WRITES_PER_S),
        ))

    log("#5 Portal login with and without recording")
    recorded, unrecorded = recording.portal_logins(scale)
    lines += [
        Line("5", "portal login POST, recorded", recorded,
             result=ratio(recorded.p50, unrecorded.p50) + " of unrecorded",
             goal=f"≤ {LOGIN_RATIO}", met=recorded.p50 / unrecorded.p50 <= LOGIN_RATIO),
        Line("5", "portal login POST, activity log receivers disconnected", unrecorded),
    ]

    log("#6 Live delivery")
    for d in delivery.deliveries(scale.sockets, events=scale.live_events, interval=scale.live_interval,
                                 log_dir=ROOT / "var"):
        goal = f"p99 ≤ {LIVE_P99_MS:.0f} ms; 0 lost" if d.sockets == max(scale.sockets) else "0 lost"
        p99_ok = d.latencies is not None and d.latencies.p99 <= LIVE_P99_MS
        lines.append(Line(
            "6", f"commit → websocket frame, {d.sockets:,} sockets on 2 server processes, {d.events} events",
            d.latencies, goal=goal,
            result=f"{d.lost} lost of {d.sockets * d.events:,}"
            + (f"; {len(d.closed_by_server)} sockets closed by the server (codes {sorted(set(d.closed_by_server))})"
               if d.closed_by_server else ""),
            met=d.lost == 0 and (p99_ok or d.sockets != max(scale.sockets)),
        ))

    log("#7 CSV export vs psql \\copy")
    total_events = _count_events()
    with commands.scratch_directory() as scratch:
        psql = commands.psql_copy(Path(scratch))
        export = commands.export_csv(Path(scratch))
        share = export.rate(total_events) / psql.rate(total_events)
        lines.append(Line(
            "7", f"`export_activity_log --format csv`, {total_events:,} rows",
            result=f"{export.rate(total_events):,.0f} rows/s ({share:.2f}× psql), peak RSS {export.peak_rss_mb:.0f} MB",
            goal=f"≥ {EXPORT_VS_PSQL} × psql; RSS ≤ {EXPORT_RSS_MB:.0f} MB",
            met=share >= EXPORT_VS_PSQL and export.peak_rss_mb <= EXPORT_RSS_MB,
        ))
        lines.append(Line("7", f"`psql \\copy (same query) to stdout csv`, {total_events:,} rows",
                          result=f"{psql.rate(total_events):,.0f} rows/s, peak RSS {psql.peak_rss_mb:.0f} MB"))

    lines += _growth_lines(ds.growth)
    if ds.growth:
        notes.append(
            "#9 is measured while the dataset grows, stage by stage; a run that reuses a finished "
            f"dataset reports the figures of its build ({', '.join(g['measured_at'] for g in ds.growth)})."
        )

    dataset_lines = [
        f"- **Dataset:** {ds.total_events:,} events over {scale.clients:,} clients in {scale.agencies} agencies; "
        f"the whale has {ds.whale.events:,}, probes have {ds.big.events:,} and {ds.small.events:,}; "
        "valid hash chains (checked by #8)",
    ]
    generated = document(scale=scale.name, lines=lines, dataset=dataset_lines, notes=notes,
                         seconds=time.monotonic() - started)
    target = DOCS if scale.name == "full" else SMOKE_REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    save(target, generated)
    log(f"Saved to {target.relative_to(ROOT)}")
    return table(lines)


def _growth_lines(growth: list[dict]) -> list[Line]:
    if not growth:
        return []
    lines = []
    for g in growth:
        lines.append(Line(
            "9", f"at {g['total']:,} events: #1 first page (1 k client; whale of {g['whale_events']:,}); #4 4 writers",
            result=f"{g['small_p50']:.1f} ms; {g['whale_p50']:.1f} ms; {g['writes_per_s']:,.0f} events/s",
        ))
    spreads = []
    for key in ("small_p50", "whale_p50", "writes_per_s"):
        values = [g[key] for g in growth]
        spreads.append(max(values) / min(values))
    lines.append(Line(
        "9", "spread across sizes (largest / smallest): #1 1 k, #1 whale, #4",
        result=" · ".join(f"{s:.2f}×" for s in spreads), goal=f"each ≤ {GROWTH_RATIO}",
        met=all(s <= GROWTH_RATIO for s in spreads),
    ))
    return lines


def _count_events() -> int:
    from activitylog.models import AuthEvent

    return AuthEvent.objects.count()

