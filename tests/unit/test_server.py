"""The landing page: the first place an operator looks when an alert fires."""

from __future__ import annotations

import pytest

from exporter.endpoints import wants_gzip
from exporter.families import Declarations, Emitter, Registry
from exporter.outcomes import Outcome, PartResult
from exporter.server import landing_page
from exporter.snapshot import SnapshotStore

GAUGE = Declarations("test", Registry()).gauge("jfrog_test_value", "V.")


def test_the_page_names_the_failed_part_its_reason_and_the_age_of_its_data() -> None:
    store = SnapshotStore()
    store.register("prod", "health", 30)
    ok = Emitter("prod")
    ok.gauge(GAUGE, 1)
    store.record("prod", "health", {"/ping": PartResult("/ping", Outcome.SUCCESS, "", ok.families()),
                                    "/licenses": PartResult("/licenses", Outcome.SUCCESS, "", [])}, 0.2)
    store.record("prod", "health", {
        "/ping": PartResult("/ping", Outcome.SUCCESS, "", ok.families()),
        "/licenses": PartResult("/licenses", Outcome.FORBIDDEN, "HTTP 403: <admin> only", None),
    }, 0.2)
    store.schedule("prod", "health", next_run=1_800_000_000)
    page = landing_page(store)
    failures = page[page.index("<ul class='failures'>"):page.index("</ul>", page.index("<ul class='failures'>"))]
    assert ("<span class='outcome'>forbidden</span>: HTTP 403: &lt;admin&gt; only "
            "<span class='where'>— health /licenses</span> <span class='age'>(data from 0s ago)</span>") in failures
    assert "/ping" not in failures  # parts that work are not listed
    assert "08:00:00 UTC" in page  # the next run, published by the collection thread


@pytest.mark.parametrize(("header", "gzipped"), [
    ("gzip", True), ("gzip, deflate", True), ("deflate, GZIP;q=0.5", True), ("*", True),
    ("", False), ("identity", False), ("gzip;q=0", False), ("gzip; q=0.0, identity", False),
    ("*;q=0", False), ("*, gzip;q=0", False), ("gzip;q=nonsense", False),
])
def test_gzip_only_where_accepted(header: str, gzipped: bool) -> None:
    assert wants_gzip(header) is gzipped
