"""Access tokens shaped like the JPD's, for the tests of the exporter's own token expiry."""

from __future__ import annotations

import base64
import json
import secrets


def make_jwt(claims: dict[str, object]) -> str:
    """A token shaped like the JPD's access tokens: base64url header.payload.signature, no padding."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "k1"}).encode())
    return f"{header}.{part(json.dumps(claims).encode())}.{part(secrets.token_bytes(64))}"
