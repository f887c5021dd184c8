"""Command line: serve, once, record, simulate, demo, reference."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from exporter import __version__, servingprocess
from exporter.collectors.registry import COLLECTORS
from exporter.config import (
    DEFAULT_LISTEN,
    AuthConfig,
    ConfigError,
    ExporterConfig,
    TargetConfig,
    load_config,
    load_log_settings,
    parse_listen,
)
from exporter.httpserver import SHUTDOWN_TIMEOUT, HttpServer
from exporter.logs import setup_logging
from exporter.outcomes import SUCCESSFUL_OUTCOMES
from exporter.reload import Reloader, log_shard
from exporter.scheduler import CollectionThread, Engine, tune_garbage_collector
from exporter.server import ServingStats, build_app
from exporter.snapshot import RunRecord

log = logging.getLogger("exporter")

EXIT_CONFIG = 2

_ENV_HELP = """\
environment (flags take precedence):
  JFROG_URL                 platform base URL, e.g. https://acme.jfrog.io
  JFROG_ACCESS_TOKEN        access token (bearer), or JFROG_ACCESS_TOKEN_FILE
  JFROG_USERNAME            with JFROG_PASSWORD or JFROG_PASSWORD_FILE (basic auth)
  JFROG_EXPORTER_CONFIG     YAML file with several targets (same as --config)
  JFROG_EXPORTER_LISTEN     HOST:PORT to serve on (same as --listen)
  JFROG_EXPORTER_SHARD      INDEX/COUNT or auto/COUNT: serve watches only its shard's targets (same as --shard)
  JFROG_EXPORTER_LOG_LEVEL  debug, info, warning or error (same as --log-level)
  JFROG_EXPORTER_LOG_FORMAT text or json (same as --log-format)
  JFROG_EXPORTER_DEBUG_LIBRARIES=1  with debug, also the HTTP and scheduler libraries' lines
