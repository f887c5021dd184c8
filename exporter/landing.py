"""The landing page: what is wrong with each JPD, at a glance.

One card per target, failing first: the JPD's own state (up, ready, router
services, license, filestore), whether the exporter can see it (URL,
credentials, failing parts, one line per distinct reason), the age of its
data, and per collector its last runs. Below, the effective configuration
without a secret.

Plain server-rendered HTML that works offline: no external asset, one
inline style and one inline script, both allowed by their hash in the
Content-Security-Policy sent with the page (no 'unsafe-inline'). The script
reloads the page every REFRESH_SECONDS unless a section is open; without
scripts a meta refresh does it. Every text from the configuration or a JPD
is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from exporter import __version__
from exporter.config import AuthConfig, TargetConfig
from exporter.outcomes import SUCCESSFUL_OUTCOMES
from exporter.snapshot import RunRecord, RunSummary, SnapshotStore
from exporter.status import (
    FILESTORE_WARNING_RATIO,
    LICENSE_WARNING_DAYS,
    Failure,
    State,
    TargetStatus,
    judge_all,
    license_text,
)
from exporter.values import safe_url

REFRESH_SECONDS = 15
#: characters of a reason kept in its tooltip; the line itself is cut to the card's width
TOOLTIP_CHARS = 1000
#: endpoints named in a failure line before "and N more"
WHERE_SHOWN = 3

STATE_LABELS = {
    State.DOWN: "down",
    State.DEGRADED: "degraded",
    State.EXPORTER: "exporter-side problem",
    State.PENDING: "not collected yet",
    State.HEALTHY: "healthy",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
a { color: #0969da; }
.links, .note { color: #59636e; margin: .2rem 0; }
#summary { font-size: 1.1rem; font-weight: 600; margin: .6rem 0 .8rem; }
#summary .down, #summary .degraded, #summary .exporter { padding: 0 .3rem; border-radius: 3px; }
#summary .down { background: #ffebe9; color: #a40e26; }
#summary .degraded { background: #fff1e5; color: #953800; }
#summary .exporter { background: #fbefff; color: #6e40c9; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(18rem, 1fr)); gap: .6rem; }
.card { background: #fff; border: 1px solid #d1d9e0; border-left: 6px solid #1a7f37; border-radius: 6px;
  padding: .5rem .7rem; min-width: 0; }
.card:has(details[open]) { grid-column: 1 / -1; }
.card.s-down { border-left-color: #cf222e; background: #fff8f7; }
.card.s-degraded { border-left-color: #e16f24; background: #fffaf4; }
.card.s-exporter { border-left-color: #8250df; background: #fcf8ff; }
.card.s-pending { border-left-color: #8c959f; }
.card h2 { font-size: 1.05rem; margin: 0; display: inline; overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: .75rem; font-weight: 600; text-transform: uppercase; color: #fff;
  background: #1a7f37; border-radius: 3px; padding: 0 .35rem; margin-right: .4rem; vertical-align: 2px; }
.s-down .badge { background: #cf222e; } .s-degraded .badge { background: #bc4c00; }
.s-exporter .badge { background: #8250df; } .s-pending .badge { background: #6e7781; }
.url { margin: .1rem 0; color: #59636e; overflow-wrap: anywhere; }
.facts { list-style: none; padding: 0; margin: .3rem 0; display: flex; flex-wrap: wrap; gap: .25rem; }
.facts li { border: 1px solid #d1d9e0; border-radius: 10px; padding: 0 .5rem; background: #f6f8fa; }
.facts li.ok { border-color: #4ac26b; background: #dafbe1; }
.facts li.bad { border-color: #ff8182; background: #ffebe9; color: #a40e26; font-weight: 600; }
.facts li.warn { border-color: #fb8f44; background: #fff1e5; color: #953800; font-weight: 600; }
.s-healthy .facts, .s-healthy .url, .s-healthy summary { font-size: .8rem; }
.s-healthy .facts li { padding: 0 .35rem; }
.facts meter { width: 3rem; height: .8rem; vertical-align: middle; }
.failures { list-style: none; padding: 0; margin: .3rem 0; }
.failures li, .oneline { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.failures li { color: #a40e26; }
.failures .outcome { font-weight: 600; }
.failures .where, .failures .age { color: #59636e; }
details { margin-top: .3rem; }
summary { cursor: pointer; color: #0969da; }
table { border-collapse: collapse; margin: .3rem 0 .6rem; }
table.recent { width: 100%; table-layout: fixed; }
td, th { border: 1px solid #d1d9e0; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.reason { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.o-ok { color: #1a7f37; } .o-fail { color: #cf222e; font-weight: 600; } .o-pending { color: #9a6700; }
col.c-collector { width: 7rem; } col.c-time { width: 7.5rem; }
col.c-outcome { width: 8rem; } col.c-duration { width: 5.5rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
#config table { background: #fff; }
#config td { overflow-wrap: anywhere; }
"""

