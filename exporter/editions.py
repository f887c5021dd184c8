"""How JPDs say "nothing to report here", as the field shows it.

The documents say an endpoint an edition lacks answers 404. Real servers also
answer 400 (sometimes 403) with a message naming the edition, or 400 for an
item that is gone or cannot have what is asked; those messages, each with the
report it was found in, make such a refusal "unsupported" rather than an error.
Matching is on the JFrog error message only, never on a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EditionRefusal:
    statuses: frozenset[int]
    message: re.Pattern[str]
    #: who answers this way, and why there is nothing to report
    edition: str
    #: the field report it comes from
    source: str


#: a public mirror of Artifactory OSS's sources, where the messages are written
_OSS = "https://github.com/knottnhupfer/artifactory-oss/blob/b99e5649bcad7df04994bd9525e867f5a1af6a39"

REFUSALS: tuple[EditionRefusal, ...] = (
    EditionRefusal(frozenset({400, 403}), re.compile(r"available only in Artifactory Pro", re.I),
                   "Artifactory OSS or JFrog Container Registry",
                   "https://github.com/jfrog/terraform-provider-artifactory/issues/35"),
    EditionRefusal(frozenset({400}), re.compile(r"Artifactory Online does not require (a )?license", re.I),
                   "JFrog Cloud", "https://github.com/jfrog/terraform-provider-artifactory/pull/95"),
    EditionRefusal(frozenset({400}), re.compile(r"Artifactory Online does not support accessing this API", re.I),
                   "JFrog Cloud", "https://github.com/jfrog/terraform-provider-artifactory/issues/452"),
    EditionRefusal(frozenset({400}), re.compile(r"(Sorting|Filtering properties result) is not supported by AQL in "
                                                r"the open source version", re.I),
                   "Artifactory OSS", _OSS + "/storage/db/src/main/java/org/artifactory/storage/db/aql/itest/service/"
                   "AqlQueryValidator.java#L151"),
    EditionRefusal(frozenset({400}), re.compile(r"Could not find repository", re.I),
                   "a repository deleted since it was listed",
                   "https://github.com/jfrog/terraform-provider-artifactory/issues/258"),
    EditionRefusal(frozenset({400}), re.compile(r"Replication is available for Local or Remote repositories only",
                                                re.I),
                   "a repository that cannot replicate (virtual or federated)",
                   _OSS + "/web/rest/src/main/java/org/artifactory/rest/services/replication/GetReplicationService.java"
                   "#L68"),
)


def edition_refusal(status: int, message: str) -> EditionRefusal | None:
    """The known refusal a JFrog error message is, if it is one."""
    return next((r for r in REFUSALS if status in r.statuses and r.message.search(message)), None)
