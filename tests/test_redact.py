"""Secrets never reach the log in any common encoding (`controls.client.redact`)."""

from __future__ import annotations

import base64
import json
import re
import secrets
from urllib.parse import quote, quote_plus

import pytest

from warroom.controls.client import REDACTED, redact

TOKENS = [
    secrets.token_urlsafe(32),  # what `warroom sim` issues
    "s3cr3t/T0ken+with=symbols&more é",
    "abcdefgh",  # exactly the prefix length
]


def forms(token: str) -> list[str]:
    raw = token.encode()
    lower = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(token, safe=""))
    encoded: list[str] = [token, quote(token, safe=""), quote_plus(token), quote(token), lower]
    encoded += [json.dumps(token)[1:-1], json.dumps({"t": token}), token.replace("/", "\\/")]
    for pad in (b"", b"u", b"us", b"user:"):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(pad + raw + b"!").decode()
            encoded += [text, text.rstrip("=")]
        encoded.append(base64.b64encode(pad + raw).decode())
    return encoded


# ids by kind: a random token as a test id differs between test processes (pytest-xdist)
@pytest.mark.parametrize("token", TOKENS, ids=["issued", "symbols", "prefix-length"])
def test_every_encoding_of_a_secret_is_redacted(token: str) -> None:
    for form in forms(token):
        out = redact(f"HTTP 401: got {form} back", [token])
        assert out.startswith("HTTP 401: got ") and REDACTED in out, form
        leftover = out.replace(REDACTED, "")
        # At most the base64 characters shared with the neighbouring bytes remain.
        for piece in (token[:4], quote(token, safe="")[:6]):
            assert piece not in leftover or piece in "HTTP 401: got  back", (form, out)


def test_prefixes_of_eight_or_more_are_redacted_and_shorter_ones_kept() -> None:
    token = "tok_" + "A1b2C3d4E5f6G7h8"
    assert redact(f"auth={token[:8]}", [token]) == f"auth={REDACTED}"
    assert redact(f"auth={token[:15]}…", [token]) == f"auth={REDACTED}…"
    assert redact(f"x {token[:7]} y", [token]) == f"x {token[:7]} y"
    assert redact("nothing secret here", [token]) == "nothing secret here"


def test_short_strings_are_not_secrets_and_ordinary_text_survives() -> None:
    assert redact("the bar is open", ["bar"]) == "the bar is open"
    assert redact("rate=10 ok", ["rate"]) == f"{REDACTED}=10 ok"
    body = '{"value": 25, "unit": "percent"}'
    assert redact(body, TOKENS) == body


def test_base64_of_a_token_inside_a_basic_auth_header_is_gone() -> None:
    token = secrets.token_urlsafe(24)
    header = "Authorization: Basic " + base64.b64encode(f"admin:{token}".encode()).decode()
    out = redact(header, [token])
    assert REDACTED in out
    core = base64.b64encode(f"admin:{token}".encode()).decode()[12:-4]
    assert core not in out