SCRIPT = f"""
(function () {{
  document.documentElement.setAttribute("data-refresh", "{REFRESH_SECONDS}");
  setInterval(function () {{
    // An open section would close on reload: wait until it is closed, and while the tab is hidden.
    if (!document.querySelector("details[open]") && document.visibilityState !== "hidden") {{
      location.reload();
    }}
  }}, {REFRESH_SECONDS * 1000});
}})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: no source at all but the page's own style and script, by hash; img-src only for the empty favicon
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def e(value: object) -> str:
    """Escaped for text and for quoted attributes."""
    return html.escape(str(value), quote=True)


def one_line(text: str, limit: int = TOOLTIP_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def age(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    seconds = max(0.0, now - ts)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def ago(ts: float | None, now: float) -> str:
    return "never" if ts is None else f"{age(ts, now)} ago"


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    return f"{seconds:g}s" if seconds < 60 or seconds % 60 else f"{seconds / 60:g}m"


# -- the summary ---------------------------------------------------------------------------------


def summary(cards: Sequence[TargetStatus]) -> str:
    """The line at the top: how many targets are in which state; the counts are data attributes for tools."""
    counts = {state: sum(1 for c in cards if c.state is state) for state in State}
    words = {State.HEALTHY: "healthy", State.DEGRADED: "degraded", State.DOWN: "down",
             State.EXPORTER: "with exporter-side problems", State.PENDING: "not collected yet"}
    # A state is marked in its colour only when some target is in it: a red "0 down" would alarm for nothing.
    parts = [f"<span class='{state.value if counts[state] else 'none'}'>{counts[state]} {words[state]}</span>"
             for state in words if state is not State.PENDING or counts[state]]
    data = " ".join(f"data-{state.value}='{counts[state]}'" for state in State)
    noun = "target" if len(cards) == 1 else "targets"
    return f"<p id='summary' data-targets='{len(cards)}' {data}>{len(cards)} {noun}: {', '.join(parts)}</p>"


def title(cards: Sequence[TargetStatus]) -> str:
    """The tab's title names what is wrong, so a pinned tab tells it too."""
    bad = [(state, sum(1 for c in cards if c.state is state)) for state in (State.DOWN, State.DEGRADED, State.EXPORTER)]
    wrong = ", ".join(f"{n} {STATE_LABELS[state] if state is not State.EXPORTER else 'exporter-side'}"
                      for state, n in bad if n)
    return f"JFrog Exporter: {wrong}" if wrong else "JFrog Exporter: all healthy"


# -- a card --------------------------------------------------------------------------------------


def fact(text: str, css: str = "") -> str:
    cls = f" class='{css}'" if css else ""
    return f"<li{cls}>{e(text)}</li>"


def jpd_facts(card: TargetStatus) -> list[str]:
    """The JPD's own state, each fact marked good or bad."""
    items = []
    if card.up is None:
        items.append(fact("up: unknown"))
    else:
        items.append(fact("up", "ok") if card.up else fact("DOWN", "bad"))
    if card.ready is not None:
        items.append(fact("ready", "ok") if card.ready else fact("not ready", "bad"))
    if card.unhealthy_services:
        shown = ", ".join(card.unhealthy_services)
        items.append(fact(f"{len(card.unhealthy_services)} of {card.services} services unhealthy: {shown}", "bad"))
    elif card.services:
        items.append(fact(f"{card.services} services healthy", "ok"))
    if card.up is not False:  # a JPD that is down takes its services with it: one DOWN says it
        items.extend(fact(problem, "bad") for problem in card.service_problems)
    if card.license is not None:
        warn = card.license.days_left < LICENSE_WARNING_DAYS
        node = f" ({card.license.node_id})" if card.license.node_id else ""
        text = license_text(card.license) if warn else f"license: {card.license.days_left:.0f} days left"
        items.append(fact(text + node, "warn" if warn else ""))
    if card.filestore is not None:
        store = card.filestore
        css = "warn" if store.used_ratio >= FILESTORE_WARNING_RATIO else ""
        meter = (f" <meter min='0' max='1' low='{FILESTORE_WARNING_RATIO}' high='{FILESTORE_WARNING_RATIO}' "
                 f"optimum='0' value='{store.used_ratio:.3f}'></meter>")
        cls = f" class='{css}'" if css else ""
        items.append(f"<li{cls}>{e(f'filestore {store.used_ratio:.0%} of {size(store.size_bytes)}')}{meter}</li>")
    if card.version:
        items.append(fact(f"Artifactory {card.version}"))
    return items


