"""The snapshot store: per-part data, immutable records, one payload at a time."""

from __future__ import annotations

import threading
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import snapshot
from exporter.families import Declarations, Emitter, Registry
from exporter.outcomes import Outcome, PartResult
from exporter.snapshot import GZIP_PIECE, SnapshotStore, TargetSource, gzip_chunks, render_groups, summarise
from tests.support import parse_exposition, value

F = Declarations("test", Registry())
A = F.gauge("jfrog_test_a", "A.")
B = F.gauge("jfrog_test_b", "B.")


def part(endpoint: str, outcome: Outcome = Outcome.SUCCESS, reason: str = "", **values: float) -> PartResult:
    if outcome not in (Outcome.SUCCESS, Outcome.UNSUPPORTED):
        return PartResult(endpoint, outcome, reason, None)
    out = Emitter("t")
    for name, v in values.items():
        out.gauge(A if name == "a" else B, v)
    return PartResult(endpoint, outcome, reason, out.families())


def samples(store: SnapshotStore) -> dict:
    return parse_exposition(store.render().text.decode())


def test_a_failed_part_keeps_its_data_and_the_others_stay_current() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    store.record("t", "c", {"/a": part("/a", a=1), "/b": part("/b", b=1)}, 0.1, now=1000)
    store.record("t", "c", {"/a": part("/a", a=2), "/b": part("/b", Outcome.TIMEOUT, "slow")}, 0.1, now=1060)
    got = samples(store)
    assert value(got, "jfrog_test_a") == 2
    assert value(got, "jfrog_test_b") == 1  # kept
    assert value(got, "jfrog_exporter_endpoint_up", endpoint="/b") == 0
    assert value(got, "jfrog_exporter_endpoint_last_success_timestamp_seconds", endpoint="/b") == 1000
    assert value(got, "jfrog_exporter_endpoint_last_success_timestamp_seconds", endpoint="/a") == 1060
    assert value(got, "jfrog_exporter_collector_success", collector="c") == 0
    assert value(got, "jfrog_exporter_collector_last_success_timestamp_seconds", collector="c") == 1000
    run = store.run("t", "c")
    assert (run.outcome, run.reason) == (Outcome.TIMEOUT, "1 of 2 parts failed; first: /b: slow")
    assert (run.consecutive_failures, run.consecutive_outages) == (1, 0)


def test_unsupported_empties_a_part_and_counts_as_success() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1)
    store.record("t", "c", {"/a": part("/a", Outcome.UNSUPPORTED, "HTTP 404: gone")}, 0.1)
    got = samples(store)
    assert value(got, "jfrog_test_a") is None
    assert value(got, "jfrog_exporter_endpoint_up", endpoint="/a") == 1
    assert store.run("t", "c").outcome is Outcome.UNSUPPORTED


def test_parts_a_run_no_longer_has_are_dropped_unless_it_crashed() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    store.record("t", "c", {"/a": part("/a", a=1), "/b": part("/b", b=1)}, 0.1)
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1, error="internal error: KeyError: 'x'")
    assert value(samples(store), "jfrog_test_b") == 1
    assert store.run("t", "c").outcome is Outcome.ERROR
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1)
    got = samples(store)
    assert value(got, "jfrog_test_b") is None
    assert value(got, "jfrog_exporter_endpoint_up", endpoint="/b") is None


def test_a_run_where_nothing_answered_is_an_outage() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    for _ in range(3):
        store.record("t", "c", {"/a": part("/a", Outcome.UNREACHABLE, "refused")}, 0.1)
    assert store.run("t", "c").consecutive_outages == 3
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1)
    assert (store.run("t", "c").consecutive_outages, store.run("t", "c").consecutive_failures) == (0, 0)


def test_summarise() -> None:
    assert summarise([]) == (Outcome.SUCCESS, "")
    assert summarise([part("/a", a=1)], error="internal error: boom") == (Outcome.ERROR, "internal error: boom")
    unsupported = [part("/a", Outcome.UNSUPPORTED, "HTTP 404: no"), part("/b", Outcome.UNSUPPORTED, "HTTP 501")]
    assert summarise(unsupported) == (Outcome.UNSUPPORTED, "/a: HTTP 404: no; /b: HTTP 501")


def test_records_are_immutable_and_a_held_view_never_changes() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    view = store.view()
    before = view[("t", "c")]
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1)
    assert view[("t", "c")] is before and before.last_run is None
    assert store.view()[("t", "c")].last_run is not None
    with pytest.raises(AttributeError):
        before.outcome = Outcome.ERROR  # type: ignore[misc]
    with pytest.raises(TypeError):
        store.view()[("t", "x")] = before  # type: ignore[index]


