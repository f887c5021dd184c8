"""Recorded answers of real JPDs (tests/field/), replayed through the exporter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.scheduler import Engine
from tests.conftest import make_target
from tests.support import parse_exposition, value

FIELD = Path(__file__).resolve().parents[1] / "field"


def answers(name: str) -> list[dict[str, Any]]:
    entries = yaml.safe_load((FIELD / name).read_text())
    assert entries and all(e.get("source", "").startswith("https://") for e in entries), f"{name}: cite a source"
    return list(entries)


def replaying(answer: dict[str, Any], path: str) -> httpx.MockTransport:
    """The recorded answer on ``path``; 404 elsewhere (the other health endpoints are not under test)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            return httpx.Response(answer["status"], text=answer["body"],
                                  headers={"Content-Type": answer["content_type"]})
        return httpx.Response(404, json={"errors": [{"status": 404, "message": "Not Found"}]})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("answer", answers("ping.yaml"), ids=lambda a: a["server"])
async def test_recorded_ping_answers(answer: dict[str, Any]) -> None:
    engine = Engine([make_target("http://jpd.example", name="jpd", token="rejected")], ["health"],
                    transport=replaying(answer, "/artifactory/api/system/ping"))
    try:
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    part = {p.endpoint: p for p in engine.store.run("jpd", "health").parts}["/artifactory/api/system/ping"]
    if answer["status"] == 200:
        assert value(samples, "jfrog_up") == 1
        assert part.outcome.value == "success"
    else:
        # A refused credential is the exporter's fault: never "JPD down".
        assert value(samples, "jfrog_up") is None
        assert part.outcome.value == "unauthorized"
        assert value(samples, "jfrog_exporter_credentials_accepted") == 0
