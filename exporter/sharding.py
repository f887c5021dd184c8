"""Sharding a fleet of JPDs across exporter processes: ``--shard INDEX/COUNT``.

A target belongs to the shard its name hashes to (SHA-256, never Python's salted ``hash()``), so every
process over the same configuration agrees, and adding or removing a target moves no other one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: the largest shard count accepted: more processes than this for one configuration is a typo
MAX_SHARDS = 1024

_SPEC = re.compile(r"(?P<index>\d+|auto)/(?P<count>\d+)")
_ORDINAL = re.compile(r"-(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def takes(self, name: str) -> bool:
        return shard_of(name, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(name: str, count: int) -> int:
    """The shard a target name belongs to among ``count``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def parse_shard(text: str, hostname: str = "") -> Shard:
    """``INDEX/COUNT``, or ``auto/COUNT`` taking the index from the ``-<ordinal>`` suffix of ``hostname``
    (a StatefulSet's pod is named ``<name>-<ordinal>``). Raises ValueError saying what is wrong."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not INDEX/COUNT (e.g. 0/3) or auto/COUNT")
    count = int(match["count"])
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"{text!r}: the shard count must be between 1 and {MAX_SHARDS}")
    if match["index"] == "auto":
        ordinal = _ORDINAL.search(hostname)
        if ordinal is None:
            raise ValueError(f"{text!r}: auto takes the index from a host name ending in -<ordinal> "
                             f"(a StatefulSet's pod), and this host is named {hostname!r}")
        index = int(ordinal[1])
    else:
        index = int(match["index"])
    if index >= count:
        raise ValueError(f"{text!r}: the index must be between 0 and {count - 1}")
    return Shard(index, count)


def describe(shard: Shard, taken: Sequence[str], configured: int) -> str:
    """The start-up line: how many of the configured targets this shard watches."""
    return f"shard {shard}: watching {len(taken)} of {configured} configured target(s)"