def test_a_reader_thread_always_sees_whole_records() -> None:
    store = SnapshotStore()
    for i in range(50):
        store.register("t", f"c{i}", 60)
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for run in store.view().values():
                # Outcome and reason are written together: never one without the other.
                if run.outcome is not None and (run.outcome is Outcome.TIMEOUT) != bool(run.reason):
                    seen.append(f"{run.outcome}/{run.reason}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(300):
            failing = n % 2 == 0
            result = part("/a", Outcome.TIMEOUT, "slow") if failing else part("/a", a=n)
            store.record("t", f"c{n % 50}", {"/a": result}, 0.1)
    finally:
        stop.set()
        reader.join()
    assert seen == []


def test_ready_only_once_the_served_payload_shows_every_first_run() -> None:
    store = SnapshotStore()
    store.register("a", "c", 60)
    store.register("b", "c", 60)
    store.record("a", "c", {"/a": part("/a", a=1)}, 0.1)
    generation, groups = store.freeze()  # a rendering starts: b has not run yet
    store.record("b", "c", {"/a": part("/a", a=2)}, 0.1)  # ... and b's first run ends meanwhile
    assert store.all_ran()
    store.store_payload(render_groups(generation, groups))
    assert not store.ready(), "the payload served lacks b's first run"
    store.render()
    assert store.ready()
    store.record("a", "c", {"/a": part("/a", a=3)}, 0.1)  # later runs do not take readiness back
    assert store.ready()


def test_readiness_follows_collectors_added_and_removed_by_a_reload() -> None:
    store = SnapshotStore()
    store.register("a", "c", 60)
    store.record("a", "c", {"/a": part("/a", a=1)}, 0.1)
    store.render()
    assert store.ready()
    store.register("a", "new", 60)  # a reload adds a collector: not ready until it ran
    assert not store.all_ran() and not store.ready()
    store.forget("a", "new")  # ... and removed again before it ran: ready again
    assert store.all_ran()
    store.register("a", "c", 30)  # registered again with another interval: its run still counts
    assert store.all_ran()


def test_a_view_is_copied_once_per_change_and_held_views_stay_as_they_were() -> None:
    store = SnapshotStore()
    store.register("t", "c", 60)
    first = store.view()
    assert store.view() is first, "nothing changed: the same copy"
    store.schedule("t", "c", next_run=123.0)
    second = store.view()
    assert second is not first and second[("t", "c")].next_run == 123.0
    assert first[("t", "c")].next_run is None
    readings = store.readings()
    store.record("t", "c", {"/a": part("/a", a=1)}, 0.1)
    assert store.readings() is not readings and "t" not in readings


def test_a_targets_self_metrics_are_rendered_again_only_when_its_version_changes() -> None:
    store = SnapshotStore()
    versions = {"a": 1, "b": 1}
    built: list[str] = []

    def families(target: str) -> list:
        built.append(target)
        out = Emitter(None)
        out.gauge(A, versions[target], target=target)
        return out.families()

    store.add_target_source(TargetSource(lambda: list(versions), lambda t: (versions[t],), families))
    store.register("a", "c", 60)
    store.register("b", "c", 60)
    store.render()
    assert sorted(built) == ["a", "b"]
    store.record("a", "c", {"/a": part("/a", b=1)}, 0.1)
    store.render()
    assert sorted(built) == ["a", "b"], "a run changes its records, not the source's version"
    versions["b"] = 7
    got = samples(store)
    assert sorted(built) == ["a", "b", "b"]
    assert value(got, "jfrog_test_a", target="a") == 1 and value(got, "jfrog_test_a", target="b") == 7
    assert value(got, "jfrog_exporter_collector_success", target="a", collector="c") == 1
    assert value(got, "jfrog_exporter_collector_success", target="b", collector="c") == 0
    del versions["b"]  # a target removed takes its self-metrics with it
    assert value(samples(store), "jfrog_test_a", target="b") is None


def test_a_collector_forgotten_takes_its_page_readings_along() -> None:
    page = Declarations("page", Registry()).gauge("jfrog_up", "Up.")
    store = SnapshotStore()
    for collector in ("health", "storage"):
        store.register("t", collector, 60)
    out = Emitter("t")
    out.gauge(page, 1)
    store.record("t", "health", {"/ping": PartResult("/ping", Outcome.SUCCESS, "", out.families())}, 0.1)
    assert [r.name for r in store.readings()["t"]] == ["jfrog_up"]
    store.forget("t", "health")
    store.render()
    assert store.readings()["t"] == ()


@pytest.mark.parametrize("fast_from", [0, 100, 1 << 20])
@settings(derandomize=True, max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(max_size=3000) | st.sampled_from([b"", b"x" * GZIP_PIECE, b"\n" * 70000]),
                       max_size=40))
def test_gzip_of_chunks_is_their_text_whatever_their_sizes(fast_from: int, chunks: list[bytes]) -> None:
    # zlib for small expositions, ISA-L's deflate from a size on: one gzip member of exactly the text either way.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snapshot, "FAST_GZIP_FROM", fast_from)
        zipped = gzip_chunks(chunks)
    assert zipped[:2] == b"\x1f\x8b"
    inflate = zlib.decompressobj(wbits=31)
    assert inflate.decompress(zipped) == b"".join(chunks)
    assert inflate.eof and inflate.unused_data == b"", "one gzip member, nothing after it"


def test_large_expositions_take_the_fast_compressor_where_it_installs() -> None:
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    assert snapshot._compressobj(snapshot.FAST_GZIP_FROM) is isal_zlib.compressobj
    assert snapshot._compressobj(snapshot.FAST_GZIP_FROM - 1) is zlib.compressobj