"""


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML file with one or more targets")
    parser.add_argument("--url", help="platform base URL of a single target (overrides JFROG_URL)")
    parser.add_argument("--collector", action="append", metavar="NAME", choices=list(COLLECTORS),
                        help="run exactly these collectors, optional ones included (repeatable); "
                        f"one of: {', '.join(COLLECTORS)}")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="text for people, json for log pipelines: one object per line (default text)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jfrog-exporter",
        description="Prometheus exporter for the JFrog Platform: collects in the background, "
        "serves the last complete snapshot instantly, watches several JPDs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_ENV_HELP,
    )
    parser.add_argument("--version", action="version", version=f"jfrog-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="collect on schedule and serve /metrics",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_ENV_HELP,
                           description="Run the scheduled collectors for every target and serve HTTP.")
    _add_target_flags(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve on (default {DEFAULT_LISTEN})")
    serve.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                       help="exporter-toolkit web configuration (TLS, basic auth) for the HTTP endpoints")
    serve.add_argument("--shard", metavar="INDEX/COUNT",
                       help="watch only the targets whose name hashes to shard INDEX of COUNT, so that COUNT "
                       "processes over one configuration share its targets; auto/COUNT takes INDEX from the "
                       "host name's -<ordinal> suffix (a StatefulSet's pod)")
    serve.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                       help="serve POST /-/reload (behind the web configuration's auth), as SIGHUP does")
    serve.add_argument("--web.serving-process", dest="serving_process", choices=servingprocess.MODES,
                       default="auto",
                       help="own: answer HTTP from a process of its own, so that collecting never delays a "
                       "scrape; shared: from a thread of the collecting process (less memory); auto (default): "
                       f"own from {servingprocess.AUTO_TARGETS} targets on")

    once = sub.add_parser("once", help="collect once, print the metrics, exit 0 if every collector succeeded",
                          formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_ENV_HELP,
                          description="Run every enabled collector once and print the exposition text. "
                          "Exit code 0 when every collector succeeded (an endpoint the edition lacks counts "
                          "as success), 1 otherwise; 2 for an invalid configuration.")
    _add_target_flags(once)

    record = sub.add_parser(
        "record", help="record what the JPD answers to one round of the collectors, scrubbed of secrets",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_ENV_HELP,
        description="Run the enabled collectors (twice, so that those counting from a watermark make every "
        "call) and write every answer the JPD gave to DIR: recording.json and one file per body. Credentials, "
        "secrets, user-info in URLs and tokens are removed, user names and e-mails replaced by placeholders. "
        "Replay it with `simulate --replay DIR`. Exit code 0 when recorded, 1 when no part of the round "
        "succeeded, 2 for an invalid configuration.")
    _add_target_flags(record)
    record.add_argument("--out", required=True, metavar="DIR", help="directory to write the recording to")
    record.add_argument("--target", metavar="NAME", help="the target to record when --config names several")
    record.add_argument("--keep-names", action="store_true",
                        help="keep user names and e-mail addresses (secrets are removed all the same)")

    # The simulator is imported only by the commands that run it, never by serve or once.
    simulate = sub.add_parser(
        "simulate", help="run a simulated JPD",
        description="Serve a simulated JFrog Platform Deployment. Without credential flags it accepts "
        "the token 'simulator-token', the user 'admin' with password 'password', and the non-admin token "
        "'simulator-reader-token' (403 on admin APIs).",
    )
    simulate.add_argument("--scenario", default="healthy",
                          help="data and behaviour to simulate (default healthy; an unknown name lists them)")
    simulate.add_argument("--replay", metavar="DIR",
                          help="serve a recording made by `record` instead of a scenario (any credentials accepted)")
    simulate.add_argument("--listen", default="127.0.0.1:8081", metavar="HOST:PORT",
                          help="address to serve on (default 127.0.0.1:8081)")
    simulate.add_argument("--token", help="the access token to require (default 'simulator-token')")
    simulate.add_argument("--user", help="the user for basic auth (default 'admin')")
    simulate.add_argument("--password", help="the password for basic auth (default 'password')")
    simulate.add_argument("--scale", type=int, metavar="REPOS",
                          help="repositories of the large scenario (default 10000); the rest grows with it")
    simulate.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    simulate.add_argument("--fault", action="append", default=[], metavar="ROUTE=KIND",
                          help="inject a fault on the routes matching ROUTE (a glob) until cleared; KIND is one of: "
                          "error_500, html_502, unavailable_503, throttled_429, timeout, slow_body, reset, "
                          "truncated_json, wrong_type, plain_text, empty, huge")
    simulate.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")

    reference = sub.add_parser(
        "reference", help="print the metrics reference (Markdown) generated from the collectors",
        description="Print every family the collectors declare (the source of docs/metrics.md), or with "
        "--permissions every endpoint they read and the permission it needs (the table in README.md).")
    reference.add_argument("--permissions", action="store_true", help="print the permissions table instead")

    demo = sub.add_parser("demo", help="a simulated JPD pair and the exporter watching them, in one process",
                          description="Start two simulated JPDs (healthy and degraded) and the exporter "
                          "watching both, then print the URLs to open.")
    demo.add_argument("--listen", default="127.0.0.1:9743", metavar="HOST:PORT",
                      help="exporter address (default 127.0.0.1:9743)")
    demo.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    try:
        if args.command in ("serve", "once", "record"):
            if args.command == "serve":  # long-lived: full collections on the engine's schedule
                tune_garbage_collector()
            return _run_exporter_command(args)
        if args.command == "reference":
            from exporter.reference import generate

            setup_logging("error")
            sys.stdout.write(generate(permissions=args.permissions))
            return 0
        if args.command == "simulate":
            setup_logging(args.log_level)
            return asyncio.run(_simulate(args))
        setup_logging(args.log_level)
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        return 130


def _run_exporter_command(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"config": args.config, "url": args.url}
    if args.command == "serve":
        overrides["listen"] = args.listen
        overrides["web_config_file"] = args.web_config_file
        overrides["shard"] = args.shard
    # Logging first, so what loading the configuration says (URL normalised) is in the chosen format.
    try:
        logging_settings = load_log_settings(args.log_level, args.log_format)
        setup_logging(logging_settings.log_level, logging_settings.log_format, logging_settings.debug_libraries)
        config = load_config(overrides)
    except ConfigError as exc:
        print(f"jfrog-exporter: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    json_summary = logging_settings.log_format == "json"
    if config.web_config_file:
        from exporter.webconfig import load_web_config

        try:
            load_web_config(config.web_config_file)
        except ConfigError as exc:
            print(f"jfrog-exporter: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        if args.command == "once":
            return asyncio.run(_once(config, args.collector, json_summary))
        if args.command == "record":
            return asyncio.run(_record(config, args, json_summary))
        serving = None
        if servingprocess.wanted(args.serving_process, len(config.targets)):
            host, port = parse_listen(config.listen)
            serving = servingprocess.start_serving_process(
                host, port, config.web_config_file, args.enable_lifecycle, logging_settings.log_level,
                logging_settings.log_format)
        return asyncio.run(_serve(config, args.collector, Reloader(overrides, config), args.enable_lifecycle,
                                  serving))
    except ConfigError as exc:
        print(f"jfrog-exporter: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


async def _once(config: ExporterConfig, only: list[str] | None, json_summary: bool = False) -> int:
    # The summary below says each failed part once: the engine does not log them as well.
    engine = Engine(config.targets, only, report_failures=False)
    started = time.perf_counter()
    try:
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    payload = engine.store.payload
    assert payload is not None
    sys.stdout.write(payload.text.decode())
    sys.stdout.flush()
    runs = engine.store.view()
    failed = _report_failures(runs.items(), json_summary)
    _summarise_once(len(runs), failed, time.perf_counter() - started, payload.series, json_summary)
    return 1 if failed else 0


def _report_failures(runs: Iterable[tuple[tuple[str, str], RunRecord]], json_summary: bool = False) -> list[str]:
    """One line on standard error per failed part: the endpoint to look at and why; returns the failed parts.

    In JSON, one object per failed part with its target, collector, endpoint, outcome and reason as fields.
    """
    failed = []
    for (target, collector), run in runs:
        if run.outcome in SUCCESSFUL_OUTCOMES:
            continue
        for part in run.failed_parts or [None]:
            endpoint = part.endpoint if part else ""
            outcome, reason = (part.outcome, part.reason.removeprefix(f"{part.endpoint}: ")) if part else \
                (run.outcome, run.reason)
            failed.append(f"{target}/{collector}")
            if json_summary:
                fields = {"target": target, "collector": collector, "outcome": str(outcome), "reason": reason}
                log.warning("%s failed: %s: %s", endpoint or collector, outcome, reason,
                            extra=fields | ({"endpoint": endpoint} if endpoint else {}))
                continue
            where = f" endpoint={endpoint}" if endpoint else ""
            print(f"jfrog-exporter: target={target} collector={collector}{where}: {outcome}: {reason}",
                  file=sys.stderr)
    return failed


def _summarise_once(collectors: int, failed: list[str], duration: float, series: int, json_summary: bool) -> None:
    """The last line: how many collectors and parts failed (in JSON, always, so a pipeline sees the end)."""
    failed_collectors = len(set(failed))
    parts = f"{len(failed)} part{'' if len(failed) == 1 else 's'}"
    if json_summary:
        fields = {"collectors": collectors, "failed_collectors": failed_collectors, "failed_parts": len(failed),
                  "duration_seconds": round(duration, 3), "series": series}
        log.log(logging.WARNING if failed else logging.INFO, "once: %d of %d collectors failed (%s), %s series",
                failed_collectors, collectors, parts, f"{series:,}", extra=fields)
    elif failed:
        print(f"jfrog-exporter: {failed_collectors} of {collectors} collectors failed ({parts})", file=sys.stderr)


async def _record(config: ExporterConfig, args: argparse.Namespace, json_summary: bool = False) -> int:
    from exporter.recording import RecordingError, record_round, write_recording

    names = [t.name for t in config.targets]
    if args.target is not None and args.target not in names:
        raise ConfigError(f"--target: no target named {args.target!r}; configured: {', '.join(names)}")
    if args.target is None and len(names) > 1:
        raise ConfigError(f"the configuration names {len(names)} targets ({', '.join(names)}); "
                          "choose the one to record with --target NAME")
    target = next(t for t in config.targets if args.target in (None, t.name))
    recorded = await record_round(target, args.collector)
    out = Path(args.out)
    try:
        written = write_recording(out, recorded, keep_names=args.keep_names)
    except RecordingError as exc:
        print(f"jfrog-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _report_failures((((target.name, name), run) for name, run in recorded.runs.items()), json_summary)
    names_note = "kept (--keep-names)" if args.keep_names else f"{written.renamed} replaced by placeholders"
    print(f"recorded {written.answers} answers of {target.name} at {target.url} "
          f"(collectors: {', '.join(recorded.collectors)})\n"
          f"  index:   {written.index}\n"
          f"  bodies:  {out / 'bodies'}/ ({written.body_files} files, {written.body_bytes:,} bytes)\n"
          f"  scrubbed: {written.redacted} secret values redacted; user names and e-mails {names_note}\n"
          f"replay it with: jfrog-exporter simulate --replay {out}", flush=True)
    if recorded.failed_entirely:
        print(f"jfrog-exporter: target={target.name}: no part of the round succeeded", file=sys.stderr)
        return 1
    return 0


async def _wait_for_signal(on_hangup: Callable[[], None] | None = None) -> None:
    """Until SIGTERM or SIGINT. SIGHUP calls ``on_hangup`` (a reload); without one it is logged and ignored,
    never the end of the process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, on_hangup or _hangup)
    await stop.wait()


