"""
Measurement #10's logic, without its servers: the generator's schedule and mix, the
requests it sends, how it reads answers and counts the unanswered, which step is "held"
and which rates the ramp tries. No timing is asserted; only what was sent and counted.
"""

import asyncio
import os
from collections import Counter

import pytest

from bench import goals, loadgen
from bench.load import Ramp, Step, ramp_rates, rate_held
from bench.stats import Samples

TARGET = loadgen.Target(client_id=7, session_cookie="abc123", email="ana@example.test")


def _step(rate: float, latencies: list[float], statuses: dict[int, int] | None = None) -> Step:
    return Step(rate=rate, latencies=Samples(latencies), by_kind={}, cpu={}, generator_late_ms=0.0,
                statuses=statuses or {200: len(latencies)})


# The schedule --------------------------------------------------------------------------------


def test_a_step_sends_rate_times_seconds_requests_evenly_spaced_whatever_the_answers():
    plan = loadgen.schedule(rate=40, seconds=2.5, seed=1)
    assert len(plan) == 100
    assert [due for due, _ in plan] == [i / 40 for i in range(100)]


def test_the_mix_follows_its_weights_and_the_same_seed_gives_the_same_plan():
    plan = loadgen.schedule(rate=1000, seconds=20, seed=7)
    counts = Counter(kind for _, kind in plan)
    for kind, weight in loadgen.MIX.items():
        assert abs(counts[kind] / len(plan) - weight) < 0.01, kind
    assert plan == loadgen.schedule(rate=1000, seconds=20, seed=7)
    assert plan != loadgen.schedule(rate=1000, seconds=20, seed=8)


@pytest.mark.parametrize("rate, seconds", [(0, 10), (-5, 10), (10, 0)])
def test_a_rate_or_duration_that_is_not_positive_is_refused(rate, seconds):
    with pytest.raises(ValueError):
        loadgen.schedule(rate=rate, seconds=seconds, seed=1)


# The requests --------------------------------------------------------------------------------


def test_each_kind_asks_for_what_the_browser_asks_for():
    tab = "/clients/7/activity/"
    assert loadgen.request_path("first page", TARGET, "", 0) == (tab, {})
    path, headers = loadgen.request_path("first page (htmx)", TARGET, "", 0)
    assert path == tab and headers["HX-Request"] == "true" and headers["HX-Target"] == "activity-results"
    filters = {loadgen.request_path("filter", TARGET, "", pick)[0] for pick in range(3)}
    assert filters == {f"{tab}?type=login_failed", f"{tab}?range=7d", f"{tab}?q=ana@example.test"}
    path, headers = loadgen.request_path("load older", TARGET, "c%3D1", 0)
    assert path == f"{tab}?cursor=c%3D1" and headers["HX-Target"] == "load-older"
    with pytest.raises(ValueError):
        loadgen.request_path("export", TARGET, "", 0)


