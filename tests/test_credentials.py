from __future__ import annotations

import base64
import json
from typing import List, Tuple

from qelos_integrator_fastapi import AuthMode, QelosConfig, TokenPair
from qelos_integrator_fastapi._credentials import read_credentials, unverified_claims

CONFIG = QelosConfig(app_url="https://qelos.example.com")


def scope(*headers: Tuple[str, str]) -> dict[str, object]:
    raw: List[Tuple[bytes, bytes]] = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]
    return {"type": "http", "headers": raw}


def test_nothing_is_anonymous() -> None:
    creds = read_credentials(scope(), CONFIG)
    assert creds.mode is AuthMode.ANONYMOUS
    assert creds.rejected is None


def test_bearer_wins_over_the_access_cookie() -> None:
    creds = read_credentials(
        scope(("authorization", "Bearer header.tok.en"), ("cookie", "q_access_token=cookie; q_refresh_token=r1")),
        CONFIG,
    )
    assert creds.mode is AuthMode.TOKEN
    assert creds.access_token == "header.tok.en"
    assert creds.refresh_token == "r1"


def test_scheme_is_case_insensitive_and_other_schemes_are_ignored() -> None:
    assert read_credentials(scope(("authorization", "bearer abc")), CONFIG).access_token == "abc"
    basic = read_credentials(scope(("authorization", "Basic dXNlcjpwdw==")), CONFIG)
    assert basic.mode is AuthMode.ANONYMOUS
    assert basic.rejected == "Authorization scheme is not Bearer"


def test_token_mode_wins_over_a_session_cookie() -> None:
    creds = read_credentials(scope(("cookie", "qlt_0=session; q_access_token=access")), CONFIG)
    assert creds.mode is AuthMode.TOKEN
    assert creds.session_cookie is None


def test_session_cookie_then_legacy_name() -> None:
    assert read_credentials(scope(("cookie", "qlt_0=abc")), CONFIG).session_cookie == ("qlt_0", "abc")
    assert read_credentials(scope(("cookie", "token=abc")), CONFIG).session_cookie == ("token", "abc")
    both = read_credentials(scope(("cookie", "token=legacy; qlt_0=new")), CONFIG)
    assert both.mode is AuthMode.SESSION
    assert both.session_cookie == ("qlt_0", "new")


def test_unrelated_cookies_are_not_credentials() -> None:
    creds = read_credentials(scope(("cookie", "theme=dark; sessionid=xyz")), CONFIG)
    assert creds.mode is AuthMode.ANONYMOUS


def test_api_token_mode_ignores_the_request() -> None:
    config = QelosConfig(app_url="https://qelos.example.com", api_token="ql_abc")
    creds = read_credentials(scope(("authorization", "Bearer user-token")), config)
    assert creds.mode is AuthMode.API_TOKEN
    assert creds.access_token is None


def test_cookies_split_over_several_headers_are_read() -> None:
    creds = read_credentials(scope(("cookie", "a=1"), ("cookie", "q_refresh_token=r")), CONFIG)
    assert creds.refresh_token == "r"


def test_repr_never_shows_tokens() -> None:
    creds = read_credentials(scope(("authorization", "Bearer secret-access-token-value")), CONFIG)
    assert "secret-access-token-value" not in repr(creds)


def test_a_credential_of_exactly_the_length_limit_is_read_and_one_more_is_not() -> None:
    config = QelosConfig(app_url="https://qelos.example.com", max_credential_length=16)
    for length, expected in ((16, "t" * 16), (17, None)):
        token = "t" * length
        bearer = read_credentials(scope(("authorization", f"Bearer {token}")), config)
        cookies = read_credentials(scope(("cookie", f"q_access_token={token}; q_refresh_token={token}")), config)
        session = read_credentials(scope(("cookie", f"qlt_0={token}")), config)
        assert (bearer.access_token, cookies.access_token, cookies.refresh_token) == (expected,) * 3
        assert session.session_cookie == (None if expected is None else ("qlt_0", expected))
        assert (bearer.rejected is None) == (expected is not None)


def test_a_rejected_bearer_header_does_not_hide_the_access_cookie() -> None:
    creds = read_credentials(
        scope(("authorization", "Basic dXNlcjpwdw=="), ("cookie", "q_access_token=cookie")), CONFIG
    )
    assert (creds.mode, creds.access_token) == (AuthMode.TOKEN, "cookie")
    assert creds.rejected == "Authorization scheme is not Bearer"


