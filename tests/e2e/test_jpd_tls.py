"""A JPD over HTTPS: the target's TLS settings decide, and targets configured alike share one TLS context."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from exporter.client import JfrogClient, tls_context
from tests.conftest import make_target


def _certificate(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required to generate a test certificate")
    cert, key = tmp / "jpd.crt", tmp / "jpd.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_tls_settings_decide_and_alike_targets_share_a_context(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/artifactory/api/system/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}"
    targets = {
        "ca": make_target(url, name="ca", tls={"ca_file": str(cert)}),
        "ca-too": make_target(url, name="ca-too", tls={"ca_file": str(cert)}),
        "insecure": make_target(url, name="insecure", tls={"insecure_skip_verify": True}),
        "system": make_target(url, name="system"),
    }
    clients = {name: JfrogClient(t) for name, t in targets.items()}
    try:
        results = {name: await client.ping() for name, client in clients.items()}
    finally:
        for client in clients.values():
            await client.aclose()
        await runner.cleanup()
    assert results["ca"].ok and results["ca-too"].ok and results["insecure"].ok
    assert not results["system"].ok, "a certificate no system CA signed is refused"
    assert "certificate" in results["system"].reason.lower()

    # One context per distinct TLS configuration, not one per target or pool.
    assert tls_context(cert, False) is tls_context(cert, False)
    assert tls_context(None, False) is not tls_context(cert, False)
    assert tls_context(None, True).verify_mode is ssl.CERT_NONE
    # A CA file replaced (before a reload) is loaded again.
    before = tls_context(cert, False)
    stat = cert.stat()
    os.utime(cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert tls_context(cert, False) is not before