def exporter_facts(card: TargetStatus, now: float) -> list[str]:
    """Whether the exporter sees the JPD as it should, and how old what it shows is."""
    items = []
    if card.misconfigured:
        items.append(fact("URL is not a JFrog Platform", "bad"))
    if card.auth == "anonymous":
        items.append(fact("no credentials configured"))
    elif card.credentials_accepted is not None:
        items.append(fact("credentials accepted", "ok") if card.credentials_accepted else
                     fact("credentials rejected", "bad"))
    if card.oldest_data is not None and card.newest_data is not None:
        newest, oldest = age(card.newest_data, now), age(card.oldest_data, now)
        span = newest if newest == oldest else f"{newest}–{oldest}"
        items.append(fact(f"data {span} old", "warn" if card.failures else ""))
    return items


def failure_line(failure: Failure, now: float) -> str:
    """One line per distinct reason, however many parts share it; the whole text in its tooltip."""
    where = ", ".join(failure.where[:WHERE_SHOWN])
    if len(failure.where) > WHERE_SHOWN:
        where += f" and {len(failure.where) - WHERE_SHOWN} more"
    kept = "never collected" if failure.data_from is None else f"data from {age(failure.data_from, now)} ago"
    full = one_line(f"{failure.outcome}: {failure.reason} — {', '.join(failure.where)} ({kept})")
    return (f"<li title='{e(full)}'><span class='outcome'>{e(failure.outcome)}</span>: {e(one_line(failure.reason))}"
            f" <span class='where'>— {e(where)}</span> <span class='age'>({e(kept)})</span></li>")


def outcome_css(outcome: str | None, succeeded: bool) -> str:
    if outcome is None:
        return "o-pending"
    return "o-ok" if succeeded else "o-fail"


def collectors_table(runs: Mapping[str, RunRecord], now: float) -> str:
    rows = []
    for collector, run in sorted(runs.items()):
        outcome = run.outcome.value if run.outcome else "pending"
        interval = duration(run.interval)
        if run.interval != run.base_interval:
            interval += f" (backed off from {duration(run.base_interval)})"
        rows.append(
            f"<tr><td>{e(collector)}</td><td class='{outcome_css(run.outcome, run.succeeded)}'>{e(outcome)}</td>"
            f"<td>{e(ago(run.last_success, now))}</td><td>{run.duration:.2f}s</td><td>{e(interval)}</td>"
            f"<td>{e(clock(run.next_run)) if run.next_run else ''}</td></tr>"
        )
    return ("<table class='collectors'><tr><th>collector</th><th>last outcome</th><th>every part last succeeded</th>"
            "<th>duration</th><th>interval</th><th>next run</th></tr>" + "".join(rows) + "</table>")


def recent_table(runs: Mapping[str, RunRecord]) -> str:
    """The last runs of every collector, newest first, the collector named once per group."""
    rows = []
    for collector, run in sorted(runs.items()):
        for index, past in enumerate(run.recent):
            name = f"<td rowspan='{len(run.recent)}'>{e(collector)}</td>" if index == 0 else ""
            rows.append(f"<tr data-collector='{e(collector)}'>{name}{recent_row(past)}</tr>")
    if not rows:
        return "<p>No run yet.</p>"
    return ("<table class='recent'><caption>Last runs of each collector, newest first</caption><colgroup>"
            "<col class='c-collector'><col class='c-time'><col class='c-outcome'><col class='c-duration'><col>"
            "</colgroup><tr><th>collector</th><th>time</th><th>outcome</th><th>duration</th><th>reason</th></tr>"
            + "".join(rows) + "</table>")


def recent_row(run: RunSummary) -> str:
    succeeded = run.outcome in SUCCESSFUL_OUTCOMES
    reason = one_line(run.reason)
    return (f"<td>{e(clock(run.at))}</td><td class='{outcome_css(run.outcome.value, succeeded)}'>"
            f"{e(run.outcome.value)}</td><td>{run.duration:.2f}s</td>"
            f"<td class='reason' title='{e(reason)}'>{e(reason)}</td>")