def test_several_authorization_headers_are_all_ignored() -> None:
    creds = read_credentials(scope(("authorization", "Bearer one"), ("authorization", "Bearer two")), CONFIG)
    assert (creds.mode, creds.rejected) == (AuthMode.ANONYMOUS, "several Authorization headers")


def test_spaces_around_the_bearer_token_are_not_part_of_it() -> None:
    assert read_credentials(scope(("authorization", "Bearer   abc  ")), CONFIG).access_token == "abc"


def test_an_empty_bearer_token_is_ignored_with_its_reason() -> None:
    creds = read_credentials(scope(("authorization", "Bearer ")), CONFIG)
    assert (creds.mode, creds.rejected) == (AuthMode.ANONYMOUS, "empty credential")


def test_the_first_ignored_credential_is_the_reason_given() -> None:
    config = QelosConfig(app_url="https://qelos.example.com", max_credential_length=16)
    cookies = f"q_access_token=cookie; q_refresh_token={'r' * 17}"
    creds = read_credentials(scope(("authorization", "Basic dXNlcjpwdw=="), ("cookie", cookies)), config)
    assert (creds.mode, creds.access_token, creds.refresh_token) == (AuthMode.TOKEN, "cookie", None)
    assert creds.rejected == "Authorization scheme is not Bearer"


def test_a_session_cookie_of_another_tenant_is_named_only_when_qelos_could_have_written_it() -> None:
    def other(cookie: str) -> object:
        return read_credentials(scope(("cookie", cookie)), CONFIG).other_tenant_cookie

    assert other("qlt_5f0a1b2c=v") == "qlt_5f0a1b2c"
    assert other("qlt_acme=v; theme=dark") == "qlt_acme"
    assert other("qlt_5f0a1b2c=") is None  # no value, nothing to warn about
    assert other("qlt_5f0a1b2c9=v") is None  # Qelos keeps 8 characters of the tenant
    assert other("qlt_a%0d%0ab=v") is None  # never a client's arbitrary name in a log line
    assert other("qlt_0=") is None  # ours, empty
    assert read_credentials(scope(("cookie", "qlt_0=s; qlt_acme=v")), CONFIG).other_tenant_cookie is None


def test_a_session_cookie_keeps_the_reason_an_earlier_credential_was_ignored() -> None:
    creds = read_credentials(scope(("authorization", "Basic dXNlcjpwdw=="), ("cookie", "qlt_0=session")), CONFIG)
    assert (creds.mode, creds.session_cookie) == (AuthMode.SESSION, ("qlt_0", "session"))
    assert creds.rejected == "Authorization scheme is not Bearer"


def test_a_credential_with_a_character_no_token_has_is_ignored_with_its_reason() -> None:
    creds = read_credentials(scope(("authorization", "Bearer <script>")), CONFIG)
    assert (creds.mode, creds.rejected) == (AuthMode.ANONYMOUS, "credential with characters a token cannot contain")


def test_reprs_show_which_credentials_are_present_and_mask_them() -> None:
    access, refresh = "access-token-value", "refresh-token-value"
    assert repr(TokenPair(access, refresh)) == (
        "TokenPair(access_token='acc…(18 chars)', refresh_token='ref…(19 chars)')"
    )
    tokens = read_credentials(scope(("cookie", f"q_access_token={access}; q_refresh_token={refresh}")), CONFIG)
    assert repr(tokens) == (
        "Credentials(mode=token, access_token='acc…(18 chars)', refresh_token='ref…(19 chars)', "
        "session_cookie=None, rejected=None, other_tenant_cookie=None)"
    )
    session = read_credentials(scope(("cookie", "qlt_0=session-cookie-value")), CONFIG)
    assert repr(session) == (
        "Credentials(mode=session, access_token=None, refresh_token=None, "
        "session_cookie=('qlt_0', '***'), rejected=None, other_tenant_cookie=None)"
    )


def test_claims_are_read_whatever_padding_the_base64_payload_needs() -> None:
    for size in range(12):
        claims = {"exp": 1800000000, "pad": "x" * size}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        assert unverified_claims(f"header.{payload}.signature") == claims
