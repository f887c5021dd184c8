"""Record a round against the simulator, replay it, and get the same metrics; nothing secret is written.

The comparison: every family the collectors emit (the exporter's own ``jfrog_exporter_*`` aside) must
have the same series on the replay as in the recorded round. Values must be equal too, except for

* values read against the clock (``*_timestamp_seconds``, ages, the probe's measured duration): the
  replay runs later, so only the series are compared;
* counters the exporter builds from histories (worker executions, artifacts created and downloaded, webhook
  deliveries) and what follows them: they count what arrived after the first round's watermark, and a replay answers the
  same history to both rounds, so they stay at 0 where the recording counted what the simulator's
  history grew by. Their series are compared, not their values.

Recordings are scrubbed (user names become placeholders), so the recorded round's label values are
renamed the same way before comparing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.registry import COLLECTORS
from exporter.outcomes import SUCCESSFUL_OUTCOMES, Outcome
from exporter.recording import INDEX, NameMap, load_recording, record_round, write_recording
from exporter.scheduler import Engine
from exporter.simulator.core import Credentials
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import SCENARIOS
from exporter.simulator.security_data import AREA as SECURITY
from exporter.simulator.security_data import SecurityArea
from exporter.simulator.webhooks_data import SECRET_MARK
from exporter.simulator.webhooks_data import area as webhooks_area
from tests.conftest import make_target
from tests.e2e.test_contract import EVERYTHING_ON
from tests.support import REPO, Samples, parse_exposition, run_cli, simulator

RECORDINGS = REPO / "tests" / "field" / "recordings"

#: families whose values follow the clock or the exporter's own measurement
CLOCK_SUFFIXES = ("_timestamp_seconds",)
CLOCK_FAMILIES = ("jfrog_worker_probe_duration_seconds", "jfrog_background_task_oldest_running_seconds")
#: counters built from histories (and the figures derived from the same entries)
HISTORY_FAMILIES = ("jfrog_worker_executions", "jfrog_worker_execution_duration_seconds",
                    "jfrog_artifacts_created", "jfrog_artifacts_downloaded", "jfrog_webhook_deliveries",
                    "jfrog_webhook_delivery_duration_seconds")
#: series that exist only once a history brought something (a failed webhook delivery in the recorded window)
SOMETIMES = ("jfrog_webhook_last_failure_timestamp_seconds",)

Series = tuple[str, frozenset[tuple[str, str]]]


def _family(sample: str) -> str:
    return re.sub(r"(_total|_bucket|_count|_sum)$", "", sample)


def _values_compared(sample: str) -> bool:
    family = _family(sample)
    if sample.endswith(CLOCK_SUFFIXES) or family.startswith(CLOCK_FAMILIES):
        return False
    return not family.startswith(HISTORY_FAMILIES)


def comparable(samples: Samples, names: NameMap | None = None) -> tuple[dict[Series, float], set[Series]]:
    """(series whose values are compared, series compared by name and labels only), the exporter's own aside."""
    values: dict[Series, float] = {}
    labels_only: set[Series] = set()
    for (name, recorded_labels), value in samples.items():
        if name.startswith(("jfrog_exporter_", *SOMETIMES)):
            continue
        labels = recorded_labels if names is None else frozenset((k, names.in_text(v)) for k, v in recorded_labels)
        if _values_compared(name):
            values[(name, labels)] = value
        else:
            labels_only.add((name, labels))
    return values, labels_only


def assert_same(recorded: Samples, replayed: Samples, names: NameMap | None = None) -> None:
    want_values, want_series = comparable(recorded, names)
    got_values, got_series = comparable(replayed)
    assert want_values, "the recorded round exposed nothing to compare"
    assert set(got_values) == set(want_values), {
        "missing": sorted(map(str, set(want_values) - set(got_values)))[:10],
        "extra": sorted(map(str, set(got_values) - set(want_values)))[:10],
    }
    different = {str(k): (v, got_values[k]) for k, v in want_values.items()
                 if not (v == got_values[k] or (v != v and got_values[k] != got_values[k]))}  # NaN equals NaN
    assert not different, dict(list(different.items())[:10])
    assert got_series == want_series, {
        "missing": sorted(map(str, want_series - got_series))[:10],
        "extra": sorted(map(str, got_series - want_series))[:10],
    }