def _hangup() -> None:
    log.warning("SIGHUP received and ignored: this command does not reload")


async def start_exporter(config: ExporterConfig, only: list[str] | None = None,
                         reload: Callable[[], Awaitable[str]] | None = None,
                         shown_targets: list[TargetConfig] | None = None,
                         serving: servingprocess.ServingChild | None = None,
                         stats: ServingStats | None = None) -> tuple[CollectionThread, HttpServer]:
    """Start collecting (on a thread of its own) and serving; stop both with :func:`stop_exporter`.
    ``reload`` serves POST /-/reload; ``shown_targets`` is the configuration the landing page shows; with
    ``serving`` (a serving process of its own, listening already), what it passes on is served on its Unix
    socket and every payload is sent to it."""
    collection = CollectionThread(config.targets, only)
    try:
        engine = await collection.prepare()
    except BaseException:
        await collection.stop()
        raise
    host, port = parse_listen(config.listen)
    web_config = None
    if config.web_config_file:
        from exporter.webconfig import load_web_config

        web_config = load_web_config(config.web_config_file)
    shown = shown_targets if shown_targets is not None else list(config.targets)
    if serving is not None:  # it applies the web configuration itself
        app = build_app(engine.store, targets=shown, reload=reload, stats=stats)
        server = HttpServer(app)
        await server.start_unix(serving.inner)
        serving.link = servingprocess.PayloadLink(serving.to_child)
        engine.store.payload_listeners.append(serving.link.offer)
        if engine.store.payload is not None:
            serving.link.offer(engine.store.payload, engine.store.ready())
        await collection.start()
        scheme = "https" if web_config is not None and web_config.tls_server_config else "http"
        _log_start(engine, f"{scheme}://{host}:{serving.port}/ (from a process of its own)")
        return collection, server
    ssl_context = web_config.ssl_context() if web_config is not None else None
    basic_auth = web_config.basic_auth() if web_config is not None else None
    app = build_app(engine.store, [basic_auth.middleware] if basic_auth else [], targets=shown, reload=reload,
                    stats=stats)
    if basic_auth:
        app.on_cleanup.append(basic_auth.close)
    server = HttpServer(app)
    try:
        await server.start(host, port, ssl_context)
    except OSError as exc:
        await server.stop()
        await collection.stop()
        raise ConfigError(f"--listen: cannot listen on {config.listen}: {exc.strerror or exc}") from None
    await collection.start()
    _log_start(engine, f"{'https' if ssl_context else 'http'}://{host}:{port}/")
    return collection, server


