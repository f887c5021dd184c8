"""What the exporter says never holds the configured credential, whatever the JPD echoes back."""

from __future__ import annotations

import base64
import string

from hypothesis import given
from hypothesis import strategies as st

from exporter.redaction import REDACTED, redact, secret_values, without_userinfo

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtb24ifQ.c2lnbmF0dXJl"
SECRETS = secret_values(TOKEN, ("monitor", "s3cret-pass"))


def test_the_token_the_password_and_the_basic_header_are_secrets() -> None:
    basic = base64.b64encode(b"monitor:s3cret-pass").decode()
    assert set(SECRETS) == {TOKEN, "s3cret-pass", basic}
    assert secret_values(None, None) == []
    assert secret_values("abc", None) == [], "too short to look for: it would match ordinary words"


def test_echoed_headers_are_hidden() -> None:
    basic = base64.b64encode(b"monitor:s3cret-pass").decode()
    assert redact(f"Authorization: Bearer {TOKEN}", SECRETS) == f"Authorization: Bearer {REDACTED}"
    assert redact(f'{{"Authorization": "Basic {basic}"}}', SECRETS) == f'{{"Authorization": "Basic {REDACTED}"}}'
    # Any credential after a scheme or in a field named like one, not only the configured one.
    assert redact("Bearer abc.def.ghi123", []) == f"Bearer {REDACTED}"
    assert redact("password=hunter22x", []) == f"password={REDACTED}"
    assert redact('"apiKey": "AKCp8jQ8tAahqp"', []) == f'"apiKey": "{REDACTED}"'


def test_a_secret_cut_short_at_the_end_of_a_snippet_is_hidden() -> None:
    assert redact(f"echo {TOKEN[:20]}…", SECRETS) == f"echo {REDACTED}…"


def test_words_stay() -> None:
    for text in ("HTTP 401: Basic authentication failed", "Token authentication failed: bad password",
                 "Bad credentials (check the configured credentials)"):
        assert redact(text, SECRETS) == text


_ALPHABET = string.ascii_letters + string.digits + "-_.~+/="


@given(secret=st.text(_ALPHABET, min_size=6, max_size=80), before=st.text(max_size=60),
       after=st.text(max_size=60))
def test_a_secret_never_survives(secret: str, before: str, after: str) -> None:
    assert secret not in redact(before + secret + after, secret_values(secret, None))


def test_user_info_is_cut_from_every_url_whatever_its_scheme() -> None:
    text = "tried htps://admin:pw@jpd.example/x and ftp://u@h and https://jpd.example/ok"
    assert without_userinfo(text) == (f"tried htps://{REDACTED}@jpd.example/x and ftp://{REDACTED}@h and "
                                      "https://jpd.example/ok")
    assert redact("cannot reach http://a:b@jpd", []) == f"cannot reach http://{REDACTED}@jpd"
