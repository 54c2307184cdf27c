from __future__ import annotations

from typing import Any, Optional

import httpx
import pytest

from qelos_integrator_fastapi import QelosConfig, QelosConfigError
from qelos_integrator_fastapi._config import mask_secret


def test_defaults_match_the_seed() -> None:
    config = QelosConfig(app_url="https://qelos.example.com/")
    assert config.app_url == "https://qelos.example.com"
    assert config.api_token is None
    assert config.access_token_cookie == "q_access_token"
    assert config.refresh_token_cookie == "q_refresh_token"
    assert config.require_auth is False
    assert config.skip_paths == ()
    assert config.sdk_options == {}
    assert config.is_https
    assert config.session_cookie_names == ("qlt_0", "token")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"app_url": ""}, "app_url is required"),
        ({"app_url": "qelos.example.com"}, "http:// or https://"),
        ({"app_url": "ftp://qelos.example.com"}, "http:// or https://"),
        ({"app_url": "http://"}, "with a host"),
        ({"app_url": "https:///api"}, "with a host"),
        ({"app_url": "https://qelos.example.com?x=1"}, "must not carry a query"),
        ({"app_url": "https://user:pw@qelos.example.com"}, "must not carry"),
        ({"api_token": "  "}, "api_token must be a non-empty string"),
        ({"access_token_cookie": "bad name"}, "valid cookie name"),
        ({"refresh_token_cookie": "q_access_token"}, "must differ"),
        ({"require_auth": "yes"}, "require_auth must be True or False"),
        ({"skip_paths": "/health"}, "list of path prefixes"),
        ({"skip_paths": ["health"]}, "must start with '/'"),
        ({"sdk_options": {"nope": 1}}, "unknown option 'nope'"),
        ({"sdk_options": {"accessToken": "x"}}, "access_token cannot be set"),
        ({"sdk_options": {"extraHeaders": None}}, "extra_headers cannot be set"),
        ({"sdk_options": {"appUrl": "https://elsewhere.example.com"}}, "differs"),
        ({"sdk_options": {"extraQueryParams": 1, "extra_query_params": 2}}, "given twice"),
        ({"timeout": 0}, "must never wait forever"),
        ({"timeout": -1}, "timeout must be a number"),
        ({"timeout": True}, "timeout must be a number"),
        ({"timeout": float("nan")}, "timeout must be a number"),
        ({"refresh_timeout": float("nan")}, "refresh_timeout must be a number"),
        ({"identity_cache_ttl": float("nan")}, "identity_cache_ttl must be a number"),
        ({"timeout": 5, "refresh_timeout": 1}, "must be at least timeout"),
        ({"timeout": float("nan")}, "timeout must be a number"),
        ({"timeout": httpx.Timeout(5.0, read=None)}, "every phase"),
        ({"timeout": httpx.Timeout(5.0, connect=0)}, "every phase"),
        ({"timeout": httpx.Timeout(30.0)}, "must be at least timeout"),
        ({"limits": 10}, "httpx.Limits"),
        ({"limits": httpx.Limits(max_connections=5), "max_connections": 5}, "not both"),
        ({"max_connections": 0}, "positive integer"),
        ({"identity_cache_size": 0}, "positive integer"),
        ({"tenant": ""}, "tenant must be"),
        ({"session_cookie_path": "api"}, "must start with '/'"),
        ({"session_cookie_domain": "bad domain"}, "host name"),
        ({"transport": object()}, "httpx.AsyncBaseTransport"),
    ],
)
def test_invalid_values_fail_at_construction(options: Any, message: str) -> None:
    options = {"app_url": "https://qelos.example.com", **options}
    with pytest.raises(QelosConfigError, match=message):
        QelosConfig(**options)


def test_camel_case_sdk_options_are_normalised() -> None:
    def extra() -> dict[str, str]:
        return {"x": "1"}

    config = QelosConfig(
        app_url="https://qelos.example.com",
        sdk_options={"appUrl": "https://qelos.example.com/", "extraQueryParams": extra},
    )
    assert config.sdk_options == {"extra_query_params": extra}


def test_repr_masks_the_api_token() -> None:
    config = QelosConfig(app_url="https://q.example.com", api_token="ql_" + "a" * 64)
    assert "a" * 20 not in repr(config)
    assert "ql_" in repr(config)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "None"), ("", "''"), ("ql_" + "a" * 9, "'***'"), ("ql_" + "a" * 10, "'ql_…(13 chars)'")],
)
def test_secrets_are_shown_masked(value: Optional[str], shown: str) -> None:
    # Twelve characters or fewer: even a three-character prefix would give too much away.
    assert mask_secret(value) == shown


