"""Property-based tests for what parses client and upstream input: credentials and Set-Cookie."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import MutableHeaders

from qelos_integrator_fastapi import AuthMode, CookieBuffer, QelosConfig
from qelos_integrator_fastapi._cookies import parse_set_cookie, relay_to_app
from qelos_integrator_fastapi._credentials import read_credentials

CONFIG = QelosConfig(app_url="https://qelos.example.com", max_credential_length=64)
SAFE = re.compile(r"^[A-Za-z0-9\-._~+/=:%!#$&'*^`|]+$")
header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
names = st.sampled_from(["authorization", "cookie", "x-api-key", "user", "host"])
token_chars = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80)


def scope(headers: List[Tuple[str, str]]) -> dict[str, object]:
    return {"type": "http", "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers]}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, header_text), max_size=6))
def test_reading_credentials_never_fails_and_only_yields_safe_tokens(headers: List[Tuple[str, str]]) -> None:
    creds = read_credentials(scope(headers), CONFIG)
    for token in (creds.access_token, creds.refresh_token, creds.session_cookie and creds.session_cookie[1]):
        if token:
            assert SAFE.match(token)
            assert len(token) <= CONFIG.max_credential_length
    assert (creds.mode is AuthMode.TOKEN) == bool(creds.access_token or creds.refresh_token)
    assert (creds.mode is AuthMode.SESSION) == (creds.session_cookie is not None)


@settings(max_examples=200, deadline=None)
@given(token_chars)
def test_a_safe_bearer_token_is_read_back_exactly(token: str) -> None:
    # Tokens are drawn up to 80 characters, across the 64-character limit of CONFIG.
    creds = read_credentials(scope([("authorization", f"Bearer {token}")]), CONFIG)
    if SAFE.match(token) and len(token) <= CONFIG.max_credential_length:
        assert creds.access_token == token
    else:
        assert creds.access_token is None
        assert creds.mode is AuthMode.ANONYMOUS


@settings(max_examples=300, deadline=None)
@given(header_text)
def test_parsing_any_set_cookie_never_fails(header: str) -> None:
    cookie = parse_set_cookie(header)
    if cookie is not None:
        assert cookie.name
        assert "=" in header


jwt_like = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=300
)
cookie_value = st.one_of(st.just(""), jwt_like)
attribute = st.sampled_from(
    [
        "Max-Age=2592000",
        "Max-Age=-1",
        "Max-Age=0",
        "Domain=qelos.example.com",
        "Domain=.example.com",
        "Path=/api",
        "Path=/",
        "Expires=Thu, 01 Jan 2037 00:00:00 GMT",
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "SameSite=Strict",
        "Partitioned",
        "garbage",
        "=",
    ]
)


def attribute_name(attribute: str) -> str:
    return attribute.split("=", 1)[0].lower()


@settings(max_examples=300, deadline=None)
@given(
    cookie_value,
    # At most one of each attribute (the last Max-Age counts: see tests/core/test_cookies.py).
    st.lists(attribute, max_size=8, unique_by=attribute_name),
    st.booleans(),
    st.sampled_from(["/", "/app"]),
)
def test_relayed_cookies_always_carry_the_app_rules(value: str, attributes: List[str], secure: bool, path: str) -> None:
    cookie = parse_set_cookie("; ".join([f"qlt_0={value}", *attributes]))
    assert cookie is not None
    buffer = CookieBuffer()
    relay_to_app(buffer, cookie, path=path, secure=secure)
    headers = MutableHeaders()
    buffer.flush_into(headers)
    (written,) = headers.getlist("set-cookie")
    parts = [p.strip() for p in written.split(";")]
    assert f"Path={path}" in parts
    assert "HttpOnly" in parts
    assert "SameSite=lax" in parts
    assert ("Secure" in parts) == secure
    assert not any(p.lower().startswith("domain=") for p in parts)
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(written)
    # Independent of the code under test: Qelos deletes with Max-Age <= 0, or with an empty value.
    max_age = next((a.split("=", 1)[1] for a in attributes if attribute_name(a) == "max-age"), None)
    deleted = int(max_age) <= 0 if max_age is not None else value == ""
    if deleted:
        assert parsed["qlt_0"].value == ""
        assert "Max-Age=0" in parts
    else:
        assert parsed["qlt_0"].value == value
        assert (f"Max-Age={max_age}" in parts) == (max_age is not None)