async def run_rounds(url: str) -> tuple[Samples, Engine]:
    """Every collector against ``url`` for two rounds, as recorded: the second makes the calls that start from
    a watermark."""
    engine = Engine([make_target(url, token="any-token-will-do", collectors=EVERYTHING_ON)], only=list(COLLECTORS))
    try:
        for _ in range(2):
            await engine.run_all_once()
    finally:
        await engine.shutdown()
    assert engine.store.payload is not None
    return parse_exposition(engine.store.payload.text.decode()), engine


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_replay_gives_the_recorded_metrics(sim, tmp_path: Path, scenario: str) -> None:
    # The large scenario at 300 repositories: the same shapes, labels and parts.
    url, _ = await sim.start(scenario, scale=300 if scenario == "large" else None)
    recorded = await record_round(make_target(url, collectors=EVERYTHING_ON), list(COLLECTORS))
    written = write_recording(tmp_path / "rec", recorded)
    replay_url, state = await sim.replay(tmp_path / "rec")

    replayed, engine = await run_rounds(replay_url)

    assert state.unmatched == [], "the replay was asked something the round did not ask"
    assert_same(parse_exposition(recorded.exposition), replayed, written.names)
    for collector, run in recorded.runs.items():
        again = engine.store.run("sim", collector)
        assert {p.endpoint: p.outcome for p in again.parts} == {p.endpoint: p.outcome for p in run.parts}, collector


# -- scrubbing ----------------------------------------------------------------------------------------------------

def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