def _log_start(engine: Engine, listen: str) -> None:
    """What runs: one line per target (its URL, never with user-info, and collectors), then where it serves."""
    for name, runtime in engine.targets.items():
        collectors = list(runtime.collectors)
        log.info("watching %s (%s auth) with %s", runtime.config.url, runtime.config.auth.kind,
                 ", ".join(collectors) or "no collector",
                 extra={"target": name, "url": runtime.config.url, "collectors": collectors})
    if not engine.targets:  # a shard whose share of the configuration is empty
        log.info("serving on %s for no target: only the exporter's own metrics; ready now", listen,
                 extra={"listen": listen, "targets": []})
        return
    log.info("serving on %s for %d target(s): %s; ready once every collector ran", listen, len(engine.targets),
             ", ".join(engine.targets), extra={"listen": listen, "targets": list(engine.targets)})


async def stop_exporter(collection: CollectionThread, server: HttpServer) -> None:
    await server.stop()
    await collection.stop()


async def _serve(config: ExporterConfig, only: list[str] | None, reloader: Reloader, lifecycle: bool,
                 serving: servingprocess.ServingChild | None = None) -> int:
    log_shard(config)
    stats = ServingStats()
    watcher = None
    if serving is not None:
        port, why = await servingprocess.serving_process_started(serving)
        watcher = asyncio.create_task(servingprocess.watch_serving_process(serving, stats))
        if port is None:
            servingprocess.stop_serving_process(serving)
            await watcher
            raise ConfigError(why)
        serving.port = port
        stats.serving_pid = serving.proc.pid
    try:
        collection, server = await start_exporter(config, only, reloader.reload if lifecycle else None,
                                                  reloader.targets, serving, stats)
    except BaseException:
        if serving is not None and watcher is not None:
            servingprocess.stop_serving_process(serving)
            await watcher
        raise
    reloader.collection = collection
    code = 0
    signalled = asyncio.create_task(_wait_for_signal(reloader.on_signal))
    try:
        done, _ = await asyncio.wait({signalled} | ({watcher} if watcher else set()),
                                     return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            assert watcher is not None
            log.error("the serving process ended (%s): stopping", watcher.result()[1])
            code = 1
        else:
            log.info("shutting down")
    finally:
        signalled.cancel()
        await stop_exporter(collection, server)
        if serving is not None and watcher is not None and not watcher.done():
            servingprocess.stop_serving_process(serving)
            try:
                await asyncio.wait_for(asyncio.shield(watcher), SHUTDOWN_TIMEOUT + 5)
            except TimeoutError:
                serving.proc.kill()
                await watcher
    return code


async def _replay(args: argparse.Namespace) -> int:
    from exporter.recording import RecordingError, load_recording
    from exporter.simulator.faults import Fault
    from exporter.simulator.replay import ReplayState, start

    host, port = parse_listen(args.listen)
    try:
        recording = load_recording(Path(args.replay))
        injected = [Fault.parse(text) for text in args.fault]
    except (RecordingError, ValueError) as exc:
        print(f"jfrog-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = ReplayState(recording, latency_ms=args.latency_ms, faults=injected)
    runner, bound = await start(state, host, port)
    print(f"replayed JPD ({len(recording.answers)} answers of {recording.url} recorded {recording.recorded_at}, "
          f"from {args.replay}) on http://{host}:{bound}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await runner.cleanup()
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    if args.replay:
        return await _replay(args)
    from exporter.simulator import scenarios
    from exporter.simulator.app import start
    from exporter.simulator.core import Credentials, SimState

    host, port = parse_listen(args.listen)
    credentials = Credentials()
    if args.token or args.user:
        # Explicit credentials replace every default, so tests can prove a wrong token fails.
        credentials = Credentials(token=args.token, user=args.user, password=args.password, reader_token=None)
    from exporter.simulator.faults import Fault

    try:
        injected = [Fault.parse(text) for text in args.fault]
    except ValueError as exc:
        print(f"jfrog-exporter: --fault: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        scenario = scenarios.build(args.scenario, scale=args.scale)
    except ValueError as exc:
        print(f"jfrog-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = SimState(scenario, credentials=credentials, latency_ms=args.latency_ms,
                     faults=injected)
    runner, bound = await start(state, host, port)
    print(f"simulated JPD ({args.scenario}: {state.scenario.description}) on http://{host}:{bound}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await runner.cleanup()
    return 0


#: the demo's simulated JPDs, and how long the exporter's token for each stays valid: the degraded one's is
#: close enough to its expiry to raise the exporter's own token alert
DEMO_JPDS = (("healthy", 365 * 86400), ("degraded", 10 * 86400))
#: what the demo's exporter reads: every collector, the optional ones and the Workers probe included, at
#: intervals short enough that every dashboard panel has data within a minute or two
DEMO_COLLECTORS: dict[str, dict[str, Any]] = {
    "health": {"interval": "15s"},
    "storage": {"interval": "1m"},
    "replication": {"interval": "1m"},
    "federation": {"interval": "1m"},
    "maintenance": {"interval": "1m"},
    "workers": {"interval": "30s", "probe_worker": "exporter-probe"},
    "security": {"interval": "5m"},
    # A short settle: the simulator writes no row late, and counters move within the first minute.
    "activity": {"enabled": True, "interval": "30s", "settle": "5s"},
    "openmetrics": {"enabled": True, "interval": "15s", "distribution": True},
    "distribution": {"enabled": True, "interval": "30s"},
    # Deliveries are final once made in the simulator: a short settle lets the counters move at once.
    "webhooks": {"interval": "15s", "settle": "5s"},
}


async def _demo(args: argparse.Namespace) -> int:
    from exporter.simulator import scenarios
    from exporter.simulator.app import start
    from exporter.simulator.core import DEFAULT_PASSWORD, DEFAULT_USER, Credentials, SimState, jwt_token

    sims = []
    targets = []
    for name, lifetime in DEMO_JPDS:
        # A JWT like the JPD's own tokens, so the exporter reports its expiry.
        token = jwt_token("jfac@01hdemo/users/jfrog-exporter", time.time() + lifetime)
        state = SimState(scenarios.build(name), credentials=Credentials(token=token))
        runner, port = await start(state, "127.0.0.1", 0)
        sims.append(runner)
        url = f"http://127.0.0.1:{port}"
        target = TargetConfig.model_validate({"name": name, "url": url, "collectors": DEMO_COLLECTORS})
        target.auth = AuthConfig.from_values(token=token)
        targets.append((target, url))
    config = ExporterConfig(listen=args.listen, targets=[t for t, _ in targets])
    try:
        collection, server = await start_exporter(config)
    except ConfigError as exc:
        for sim in sims:
            await sim.cleanup()
        print(f"jfrog-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    host, port = parse_listen(args.listen)
    lines = [
        "",
        "JFrog exporter demo is running (Ctrl-C to stop):",
        f"  landing page   http://{host}:{port}/",
        f"  metrics        http://{host}:{port}/metrics",
        f"  readiness      http://{host}:{port}/-/ready",
    ]
    lines += [f"  simulated JPD  {url}  ({t.name}; user {DEFAULT_USER}, password {DEFAULT_PASSWORD})"
              for t, url in targets]
    print("\n".join(lines) + "\n", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await stop_exporter(collection, server)
        for sim in sims:
            await sim.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
