"""A real Prometheus server (the Debian package) for end-to-end tests.

    with prometheus_server(tmp_path, scrape_urls=[exp.url + "/metrics"], interval="1s") as prom:
        prom.wait_for_scrapes(2)
        assert prom.scrape_errors() == {}
        prom.query('up{job="exporter"}')

It listens on a free loopback port, scrapes the given URLs (one job per
scheme and path, so several exporters share the job ``job``), evaluates the
given rule files, and stores its data under ``tmp``. This Prometheus asks
for OpenMetrics first; scrape ``text_format_proxy(url)`` as well to have the
text format 0.0.4 ingested too.

The Debian package's Prometheus (2.42) neither fails a scrape nor counts a
drop when one exposition repeats a series (the later sample silently
replaces the earlier one), so :func:`exposition_problems` checks the
exposition itself: promtool's parser, the strict OpenMetrics parser, and
duplicate series. A scrape that
Prometheus rejects shows in ``lastError`` of its target; samples it drops
without failing the scrape (duplicate series, out of order) show in its own
counters, which :meth:`PrometheusServer.scrape_problems` reads too.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ensure_prometheus, free_port

T = TypeVar("T")

#: Prometheus's own counters of samples it dropped from scrapes that otherwise succeeded
DROPPED_SAMPLE_COUNTERS = (
    "prometheus_target_scrapes_sample_duplicate_timestamp_total",
    "prometheus_target_scrapes_sample_out_of_order_total",
    "prometheus_target_scrapes_sample_out_of_bounds_total",
    "prometheus_target_scrapes_exceeded_sample_limit_total",
    "prometheus_target_scrapes_exceeded_body_size_limit_total",
    "prometheus_target_scrapes_exemplar_out_of_order_total",
)


def promtool_check(text: str) -> tuple[list[str], list[str]]:
    """``promtool check metrics`` on a text-format exposition: (parse errors, lint findings)."""
    promtool = ensure_prometheus()
    check = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True)
    lines = [line.strip() for line in (check.stdout + check.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    return errors, [line for line in lines if line not in errors]


def _duplicates(families: Iterable[Any]) -> list[str]:
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    problems = []
    for family in families:
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            if key in seen:
                problems.append(f"duplicate series {sample.name}{dict(sample.labels)}")
            seen.add(key)
    return problems


def exposition_problems(text: str, openmetrics: str | None = None) -> list[str]:
    """Everything that would make a scrape fail or lose data; lint findings are not problems.

    ``text`` is a text-format exposition, ``openmetrics`` the same data as
    OpenMetrics (optional).
    """
    problems, _ = promtool_check(text)
    try:
        problems += _duplicates(text_string_to_metric_families(text))
    except ValueError as exc:
        problems.append(f"text format: {exc}")
    types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE "))
    problems += [f"second TYPE line for {name}" for name, count in sorted(types.items()) if count > 1]
    if openmetrics is not None:
        try:
            problems += _duplicates(parse_openmetrics(openmetrics))
        except ValueError as exc:
            problems.append(f"OpenMetrics: {exc}")
    return problems


class PrometheusError(AssertionError):
    """The server did not start, or its API answered with an error."""


@dataclass
class PrometheusServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    config: Path

    # -- HTTP API ------------------------------------------------------------
    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; returns ``data`` of a successful answer."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"{path}: HTTP {response.status_code}: {response.text[:200]}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: ``[{"metric": {...labels}, "value": float}, ...]`` (vector results)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": float(data["result"][1])}]
        return [{"metric": r["metric"], "value": float(r["value"][1])} for r in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of a query, or None when it returns nothing."""
        result = self.query(expr)
        if len(result) > 1:
            raise AssertionError(f"{expr} returned {len(result)} series: {result}")
        return result[0]["value"] if result else None

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", state="active")["activeTargets"])

    def metadata(self, metric: str) -> list[dict[str, Any]]:
        """Type, help and unit of a metric as Prometheus learnt them from the scrapes."""
        return list(self.api("metadata", metric=metric).get(metric, []))

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    # -- scrape health ---------------------------------------------------------
    def scrape_errors(self) -> dict[str, str]:
        """``scrapeUrl -> lastError`` of every target whose last scrape failed."""
        return {t["scrapeUrl"]: t["lastError"] for t in self.targets() if t.get("lastError")}

    def self_metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = httpx.get(self.url + "/metrics", timeout=10)
        response.raise_for_status()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def scrape_problems(self) -> dict[str, float | str]:
        """Failed scrapes (``lastError``) and samples Prometheus dropped; empty when all is well."""
        problems: dict[str, float | str] = dict(self.scrape_errors())
        for (name, _), value in self.self_metrics().items():
            if name in DROPPED_SAMPLE_COUNTERS and value:
                problems[name] = problems.get(name, 0.0) + value  # type: ignore[operator]
        return problems

    def wait_for_scrapes(self, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until every target was scraped ``count`` times (counted from now); returns the targets."""
        counts: dict[str, int] = {}
        last: dict[str, str] = {}

        def done() -> list[dict[str, Any]] | None:
            targets = self.targets()
            if not targets:
                return None
            for target in targets:
                url, scraped = target["scrapeUrl"], target.get("lastScrape", "")
                if scraped.startswith("0001-01-01"):
                    continue
                if last.get(url) != scraped:
                    counts[url] = counts.get(url, -1) + 1  # the first sighting only marks the start
                    last[url] = scraped
            return targets if all(counts.get(t["scrapeUrl"], 0) >= count for t in targets) else None

        return self.wait_until(done, timeout, f"{count} scrape(s) of every target")

    def wait_until(self, check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
        """Poll ``check`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: no {what} within {timeout}s; its log:\n{self.output()}")
            if self.proc.poll() is not None:
                raise PrometheusError(f"Prometheus exited with {self.proc.returncode}; its log:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def _jobs(scrape_urls: Sequence[str], job: str) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for url in scrape_urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{url!r} is not an http(s) URL")
        grouped.setdefault((parts.scheme, parts.path or "/metrics"), []).append(parts.netloc)
    jobs = []
    for i, ((scheme, path), hosts) in enumerate(grouped.items()):
        jobs.append({
            "job_name": job if i == 0 else f"{job}-{i + 1}",
            "scheme": scheme,
            "metrics_path": path,
            "static_configs": [{"targets": hosts}],
        })
    return jobs


@contextlib.contextmanager
def prometheus_server(
    tmp: Path,
    scrape_urls: Sequence[str] = (),
    rule_files: Sequence[Path | str] = (),
    interval: str = "1s",
    job: str = "exporter",
    extra_scrape_configs: Sequence[dict[str, Any]] = (),
    timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Start Prometheus on a free loopback port; stop it (and keep its log in ``tmp``) on exit."""
    ensure_prometheus()
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusError("the prometheus binary is not installed")
    home = tmp / f"prometheus-{free_port()}"
    home.mkdir(parents=True)
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [*_jobs(scrape_urls, job), *extra_scrape_configs],
    }
    config_path = home / "prometheus.yml"
    # JSON is YAML, and needs no YAML writer.
    config_path.write_text(json.dumps(config, indent=2))
    port = free_port()
    log = home / "prometheus.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=info"],
            stdout=handle, stderr=subprocess.STDOUT, cwd=home,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc, log, config_path)
    try:
        def ready() -> bool:
            try:
                return httpx.get(server.url + "/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        server.wait_until(ready, timeout, "ready answer")
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def text_format_proxy(upstream: str) -> Iterator[str]:
    """A loopback URL serving ``upstream`` fetched as text format 0.0.4, whatever the scraper asks for.

    Prometheus prefers OpenMetrics when an exporter offers it; scraping
    through this proxy makes a real Prometheus ingest the text rendering.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                response = httpx.get(upstream, headers={"Accept": "text/plain;version=0.0.4"}, timeout=10)
                status, body = response.status_code, response.content
                content_type = response.headers.get("content-type", "text/plain")
            except httpx.HTTPError as exc:
                status, body, content_type = 502, str(exc).encode(), "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="text-format-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
