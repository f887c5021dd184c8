"""Configuration from the environment, flags and YAML; bad configuration stops with exit code 2."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.config import AuthConfig, ConfigError, load_config
from tests.support import run_cli

pytestmark = pytest.mark.usefixtures("clean_env")


def env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, val in values.items():
        monkeypatch.setenv(name, val)


def test_env_single_target_normalises_artifactory_suffix(caplog: pytest.LogCaptureFixture, clean_env) -> None:
    env(clean_env, JFROG_URL="https://acme.jfrog.io/artifactory/", JFROG_ACCESS_TOKEN="t0k")
    with caplog.at_level(logging.INFO):
        config = load_config()
    [target] = config.targets
    assert target.url == "https://acme.jfrog.io"
    assert target.name == "acme.jfrog.io"
    assert target.auth.token() == "t0k"
    assert "platform base URL" in caplog.text
    assert "t0k" not in caplog.text


def test_flags_override_env(clean_env) -> None:
    env(clean_env, JFROG_URL="http://env.example", JFROG_EXPORTER_LISTEN="0.0.0.0:1")
    config = load_config({"url": "http://flag.example:8082", "listen": "127.0.0.1:9999"})
    assert config.targets[0].url == "http://flag.example:8082"
    assert config.listen == "127.0.0.1:9999"


def test_token_and_password_files(tmp_path: Path, clean_env) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    env(clean_env, JFROG_URL="http://a", JFROG_ACCESS_TOKEN_FILE=str(token))
    config = load_config()
    assert config.targets[0].auth.token() == "from-file"
    password = tmp_path / "pw"
    password.write_text("s3cret")
    clean_env.delenv("JFROG_ACCESS_TOKEN_FILE")
    env(clean_env, JFROG_USERNAME="mon", JFROG_PASSWORD_FILE=str(password))
    config = load_config()
    assert config.targets[0].auth.basic() == ("mon", "s3cret")
    # A rotated token file is picked up without a restart.
    clean_env.delenv("JFROG_USERNAME")
    clean_env.delenv("JFROG_PASSWORD_FILE")
    env(clean_env, JFROG_ACCESS_TOKEN_FILE=str(token))
    config2 = load_config()
    token.write_text("rotated-again")
    assert config2.targets[0].auth.token() == "rotated-again"


def test_yaml_multi_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_TOKEN", "prod-secret")
    pw = tmp_path / "pw"
    pw.write_text("pw")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""
targets:
  - name: prod
    url: https://prod.example.com
    auth: {{token_env: PROD_TOKEN}}
    timeout: 15s
    max_concurrency: 4
    repos: {{include: ['^libs-'], exclude: ['-tmp$']}}
    collectors:
      storage: {{interval: 10m}}
      health: {{enabled: false}}
  - url: http://dr.example.com:8082/artifactory
    auth: {{username: monitor, password_file: {pw}}}
    tls: {{insecure_skip_verify: true}}
""")
    config = load_config({"config": str(cfg)})
    prod, dr = config.targets
    assert prod.auth.token() == "prod-secret"
    assert prod.timeout == 15 and prod.max_concurrency == 4
    assert prod.collector_settings("storage").interval == 600
    assert prod.enabled_collectors() == ["storage"] or "health" not in prod.enabled_collectors()
    assert prod.repos.allows("libs-release") and not prod.repos.allows("libs-tmp") and not prod.repos.allows("x")
    assert dr.name == "dr.example.com:8082" and dr.url == "http://dr.example.com:8082"
    assert dr.auth.basic() == ("monitor", "pw")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("targets: []", "targets: List should have at least 1 item"),
        ("targets:\n  - url: ftp://x", "targets[0].url: 'ftp://x' is not an http(s) URL"),
        # A mistyped scheme with credentials in it: the message names the URL without them.
        ("targets:\n  - url: ftp://u:hunter2@h", "targets[0].url: 'ftp://<redacted>@h' is not an http(s) URL"),
        ("targets:\n  - url: http://x\n    timeout: soon", "targets[0].timeout: 'soon' is not a duration"),
        ("targets:\n  - url: http://x\n    auth: {token_file: /nonexistent/token}",
         "targets[0].auth: token_file: cannot read /nonexistent/token"),
        ("targets:\n  - url: http://x\n    auth: {token_env: SURELY_UNSET_VAR_123}",
         "targets[0].auth: token_env: environment variable SURELY_UNSET_VAR_123 is not set"),
        ("targets:\n  - url: http://x\n    auth: {token: inline}", "targets[0].auth.token: unknown field"),
        ("targets:\n  - url: http://x\n    collectors: {nosuch: {}}", "targets[0].collectors.nosuch: unknown field"),
        ("targets:\n  - url: http://x\n    repos: {include: ['(']}", "targets[0].repos.include: "),
        ("targets:\n  - url: http://x\n  - url: http://x", "two targets are named 'x'"),
        ("targets:\n  - url: http://x\n    max_concurrency: 0", "targets[0].max_concurrency: Input should be"),
        ("targets:\n  - url: http://x\n    max_requests_per_second: 0.01",
         "targets[0].max_requests_per_second: use 0 (unlimited) or at least 0.1 requests per second"),
        ("targets:\n  - url: http://x\n    max_requests_per_second: .nan",
         "targets[0].max_requests_per_second: Input should be"),
        ("targets: [", "invalid YAML at line 1"),
        # Durations that are no durations, or that would stall or end the process.
        ("targets:\n  - url: http://x\n    timeout: nan", "targets[0].timeout: 'nan' is not a duration"),
        ("targets:\n  - url: http://x\n    timeout: .inf", "targets[0].timeout: inf is not a duration"),
        ("targets:\n  - url: http://x\n    timeout: 2h", "a timeout must be between 0.1s and 1h, not 2h"),
        ("targets:\n  - url: http://x\n    collectors: {storage: {interval: nan}}",
         "targets[0].collectors.storage.interval: 'nan' is not a duration"),
        ("targets:\n  - url: http://x\n    collectors: {storage: {interval: inf}}",
         "targets[0].collectors.storage.interval: 'inf' is not a duration"),
        ("targets:\n  - url: http://x\n    collectors: {storage: {interval: 1e15}}",
         "an interval must be between 1s and 1d, not 1e+15s"),
        ("targets:\n  - url: http://x\n    collectors: {storage: {interval: 1ms}}",
         "an interval must be between 1s and 1d, not 0.001s"),
        ("targets:\n  - url: http://x\n    collectors: {health: {details_interval: 2d}}",
         "details_interval must be between 0s and 1d, not 2d"),
    ],
)
def test_bad_yaml_names_the_field(tmp_path: Path, yaml_text: str, message: str) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config({"config": str(cfg)})
    assert message in str(err.value)