def test_tenant_names_the_session_cookie() -> None:
    config = QelosConfig(app_url="https://q.example.com", tenant="very-long-tenant-id")
    assert config.session_cookie_names == ("qlt_very-lon", "token")


def test_timeout_takes_a_float_or_an_httpx_timeout() -> None:
    short = QelosConfig(app_url="https://q.example.com", timeout=2)
    assert short.http_timeout == httpx.Timeout(2.0)
    assert short.deadline == 2.0
    phased = QelosConfig(app_url="https://q.example.com", timeout=httpx.Timeout(3.0, connect=1.0, pool=0.5))
    assert phased.http_timeout.connect == 1.0 and phased.http_timeout.read == 3.0
    # The whole call is bounded by the largest phase.
    assert phased.deadline == 3.0


def test_pool_limits_are_explicit() -> None:
    assert QelosConfig(app_url="https://q.example.com").pool_limits == httpx.Limits(
        max_connections=100, max_keepalive_connections=20
    )
    assert QelosConfig(app_url="https://q.example.com", max_connections=8).pool_limits == httpx.Limits(
        max_connections=8, max_keepalive_connections=8
    )
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50, keepalive_expiry=30.0)
    assert QelosConfig(app_url="https://q.example.com", limits=limits).pool_limits is limits


@pytest.mark.parametrize(
    "app_url", ["https://qelos.example.com/api", "https://qelos.example.com/api/", "http://h/x/api"]
)
def test_an_app_url_ending_in_api_is_refused(app_url: str) -> None:
    # Every request would otherwise ask /api/api/me and answer 503.
    with pytest.raises(QelosConfigError, match="without /api"):
        QelosConfig(app_url=app_url)


def test_an_app_url_with_another_path_is_kept() -> None:
    assert QelosConfig(app_url="https://example.com/qelos/").app_url == "https://example.com/qelos"
    assert QelosConfig(app_url="https://example.com/apis").app_url == "https://example.com/apis"


def test_the_unknown_sdk_option_message_lists_only_settable_options() -> None:
    with pytest.raises(QelosConfigError) as raised:
        QelosConfig(app_url="https://q.example.com", sdk_options={"nope": 1})
    known = str(raised.value).split("known options are ", 1)[1].split(", ")
    assert "extra_query_params" in known and "extraQueryParams" in known
    for owned in ("api_token", "apiToken", "access_token", "refresh_token", "extra_headers", "app_url", "appUrl"):
        assert owned not in known


def test_the_middleware_without_app_url_raises_the_config_error() -> None:
    from starlette.applications import Starlette

    from qelos_integrator_fastapi import QelosIntegratorMiddleware

    app = Starlette()
    app.add_middleware(QelosIntegratorMiddleware)
    # Starlette builds its middleware on the first ASGI call (the lifespan, under a server): that is where it raises.
    with pytest.raises(QelosConfigError, match="app_url is required"):
        app.build_middleware_stack()


# Only the options that can be set: the credential ones are refused with their own message.
KNOWN_SDK_OPTIONS = "extraQueryParams, extra_query_params, onFailedRefreshToken, on_failed_refresh_token"


# The whole message a developer reads when QelosConfig refuses a value: it says what to do, so it is pinned.
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"app_url": " "}, "app_url is required, for example QelosConfig(app_url='https://qelos.example.com')"),
        ({"api_token": ""}, "api_token must be a non-empty string, or None for browser credentials"),
        ({"refresh_token_cookie": "q_access_token"}, "access_token_cookie and refresh_token_cookie must differ"),
        ({"sdk_options": [("appUrl", "x")]}, "sdk_options must be a mapping of QelosSDKOptions fields"),
        ({"sdk_options": {"nope": 1}}, f"sdk_options: unknown option 'nope'; known options are {KNOWN_SDK_OPTIONS}"),
        (
            {"sdk_options": {"extraHeaders": {}, "accessToken": "x"}},
            "sdk_options: access_token, extra_headers cannot be set; the request SDK is bound to the caller's "
            "credentials (use api_token= on QelosConfig for service-to-service calls)",
        ),
        (
            {"sdk_options": {"appUrl": "https://elsewhere.example.com"}},
            "sdk_options: appUrl/app_url differs from QelosConfig.app_url",
        ),
        (
            {"timeout": 5, "refresh_timeout": 4.5},
            "refresh_timeout (4.5s) must be at least timeout (5.0s): a refresh abandoned early may still spend "
            "the caller's single-use refresh token",
        ),
        (
            {"limits": httpx.Limits(max_connections=5), "max_connections": 5},
            "pass limits=httpx.Limits(...) or the max_connections shorthand, not both",
        ),
        ({"timeout": 0}, "timeout must be > 0 seconds; an auth middleware must never wait forever"),
        ({"transport": object()}, "transport must be an httpx.AsyncBaseTransport"),
    ],
)
def test_error_messages_say_what_to_do(options: Any, message: str) -> None:
    options = {"app_url": "https://qelos.example.com", **options}
    with pytest.raises(QelosConfigError) as raised:
        QelosConfig(**options)
    assert str(raised.value) == message
    assert raised.value.code == "QELOS_CONFIG_INVALID"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"app_url": "https://qelos.example.com#top"}, "must not carry a query, fragment or credentials"),
        ({"app_url": "https://user@qelos.example.com"}, "must not carry a query, fragment or credentials"),
        ({"skip_paths": None}, "skip_paths must be a list of path prefixes"),
        ({"tenant": "a b"}, "tenant must be a non-empty token"),
        ({"tenant": 5}, "tenant must be a non-empty token"),
        ({"identity_cache_size": True}, "identity_cache_size must be a positive integer, got True"),
        ({"max_credential_length": 1.5}, "max_credential_length must be a positive integer"),
        ({"timeout": httpx.Timeout(5.0, connect=-1)}, "every phase"),
    ],
)
def test_values_of_the_wrong_kind_fail_at_construction(options: Any, message: str) -> None:
    # Each would otherwise slip past one half of its check, or fail later with a TypeError.
    options = {"app_url": "https://qelos.example.com", **options}
    with pytest.raises(QelosConfigError, match=message):
        QelosConfig(**options)


