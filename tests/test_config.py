from __future__ import annotations

from typing import Any

import pytest

from qelos_integrator_fastapi import QelosConfig, QelosConfigError


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


def test_tenant_names_the_session_cookie() -> None:
    config = QelosConfig(app_url="https://q.example.com", tenant="very-long-tenant-id")
    assert config.session_cookie_names == ("qlt_very-lon", "token")