def test_no_target_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no target"):
        load_config()


def test_bad_configuration_exits_2_before_anything_starts(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("targets:\n  - url: http://127.0.0.1:1\n    timeout: -5\n")
    result = run_cli("serve", "--config", str(cfg), "--listen", "127.0.0.1:0")
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "targets[0].timeout" in result.stderr
    assert "serving on" not in result.stderr

    result = run_cli("once", "--url", "not a url")
    assert result.returncode == 2
    assert "JFROG_URL: 'not a url' is not an http(s) URL" in result.stderr

    result = run_cli("serve", "--url", "http://x", "--listen", "nonsense")
    assert result.returncode == 2 and "listen" in result.stderr


def test_secrets_never_printed_in_errors(tmp_path: Path) -> None:
    for url in ("http://user:hunter2@example.com", "htps://admin:hunter2@host"):
        result = run_cli("once", "--url", url)
        assert result.returncode == 2
        assert "hunter2" not in result.stderr + result.stdout


def test_an_unreadable_secret_file_is_said_once_and_the_last_secret_kept(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    auth = AuthConfig(token_file=token)
    assert auth.token() == "first-token"
    token.unlink()
    with caplog.at_level(logging.INFO, logger="exporter.config"):
        values = {auth.token() for _ in range(500)}
    assert values == {"first-token"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No such file or directory" in warnings[0].getMessage()
    token.write_text("rotated-token\n")
    assert auth.token() == "rotated-token"
    assert "can be read again" in caplog.text
    assert "first-token" not in caplog.text and "rotated-token" not in caplog.text