def test_boundary_values_are_accepted() -> None:
    config = QelosConfig(
        app_url="https://qelos.example.com",
        timeout=5,
        refresh_timeout=5,
        identity_cache_size=1,
        max_credential_length=1,
        max_connections=1,
    )
    # refresh_timeout may equal timeout; the smallest pool and cache are one.
    assert (config.refresh_timeout, config.deadline) == (5, 5.0)
    assert config.pool_limits == httpx.Limits(max_connections=1, max_keepalive_connections=1)
    assert (config.identity_cache_size, config.max_credential_length) == (1, 1)


def test_only_trailing_slashes_are_stripped_from_urls_and_skip_paths() -> None:
    config = QelosConfig(app_url="https://qelos.example.com/TAX//", skip_paths=["/", "/health/", "/BOX/", "/a//"])
    assert config.app_url == "https://qelos.example.com/TAX"
    # "/" skips everything: every path starts with "" + "/".
    assert config.skip_paths == ("", "/health", "/BOX", "/a")
    assert config.is_skipped("/anything")


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://cache.example.com:6380/1", "unix:///run/redis.sock"]
)
def test_each_redis_url_scheme_redis_py_knows_is_accepted(url: str) -> None:
    assert QelosConfig(app_url="https://q.example.com", redis_url=url).redis_url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A URL may carry Redis's password: the message shows only its start and length.
        ("http://user:secret@cache.example.com", "'htt…(36 chars)'"),
        (6379, "6379"),
    ],
)
def test_a_wrong_redis_url_is_refused_without_showing_it(url: Any, shown: str) -> None:
    with pytest.raises(QelosConfigError) as refused:
        QelosConfig(app_url="https://q.example.com", redis_url=url)
    assert str(refused.value) == (
        f"redis_url must be a redis://, rediss:// or unix:// URL such as 'redis://localhost:6379/0', got {shown}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            5,
            "trusted_origins must be a list of origins such as ['https://front.example.com'], got 5",
        ),
        (
            "https://front.example.com",
            "trusted_origins must be a list of origins such as ['https://front.example.com'], "
            "got 'https://front.example.com'",
        ),
        (
            ["https://front.example.com?x=1"],
            "trusted_origins entries must be origins written scheme://host[:port], such as "
            "'https://front.example.com', got 'https://front.example.com?x=1'",
        ),
        (
            ["https://front.example.com#top"],
            "trusted_origins entries must be origins written scheme://host[:port], such as "
            "'https://front.example.com', got 'https://front.example.com#top'",
        ),
    ],
)
def test_trusted_origins_are_origins_and_nothing_else(value: Any, message: str) -> None:
    with pytest.raises(QelosConfigError) as refused:
        QelosConfig(app_url="https://q.example.com", trusted_origins=value)
    assert str(refused.value) == message


def test_an_env_override_of_app_url_is_logged_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QELOS_PROXY_TARGET", "http://10.0.0.7:3000")
    caplog.set_level("WARNING", "qelos_integrator_fastapi")
    assert QelosConfig(app_url="https://q.example.com").upstream_url == "http://10.0.0.7:3000"
    assert caplog.messages == [
        "Qelos calls go to http://10.0.0.7:3000, set by the QELOS_PROXY_TARGET environment variable, not to app_url"
    ]
