"""Sharding a fleet across processes: the rule, its parsing, and the configuration a shard loads."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config
from exporter.sharding import Shard, parse_shard, shard_of
from tests.support import run_cli

NAMES = [f"jpd-{region}-{i}" for region in ("eu", "us", "ap") for i in range(200)]


pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize("count", range(1, 8))
def test_every_target_is_in_exactly_one_shard_and_the_shards_share_the_fleet(count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    taken = Counter(i for name in NAMES for i, shard in enumerate(shards) if shard.takes(name))
    assert sum(taken.values()) == len(NAMES), "each name taken once"
    assert all(sum(s.takes(name) for s in shards) == 1 for name in NAMES)
    # Spread: no shard gets less than half its fair share of 600 names.
    assert min(taken[i] for i in range(count)) >= len(NAMES) / count / 2


def test_the_rule_is_the_same_in_every_process_and_version() -> None:
    # Pinned: another process (or a later release) must put a target in the same shard.
    assert [shard_of(name, 3) for name in ("eu", "us", "ap", "prod", "qa")] == [0, 2, 2, 1, 0]


def test_adding_a_target_moves_no_other(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    clean_env.setenv("T", "token")

    def shards_of(names: list[str], count: int) -> dict[str, int]:
        config.write_text("targets:\n" + "".join(
            f"  - {{name: {n}, url: 'http://jpd.example', auth: {{token_env: T}}}}\n" for n in names))
        return {t.name: i for i in range(count)
                for t in load_config({"config": str(config), "shard": f"{i}/{count}"}).targets}

    before = shards_of(NAMES[:40], 4)
    after = shards_of([*NAMES[:40], "added-1", "added-2"], 4)
    assert set(after) == set(NAMES[:40]) | {"added-1", "added-2"}
    assert {name: after[name] for name in before} == before


@pytest.mark.parametrize(("text", "hostname", "expected"), [
    ("0/1", "", Shard(0, 1)),
    (" 2/3 ", "", Shard(2, 3)),
    ("auto/3", "jfrog-exporter-2", Shard(2, 3)),
    ("auto/12", "release-jfrog-exporter-11", Shard(11, 12)),
])
def test_parse(text: str, hostname: str, expected: Shard) -> None:
    assert parse_shard(text, hostname) == expected


@pytest.mark.parametrize(("text", "hostname", "message"), [
    ("1", "", "'1' is not INDEX/COUNT (e.g. 0/3) or auto/COUNT"),
    ("-1/2", "", "is not INDEX/COUNT"),
    ("a/b", "", "is not INDEX/COUNT"),
    ("3/3", "", "'3/3': the index must be between 0 and 2"),
    ("0/0", "", "'0/0': the shard count must be between 1 and 1024"),
    ("auto/3", "laptop", "auto takes the index from a host name ending in -<ordinal>"),
    ("auto/3", "jfrog-exporter-3", "'auto/3': the index must be between 0 and 2"),
])
def test_parse_refuses_with_a_reason(text: str, hostname: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_shard(text, hostname)
    assert message in str(error.value)


def test_flag_wins_over_env_and_only_serve_shards(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("targets:\n" + "".join(f"  - {{name: {n}, url: 'http://jpd.example'}}\n" for n in NAMES[:9]))
    clean_env.setenv("JFROG_EXPORTER_SHARD", "1/3")
    from_env = load_config({"config": str(config), "shard": None})
    assert from_env.shard == Shard(1, 3) and from_env.configured_targets == 9
    assert {t.name for t in from_env.targets} == {n for n in NAMES[:9] if shard_of(n, 3) == 1}
    assert load_config({"config": str(config), "shard": "0/1"}).shard == Shard(0, 1)
    # once and record pass no shard key: every target.
    assert len(load_config({"config": str(config)}).targets) == 9
    clean_env.setenv("JFROG_EXPORTER_SHARD", "1/x")
    with pytest.raises(ConfigError, match=r"^JFROG_EXPORTER_SHARD: '1/x' is not INDEX/COUNT"):
        load_config({"config": str(config), "shard": None})
    clean_env.setenv("HOSTNAME", "jfrog-exporter-2")
    assert load_config({"config": str(config), "shard": "auto/3"}).shard == Shard(2, 3)


def test_serve_refuses_a_bad_shard_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("targets:\n  - {name: a, url: 'http://jpd.example'}\n")
    done = run_cli("serve", "--config", str(config), "--shard", "4/4", timeout=20)
    assert done.returncode == 2
    assert done.stderr.strip() == \
        "jfrog-exporter: configuration error: --shard: '4/4': the index must be between 0 and 3"