def card(status: TargetStatus, runs: Mapping[str, RunRecord], now: float) -> str:
    """One target: its state (why, in the badge's tooltip: the marked facts say it too), facts, failures, runs."""
    failures = "".join(failure_line(f, now) for f in status.failures)
    failing = sum(1 for run in runs.values() if run.outcome is not None and not run.succeeded)
    runs_summary = f"{len(runs)} collectors" + (f", {failing} failing" if failing else "") + "; their last runs"
    return (
        f"<section class='card s-{status.state.value}' id='target-{e(status.name)}' data-target='{e(status.name)}' "
        f"data-state='{status.state.value}'>"
        f"<span class='badge' title='{e('; '.join(status.why))}'>{e(STATE_LABELS[status.state])}</span>"
        f"<h2>{e(status.name)}</h2><p class='url'>{e(safe_url(status.url)) or '&nbsp;'}</p>"
        f"<ul class='facts'>{''.join(jpd_facts(status) + exporter_facts(status, now))}</ul>"
        + (f"<ul class='failures'>{failures}</ul>" if failures else "")
        + f"<details class='runs'><summary>{e(runs_summary)}</summary>{collectors_table(runs, now)}"
        f"{recent_table(runs)}</details></section>"
    )


# -- the configuration ---------------------------------------------------------------------------


def describe_auth(auth: AuthConfig) -> str:
    """How the target authenticates and where the secret comes from; never the secret."""
    if auth.token_file:
        return f"token from file {auth.token_file}"
    if auth.token_env:
        return f"token from environment variable {auth.token_env}"
    if auth.kind == "token":
        return "token"
    if auth.kind == "basic":
        source = (f" from file {auth.password_file}" if auth.password_file else
                  f" from environment variable {auth.password_env}" if auth.password_env else "")
        return f"basic: user {auth.username}, password{source}"
    return "none (ping, readiness and router health only)"


def describe_collectors(target: str, records: Mapping[tuple[str, str], RunRecord]) -> str:
    out = []
    for (name, collector), run in sorted(records.items()):
        if name == target:
            backed_off = f" (now {duration(run.interval)})" if run.interval != run.base_interval else ""
            out.append(f"{collector} every {duration(run.base_interval)}{backed_off}")
    return ", ".join(out)


def config_row(target: TargetConfig, records: Mapping[tuple[str, str], RunRecord]) -> str:
    tls = "verification off" if target.tls.insecure_skip_verify else (
        f"CA {target.tls.ca_file}" if target.tls.ca_file else "system CAs")
    repos = "; ".join(
        [f"include {', '.join(target.repos.include)}"] * bool(target.repos.include)
        + [f"exclude {', '.join(target.repos.exclude)}"] * bool(target.repos.exclude)) or "all"
    cells = (target.name, safe_url(target.url), describe_auth(target.auth), duration(target.timeout),
             target.max_concurrency, target.retries, tls, repos, f"{target.max_series:,}",
             describe_collectors(target.name, records))
    return "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in cells) + "</tr>"


def config_view(targets: Sequence[TargetConfig], records: Mapping[tuple[str, str], RunRecord]) -> str:
    if not targets:
        return ""
    return (
        "<details id='config'><summary>Effective configuration (secrets are never shown)</summary><table>"
        "<tr><th>target</th><th>URL</th><th>auth</th><th>timeout</th><th>concurrency</th><th>retries</th>"
        "<th>TLS</th><th>repositories</th><th>max series</th><th>collectors</th></tr>"
        + "".join(config_row(t, records) for t in targets) + "</table></details>"
    )


# -- the page ------------------------------------------------------------------------------------


def landing_page(store: SnapshotStore, targets: Sequence[TargetConfig] = (), now: float | None = None) -> str:
    """The whole page, from one reference to each of the store's published mappings."""
    now = time.time() if now is None else now
    records = store.view()
    cards = judge_all(store.readings(), records, now)
    by_target: dict[str, dict[str, RunRecord]] = {}
    for (target, collector), run in records.items():
        by_target.setdefault(target, {})[collector] = run
    payload = store.payload
    rendered = (f"{payload.series:,} series, rendered {age(payload.rendered_at, now)} ago in "
                f"{payload.render_seconds * 1000:.0f} ms" if payload else "nothing rendered yet")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title(cards))}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>
<style>{STYLE}</style></head>
<body>
<h1>JFrog Exporter {e(__version__)}</h1>
<p class="links"><a href="/metrics">/metrics</a> ({e(rendered)}) &middot; <a href="/-/healthy">/-/healthy</a>
&middot; <a href="/-/ready">/-/ready</a></p>
{summary(cards)}
<p class="note">Collected in the background; a failed part keeps its last good data, whose age is shown.
As of {e(clock(now))}; refreshes every {REFRESH_SECONDS} s while no section is open.</p>
<main class="cards">
{"".join(card(c, by_target.get(c.name, {}), now) for c in cards)}
</main>
{config_view(targets, records)}
<script>{SCRIPT}</script>
</body></html>
"""