JWT = ".".join([_b64({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
                _b64({"sub": "jfac@01hsim7k4n5r2q7w9/users/admin", "scp": "applied-permissions/admin",
                      "exp": 4102444800}),
                "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1mb3ItdGVzdHM"])
LICENSE_HASHES = ("5f1d2c9a8b7e6d5c4b3a29180706f5e4d3c2b1a0", "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9")
PASSWORDS = ("Repl1cat0r-s3cret", "Sup3rS3cret")
USERS = ("alice", "carol", "dave", "ci-bot", "release-bot", "ldap-user-0", "saml-user-0", "replicator",
         "deployer:")
EMAIL_DOMAIN = "acme-corp.test"


def _users_with_emails(area: SecurityArea) -> str:
    """Access's user list as some versions send it, with each user's e-mail address."""
    assert area.users is not None
    return json.dumps({"users": [
        {"username": u.username, "email": f"{u.username}@{EMAIL_DOMAIN}", "realm": u.realm, "status": u.status,
         "uri": f"https://jpd.example/access/api/v2/users/{u.username}"} for u in area.users]})


def _written(directory: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path, path.read_text(errors="replace")


async def test_nothing_secret_or_personal_is_written(sim, tmp_path: Path) -> None:
    url, state = await sim.start("replication", credentials=Credentials(token=JWT, user="admin", password="pw"))
    assert state.scenario.ha_licenses is not None
    for lic, license_hash in zip(state.scenario.ha_licenses, LICENSE_HASHES, strict=True):
        lic.license_hash = license_hash
    security = state.scenario.areas[SECURITY]
    state.faults.append(Fault(route="/access/api/v2/users", kind="answer", body=_users_with_emails(security)))
    hooks = webhooks_area(state.scenario)
    assert hooks is not None
    for spec in hooks.subscriptions:
        spec.period = 0.013  # deliveries between the two rounds, whose records repeat the subscriptions' secrets
    target = make_target(url, token=JWT, collectors=EVERYTHING_ON)

    recorded = await record_round(target, list(COLLECTORS))
    written = write_recording(tmp_path / "rec", recorded)

    seen = "\n".join(text for _, text in _written(tmp_path / "rec"))
    assert "/artifactory/api/replications" in seen and "/access/api/v2/users" in seen, "the answers are there"
    for secret in (JWT, JWT.split(".")[1], *PASSWORDS, *LICENSE_HASHES):
        assert secret not in seen
    # Webhook subscriptions and deliveries: their URLs, headers, payloads and secrets are not recorded at all.
    assert "/event/api/v1/troubleshooting" in seen and '"subscription_key"' in seen
    assert SECRET_MARK not in seen and "hooks.example.test" not in seen and "X-Team-Token" not in seen
    for path, text in _written(tmp_path / "rec"):
        for name in (*USERS, EMAIL_DOMAIN):
            assert name not in text, f"{name} in {path.relative_to(tmp_path)}"
    assert "user-1@example.com" in seen
    assert "https://dr-us.example.com/artifactory/libs-release-local" in seen, "URLs keep all but their user-info"
    assert written.redacted > 0 and written.renamed >= len(security.users)

    # Scrubbed, it still replays to the same series, users renamed alike in the list and the tokens' subjects.
    replay_url, replay = await sim.replay(tmp_path / "rec")
    replayed, _ = await run_rounds(replay_url)
    assert replay.unmatched == []
    assert_same(parse_exposition(recorded.exposition), replayed, written.names)


async def test_the_same_answers_give_the_same_recording(sim, tmp_path: Path) -> None:
    url, _ = await sim.start("healthy")
    recorded = await record_round(make_target(url, collectors=EVERYTHING_ON), ["health", "security", "replication"])
    when = datetime(2030, 1, 1, tzinfo=UTC)
    write_recording(tmp_path / "one", recorded, now=when)
    write_recording(tmp_path / "two", recorded, now=when)
    one = {p.relative_to(tmp_path / "one"): text for p, text in _written(tmp_path / "one")}
    two = {p.relative_to(tmp_path / "two"): text for p, text in _written(tmp_path / "two")}
    assert one == two
    [users] = [e["body"] for e in json.loads(one[Path(INDEX)])["entries"] if e["path"] == "/access/api/v2/users"]
    assert '"username": "user-1"' in one[Path(users)], "the users list, renamed"


# -- replay details -----------------------------------------------------------------------------------------------

async def test_replay_matches_query_in_any_order_and_answers_404_otherwise(sim, tmp_path: Path) -> None:
    url, _ = await sim.start("federation-rtfs")
    recorded = await record_round(make_target(url), ["federation", "security"])
    write_recording(tmp_path / "rec", recorded)
    replay_url, state = await sim.replay(tmp_path / "rec")
    [paged, *_] = [a for a in state.recording.answers if a.query.count("&") >= 2]
    reordered = "&".join(reversed(paged.query.split("&")))
    async with httpx.AsyncClient(base_url=replay_url) as client:
        exact = await client.get("/access/api/v2/users?limit=1000")
        assert exact.status_code == 200 and exact.json()["users"]
        assert exact.headers["X-Artifactory-Node-Id"] == "art1"
        other_order = await client.get(f"{paged.path}?{reordered}")
        assert (other_order.status_code, other_order.content) == (paged.status, paged.body)
        missing = await client.get("/artifactory/api/storageinfo", headers={"Authorization": "Bearer wrong"})
        assert missing.status_code == 404
        assert missing.json() == {"errors": [{"status": 404, "message": "Not Found"}]}
        other_query = await client.get("/access/api/v2/users?limit=5")
        assert other_query.status_code == 404
        state.faults.append(Fault(route="/access/api/v2/*", kind="error_500", times=1))
        assert (await client.get("/access/api/v2/users?limit=1000")).status_code == 500, "faults apply to replays"
        assert (await client.get("/access/api/v2/users?limit=1000")).status_code == 200
    assert state.unmatched == ["GET /artifactory/api/storageinfo", "GET /access/api/v2/users?limit=5"]


# -- the command line ---------------------------------------------------------------------------------------------

def _failed_parts(stderr: str) -> set[tuple[str, str, str]]:
    """(collector, endpoint, outcome) of each failed part `once` reports; endpoint "" for a run without parts."""
    found = re.findall(r"^jfrog-exporter: target=\S+ collector=(\S+)(?: endpoint=(\S+))?: (\w+):", stderr, re.M)
    return {(c, e, o) for c, e, o in found}


def test_record_then_replay_then_once_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    collectors = [arg for name in ("health", "storage", "replication", "security") for arg in ("--collector", name)]
    with simulator(tmp_path, "replication") as sim:
        record = run_cli("record", "--url", sim.url, "--out", str(out), "--keep-names", *collectors,
                         env={"JFROG_ACCESS_TOKEN": "simulator-token"})
        assert record.returncode == 0, record.stderr
        assert str(out / INDEX) in record.stdout and f"simulate --replay {out}" in record.stdout
        direct = run_cli("once", "--url", sim.url, *collectors, env={"JFROG_ACCESS_TOKEN": "simulator-token"})
    assert direct.returncode == 0, direct.stderr
    written = "\n".join(text for _, text in _written(out))
    assert all(password not in written for password in PASSWORDS)
    assert "ci-bot" in written, "--keep-names keeps the names"

    with simulator(tmp_path, "healthy", "--replay", str(out)) as replay:
        once = run_cli("once", "--url", replay.url, *collectors, env={"JFROG_ACCESS_TOKEN": "anything"})
        control = httpx.get(replay.url + "/-/simulator").json()
        assert "replayed JPD" in replay.output()
    assert once.returncode == 0, once.stderr
    assert control["unmatched"] == [] and control["answers"] > 0
    assert_same(_retargeted(parse_exposition(direct.stdout)), _retargeted(parse_exposition(once.stdout)))


def _retargeted(samples: Samples) -> Samples:
    """The target label is the URL's host:port, which differs between the simulator and its replay."""
    return {(name, frozenset((k, "jpd" if k == "target" else v) for k, v in labels)): value
            for (name, labels), value in samples.items()}


def test_record_exit_codes(tmp_path: Path) -> None:
    bad = run_cli("record", "--url", "ftp://nowhere", "--out", str(tmp_path / "x"),
                  env={"JFROG_ACCESS_TOKEN": "t"})
    assert bad.returncode == 2 and "configuration error" in bad.stderr
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump({"targets": [{"name": "a", "url": "http://127.0.0.1:1"},
                                                  {"name": "b", "url": "http://127.0.0.1:2"}]}))
    ambiguous = run_cli("record", "--config", str(config), "--out", str(tmp_path / "x"))
    assert ambiguous.returncode == 2 and "--target" in ambiguous.stderr
    nothing = run_cli("record", "--config", str(config), "--target", "a", "--out", str(tmp_path / "x"),
                      "--collector", "health", timeout=120)
    assert nothing.returncode == 1, nothing.stderr
    assert "no part of the round succeeded" in nothing.stderr
    unreadable = run_cli("simulate", "--replay", str(tmp_path / "missing"))
    assert unreadable.returncode == 2 and "recording.json" in unreadable.stderr


# -- recordings from the field ------------------------------------------------------------------------------------

def recordings() -> list[Any]:
    found = sorted(p for p in RECORDINGS.iterdir() if (p / INDEX).is_file()) if RECORDINGS.is_dir() else []
    return [pytest.param(path, id=path.name) for path in found]


@pytest.mark.parametrize("recording", recordings())
def test_recorded_jpd(tmp_path: Path, recording: Path) -> None:
    """A recording dropped into tests/field/recordings/NAME/ replays through `once` as it was recorded:
    the same families, and no part failing that did not fail then."""
    recorded = load_recording(recording)
    config = tmp_path / "config.yaml"
    with simulator(tmp_path, "healthy", "--replay", str(recording)) as replay:
        config.write_text(yaml.safe_dump({"targets": [{
            "name": recorded.target or "recorded", "url": replay.url, "auth": {"token_env": "REPLAY_TOKEN"},
            **recorded.settings,
        }]}))
        once = run_cli("once", "--config", str(config), *[a for c in recorded.round for a in ("--collector", c)],
                       env={"REPLAY_TOKEN": "anything"})
    assert once.returncode in (0, 1), once.stderr
    failed_then = {(c, e, o) for c, run in recorded.round.items() for e, o in [*run.parts.items(), ("", run.outcome)]
                   if Outcome(o) not in SUCCESSFUL_OUTCOMES}
    assert _failed_parts(once.stderr) <= failed_then, once.stderr
    assert "internal error" not in once.stderr
    if not failed_then:
        assert once.returncode == 0, once.stderr
    exposed = {family.name for family in text_string_to_metric_families(once.stdout) if family.samples}
    for collector, run in recorded.round.items():
        missing = set(run.families) - exposed
        assert not missing, f"{collector}: {sorted(missing)}"


def test_a_field_recording_is_there() -> None:
    assert recordings(), f"{RECORDINGS} holds the healthy scenario's recording as the first regression case"
