"""TLS and basic auth on the exporter's endpoints, from an exporter-toolkit web config file."""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter import webconfig
from exporter.httpserver import HttpServer
from exporter.server import build_app
from exporter.snapshot import SnapshotStore
from exporter.webconfig import BasicAuth
from tests.support import exporter, run_cli, simulator, wait_http


def _certificate(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required to generate a test certificate")
    cert, key = tmp / "server.crt", tmp / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("serving", ["shared", "own"])
def test_tls_and_basic_auth(tmp_path: Path, serving: str) -> None:
    cert, key = _certificate(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    context = ssl.create_default_context(cafile=str(cert))
    with simulator(tmp_path, "healthy") as sim, \
            exporter(tmp_path, "--url", sim.url, "--web.config.file", str(web_config), "--web.serving-process",
                     serving, ready=False) as exp:
        url = exp.url.replace("http://", "https://")
        deadline_ok = False
        for _ in range(100):
            try:
                httpx.get(url + "/-/healthy", verify=context, timeout=2)
                deadline_ok = True
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert deadline_ok, exp.output()
        assert httpx.get(url + "/metrics", verify=context).status_code == 401
        assert httpx.get(url + "/metrics", verify=context, auth=("prometheus", "wrong")).status_code == 401
        good = httpx.get(url + "/metrics", verify=context, auth=("prometheus", "scrape-pass"))
        assert good.status_code == 200 and "jfrog_exporter_build_info" in good.text
        # The landing page comes from the collecting process (passed on by a serving process of its own).
        assert httpx.get(url + "/", verify=context).status_code == 401
        page = httpx.get(url + "/", verify=context, auth=("prometheus", "scrape-pass"))
        assert page.status_code == 200 and "<html" in page.text.lower()
        with pytest.raises(httpx.HTTPError):
            httpx.get(exp.url + "/metrics", timeout=2)  # plain HTTP is not served
    assert "scrape-pass" not in exp.output()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice: expected a bcrypt hash"),
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "tls_server_config"),
        ("tls_config: {}\n", "tls_config: unknown field"),
    ],
)
def test_bad_web_config_exits_2(tmp_path: Path, content: str, message: str) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text(content)
    result = run_cli("serve", "--url", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
                     "--web.config.file", str(web_config))
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("serving", ["shared", "own"])
def test_a_certificate_that_is_no_certificate_exits_2(tmp_path: Path, serving: str) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate\n")
    (tmp_path / "tls.key").write_text("not a key\n")
    web_config = tmp_path / "web.yml"
    web_config.write_text(f"tls_server_config:\n  cert_file: {tmp_path / 'tls.crt'}\n"
                          f"  key_file: {tmp_path / 'tls.key'}\n")
    result = run_cli("serve", "--url", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
                     "--web.config.file", str(web_config), "--web.serving-process", serving)
    assert result.returncode == 2
    assert "configuration error: --web.config.file: tls_server_config:" in result.stderr, result.stderr


def test_plain_http_without_web_config(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, exporter(tmp_path, "--url", sim.url) as exp:
        scrape = wait_http(exp.url + "/metrics")
        assert scrape.status_code == 200
        # One target: answered by a thread of the collecting process (--web.serving-process auto).
        assert "jfrog_exporter_serving_process_resident_memory_bytes" not in scrape.text


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth(password: bytes = b"scrape-pass", rounds: int = 4) -> BasicAuth:
    return BasicAuth({"prometheus": bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds))})


async def test_unknown_user_costs_the_same_bcrypt_check_as_a_wrong_password(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = _auth(rounds=5)
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(webconfig.bcrypt, "checkpw", counting)
    assert not await auth.authorized(_header("nobody", "scrape-pass"))
    assert not await auth.authorized(_header("prometheus", "wrong"))
    assert len(checked) == 2
    assert checked[0][:7] == checked[1][:7] == b"$2b$05$"  # the same work: same algorithm and cost
    assert not await auth.authorized(_header("nobody", ""))  # an empty password too
    assert not await auth.authorized("Basic !!!") and not await auth.authorized("Bearer x")
    assert len(checked) == 3  # a header that is not basic auth names no user: nothing to hide
    assert await auth.authorized(_header("prometheus", "scrape-pass"))
    assert await auth.authorized(_header("prometheus", "scrape-pass"))
    assert len(checked) == 4  # remembered: bcrypt ran for the first success only


async def test_remembered_credentials_hold_no_password() -> None:
    auth = _auth(b"a-secret-password")
    assert await auth.authorized(_header("prometheus", "a-secret-password"))
    remembered = list(auth._verified)
    assert len(remembered) == 1 and len(remembered[0]) == 32
    assert not any(b"a-secret-password" in key or b"prometheus" in key for key in remembered)
    assert "a-secret-password" not in repr(vars(auth))


async def test_remembered_credentials_are_bounded() -> None:
    auth = _auth()
    for i in range(webconfig.VERIFIED_CACHE_SIZE + 10):
        auth._remember(bytes([i]) * 32)
    assert len(auth._verified) == webconfig.VERIFIED_CACHE_SIZE


@asynccontextmanager
async def _serving(auth: BasicAuth) -> AsyncIterator[str]:
    store = SnapshotStore()
    store.render()
    app = build_app(store, [auth.middleware])
    app.on_cleanup.append(auth.close)
    server = HttpServer(app)
    await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


def _guess_until(url: str, stop: threading.Event, codes: set[int]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            codes.add(client.get("/metrics", auth=("prometheus", "a-guess")).status_code)


async def test_an_authorised_scrape_is_quick_while_wrong_passwords_flood_in() -> None:
    auth = _auth(rounds=10)  # about 0.1 s a check: on the event loop, 50 guessers would hold it for seconds
    stop, codes = threading.Event(), set[int]()
    async with _serving(auth) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/metrics", auth=("prometheus", "scrape-pass"))).status_code == 200
        guessers = [threading.Thread(target=_guess_until, args=(url, stop, codes)) for _ in range(50)]
        for thread in guessers:
            thread.start()
        try:
            await asyncio.sleep(0.5)  # every guesser has a check running or waiting
            started = time.monotonic()
            good = await client.get("/metrics", auth=("prometheus", "scrape-pass"))
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            await asyncio.to_thread(lambda: [thread.join() for thread in guessers])
    assert good.status_code == 200 and elapsed < 2.0, f"{elapsed:.2f}s"
    assert 401 in codes and codes <= {401, 503}  # beyond the checks that may wait, refused at once
