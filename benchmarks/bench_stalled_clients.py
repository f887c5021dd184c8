"""Memory held for clients that ask for /metrics and never read the answer.

    python -m benchmarks.bench_stalled_clients [--clients 100] [--scale 10000]

Runs the simulator's `large` scenario and an exporter watching it (collectors
hourly), opens the connections (no Accept-Encoding: the plain text, the
largest body), and prints the exporter's resident size before and while they
stay open, and the latency of a normal scrape meanwhile.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import TOKEN, free_port, process, rss_mb, simulator, wait_http

COLLECTORS = ("health", "storage", "replication", "federation", "workers", "security", "maintenance")


def _config(path: Path, url: str) -> Path:
    collectors = ", ".join(f"{name}: {{interval: 1h}}" for name in COLLECTORS)
    path.write_text(f"targets:\n  - name: large\n    url: {url}\n    auth: {{token_env: BENCH_TOKEN}}\n"
                    f"    timeout: 30s\n    max_concurrency: 16\n    collectors: {{{collectors}}}\n")
    return path


def _stalled(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n")
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--scale", type=int, default=10_000)
    args = parser.parse_args()
    config = _config(Path(tempfile.mkdtemp(prefix="bench-stalled-")) / "config.yaml", "")
    with simulator("large", "--scale", str(args.scale)) as sim:
        _config(config, sim)
        port = free_port()
        with process(["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-level", "error"],
                     env={"BENCH_TOKEN": TOKEN}) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/-/ready", timeout=600)
            time.sleep(3)  # the last collector's rendering
            size = len(httpx.get(url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=60).content)
            before = rss_mb(proc.pid)
            sockets = [_stalled(port) for _ in range(args.clients)]
            try:
                time.sleep(3)
                held = rss_mb(proc.pid)
                started = time.perf_counter()
                httpx.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=60).raise_for_status()
                latency = (time.perf_counter() - started) * 1000
            finally:
                for sock in sockets:
                    sock.close()
    print(f"payload {size / 1e6:.1f} MB; {args.clients} clients not reading: RSS {before:.0f} MB -> {held:.0f} MB "
          f"(+{held - before:.0f} MB); a gzip scrape meanwhile took {latency:.0f} ms")


if __name__ == "__main__":
    main()
