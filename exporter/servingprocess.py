"""/metrics from a process of its own, so that a scrape never waits for the interpreter that collects.

One process watching hundreds of JPDs keeps its interpreter busy decoding
answers and rendering; a scrape served by a thread of the same process waits
its turn at every step (300 targets: p99 5× a static server of the same
bytes). ``serve --web.serving-process own`` starts a serving process
(:mod:`exporter.servingchild`) that holds little: its HTTP server and the
last payload, compressed in both formats.

- The serving process answers /metrics, /-/healthy and /-/ready itself, with
  the web configuration's TLS and basic auth, and passes the landing page and
  POST /-/reload to the collecting process over a Unix socket.
- The collecting process sends each payload it renders, with whether it is
  ready, over a socket pair (:class:`PayloadLink`, a thread of its own: the
  OpenMetrics gzip and the copy into the socket happen there). The serving
  process sends back what it counts: scrapes dropped for stalling.
- When one of them ends, so does the other: the collecting process with exit
  code 1 when the serving process died, the serving process when the
  collecting one closed its end (stopped or killed). Signals are the
  collecting process's to act on: the serving process ignores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from exporter.server import ServingStats
from exporter.servingchild import FRAME, PAYLOAD, PAYLOAD_HEAD, STALLED, STARTED, read_frame
from exporter.snapshot import Payload

#: ``auto`` gives the serving process its own from this many targets on: below, collecting leaves scrapes room
AUTO_TARGETS = 20
MODES = ("auto", "own", "shared")


def wanted(mode: str, targets: int) -> bool:
    """Whether ``mode`` gives the serving process its own for a configuration of ``targets`` targets."""
    return mode == "own" or (mode == "auto" and targets >= AUTO_TARGETS)


# -- the collecting process's side ---------------------------------------------


@dataclass
class ServingChild:
    """The serving process as the collecting process knows it: the process and its ends of the sockets."""

    proc: subprocess.Popen[bytes]
    to_child: socket.socket
    from_child: socket.socket
    inner: str
    #: the port it listens on, once it said so
    port: int = 0
    link: PayloadLink | None = None
    #: the stream of what it reports, opened by serving_process_started (its writer kept: a collected stream
    #: writer closes the socket)
    replies: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None


def start_serving_process(host: str, port: int, web_config_file: Path | None, lifecycle: bool,
                          log_level: str, log_format: str) -> ServingChild:
    """Start the serving process (:mod:`exporter.servingchild`): a fresh interpreter that loads only what it
    needs. Forked, it would share this process's pages only until this process writes them, and then keep
    its own copy of all it loaded: its memory would cost as much as a second exporter's."""
    to_child, child_in = socket.socketpair()
    child_out, from_child = socket.socketpair()
    inner = str(Path(tempfile.mkdtemp(prefix="jfrog-exporter-")) / "inner.sock")
    args = [sys.executable, "-m", "exporter.servingchild", "--channel-in", str(child_in.fileno()),
            "--channel-out", str(child_out.fileno()), "--inner", inner, "--host", host, "--port", str(port),
            "--log-level", log_level, "--log-format", log_format]
    if web_config_file is not None:
        args += ["--web-config", str(web_config_file)]
    if lifecycle:
        args.append("--lifecycle")
    try:
        proc = subprocess.Popen(args, pass_fds=(child_in.fileno(), child_out.fileno()))
    finally:
        child_in.close()
        child_out.close()
    return ServingChild(proc, to_child, from_child, inner)


class PayloadLink:
    """Sends the payloads the collecting process renders to the serving process, the newest first.

    On a thread of its own: compressing the OpenMetrics format and writing
    megabytes into the socket must not hold up the collection loop. A payload
    rendered while the previous one is still being sent replaces it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._pending: tuple[Payload, bool] | None = None
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="payload-link", daemon=True)
        self._thread.start()

    def offer(self, payload: Payload, ready: bool) -> None:
        with self._wake:
            self._pending = (payload, ready)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._stopped)
                if self._stopped:
                    return
                assert self._pending is not None
                (payload, ready), self._pending = self._pending, None
            try:
                for part in _payload_frame(payload, ready):  # megabytes: sent as they are, never joined
                    self._sock.sendall(part)
            except OSError:
                return  # the serving process is gone: the collecting process notices it and stops
            finally:
                payload.release_gzip()  # the serving process holds them now

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._sock.close()


def _payload_frame(payload: Payload, ready: bool) -> tuple[bytes, bytes, bytes]:
    text_gzip, openmetrics_gzip = payload.gzipped(False), payload.gzipped(True)
    sizes = [sum(len(chunk) for chunk in payload.chunks(openmetrics)) for openmetrics in (False, True)]
    head = PAYLOAD_HEAD.pack(ready, sizes[0], sizes[1], len(text_gzip))
    return (FRAME.pack(PAYLOAD, len(head) + len(text_gzip) + len(openmetrics_gzip)) + head, text_gzip,
            openmetrics_gzip)


async def serving_process_started(child: ServingChild) -> tuple[int | None, str]:
    """The port the serving process listens on, or None and why it could not."""
    child.replies = await asyncio.open_unix_connection(sock=child.from_child)
    frame = await read_frame(child.replies[0])
    if frame is None:
        return None, "the serving process ended before it listened"
    kind, body = frame
    if kind == STARTED:
        return int(body), ""
    return None, body.decode("utf-8", "replace")


async def watch_serving_process(child: ServingChild, stats: ServingStats) -> tuple[int, str]:
    """After :func:`serving_process_started`, until the serving process ends: counts what it reports; returns
    how it ended (its exit status)."""
    assert child.replies is not None
    reader, writer = child.replies
    try:
        while (frame := await read_frame(reader)) is not None:
            if frame[0] == STALLED:
                stats.scrapes_aborted += 1
    finally:
        writer.close()
    code = await asyncio.to_thread(child.proc.wait)
    return (128 - code, f"killed by {signal.Signals(-code).name}") if code < 0 else (code, f"exit code {code}")


def stop_serving_process(child: ServingChild) -> None:
    """Close the payload stream: the serving process stops (letting scrapes in progress finish), and
    :func:`watch_serving_process` returns once it did."""
    if child.link is not None:
        child.link.stop()
    else:
        child.to_child.close()
    with contextlib.suppress(OSError):
        Path(child.inner).unlink()
        Path(child.inner).parent.rmdir()