def test_a_request_carries_the_session_cookie_and_its_headers():
    raw = loadgen.encode_request("127.0.0.1:8000", "/x/", "abc123", {"HX-Request": "true"}).decode()
    assert raw.startswith("GET /x/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert "\r\nCookie: sessionid=abc123\r\n" in raw and "\r\nHX-Request: true\r\n" in raw
    assert raw.endswith("\r\n\r\n")


def test_the_load_older_cursor_is_read_from_the_first_page():
    page = '<tr id="event-9"></tr><tr id="load-older"><td><a href="?cursor=MjAy%3D" hx-get="/c/1/?cursor=MjAy%3D">'
    assert loadgen.cursor_in(page) == "MjAy%3D"
    assert loadgen.cursor_in('<table><tr id="event-9"></tr></table>') == ""
    assert loadgen.cursor_in('<tr id="load-older"><td>No older events</td></tr>') == ""


# Reading answers -----------------------------------------------------------------------------


def _read(raw: bytes):
    async def read():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await loadgen.read_response(reader)

    return asyncio.run(read())


def test_an_answer_with_a_content_length_is_read_whole_and_the_connection_kept():
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
    assert _read(raw) == (200, b"hello", True)


def test_a_chunked_answer_is_put_together_and_connection_close_is_obeyed():
    raw = (b"HTTP/1.1 422 Unprocessable Content\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert _read(raw) == (422, b"abcde", False)


def test_unanswered_requests_and_non_2xx_answers_are_counted_as_such():
    """Against a plain local server: client 0's tab answers 200, client 1's 503, client 2's never."""

    async def serve(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            path = head.split(b" ")[1]
            if path.startswith(b"/clients/2/"):
                await asyncio.Event().wait()
            status = b"503 Service Unavailable" if path.startswith(b"/clients/1/") else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        targets = [loadgen.Target(n, "s", "e@x.test") for n in range(3)]
        generator = loadgen.Generator([url], targets)
        generator.cursors = {n: "c" for n in range(3)}
        try:
            return await generator.step(rate=200, seconds=0.3, seed=3, drain=0.5)
        finally:
            server.close()

    result = asyncio.run(run())
    assert sum(result.statuses.values()) == 60 == sum(len(v) for v in result.latencies.values())
    assert set(result.statuses) == {200, 503, loadgen.NO_ANSWER}
    assert result.generator_cpu_seconds > 0


# Held or not, and the ramp -------------------------------------------------------------------


def test_a_step_is_held_with_its_p99_at_the_limit_and_not_one_error():
    assert Samples(list(range(1, 101))).p99 == 99
    assert _step(10, [10.0] * 99 + [100.0]).held
    assert not _step(10, [10.0] * 98 + [101.0] * 2).held
    assert not _step(10, [10.0] * 100, {200: 99, 503: 1}).held
    assert not _step(10, [10.0] * 100, {200: 99, loadgen.NO_ANSWER: 1}).held


def test_the_rate_held_is_the_highest_step_held_even_after_one_that_failed():
    steps = [_step(10, [20.0]), _step(20, [300.0]), _step(15, [90.0]), _step(17, [150.0])]
    assert rate_held(steps).rate == 15
    assert rate_held([_step(10, [300.0])]) is None


def _ramp(capacity: float, **limits) -> list[float]:
    return ramp_rates(lambda rate: rate <= capacity, start=10, factor=1.5, **limits)


def test_the_ramp_climbs_until_a_step_fails_then_splits_the_difference():
    assert _ramp(40, max_steps=12, refinements=2) == [10, 15, 22.5, 33.8, 50.7, 42.2, 38.0]


def test_a_ramp_whose_first_step_fails_halves_until_one_is_held():
    assert _ramp(3, max_steps=12, refinements=2) == [10, 5, 2.5, 3.8, 3.1]
    assert _ramp(0.5, max_steps=12, refinements=2) == [10, 5, 2.5, 1.2]  # never below 1 req/s


def test_the_ramp_stops_at_its_step_limit():
    assert _ramp(1e9, max_steps=4, refinements=1) == [10, 15, 22.5, 33.8]


# The report ----------------------------------------------------------------------------------


def _cpu(generator: float) -> dict[str, float]:
    return {"daphne": 1.5, "daphne 1": 0.8, "daphne 2": 0.7, "PostgreSQL": 0.3, "generator": generator, "machine": 2.0}


def test_the_report_gives_the_rate_held_with_each_process_cpu_and_marks_a_floor_and_a_saturated_generator():
    held = Step(rate=22.5, latencies=Samples([50.0] * 100), by_kind={}, statuses={200: 100}, cpu=_cpu(0.2),
                generator_late_ms=0.0)
    failed = _step(33.8, [500.0] * 100)
    text = goals._held_text(Ramp(processes=2, steps=[held, failed]))
    assert text.startswith("22.5 req/s held (100 requests, 0 non-2xx)")
    assert "daphne 1.50 (0.80 + 0.70), PostgreSQL 0.30, generator 0.20" in text and "saturated" not in text
    busy = Step(rate=22.5, latencies=Samples([50.0]), by_kind={}, statuses={200: 1}, cpu=_cpu(0.95),
                generator_late_ms=0.0)
    text = goals._held_text(Ramp(processes=1, steps=[busy]))
    assert text.startswith("≥ 22.5 req/s held") and "(0.80" not in text and "the generator was saturated" in text
    failed = Step(rate=33.8, latencies=Samples([500.0]), by_kind={}, statuses={200: 1}, cpu=_cpu(0.1),
                  generator_late_ms=0.0)
    assert goals._held_text(Ramp(processes=1, steps=[failed])) == (
        "no step held: at 33.8 req/s p99 500 ms, 0 non-2xx; machine CPU 2.00 of " + f"{os.cpu_count()} cores")
