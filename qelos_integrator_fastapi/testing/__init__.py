"""FakeQelos: an in-memory Qelos backend for tests, demos and local development.

`FakeQelos` is an ASGI application that answers like the Qelos gateway and its auth and no-code
services, following the HTTP contract of qelos-io/qelos (commit 4b6bcd01): real HS256 JWTs with
the real claims, the `qlt_<tenant[:8]>` session cookie (`Path=/api`, `HttpOnly`, `Secure`,
`SameSite=None`, `Domain=<request host>`) with silent rotation, single-use rotating refresh tokens,
API tokens, workspaces, blueprint entities, and the exact status codes and error bodies.

Use it in-process through `fake.transport`, which answers only at the origin of `fake.url` (so a
wrong app_url fails as it would on a network), or on a loopback
port with `python -m qelos_integrator_fastapi.testing --port 8100`.

Emulated endpoints: `POST /api/signin`, `POST /api/signup`, `GET|POST /api/me`,
`GET|POST /api/workspaces`, `GET /api/workspaces/{id}`, `POST /api/workspaces/{id}/activate`,
`POST /api/token/refresh`, `POST /api/logout`, `GET /api/auth/{provider}`, `POST /api/auth/callback`,
`GET|POST /api/blueprints/{key}/entities`, `GET|PUT|DELETE /api/blueprints/{key}/entities/{id}`,
`GET /api/blueprints/{key}/charts/count`. The `/api/v1/` prefix and `Accept-Version` are handled as
the gateway does; like a default gateway, it does not route `POST /api/cookie/refresh` (404).

Deliberate deviations from the real backend:

* Secrets: the default JWT and refresh secrets are long fake strings, not Qelos's short defaults,
  because PyJWT warns about HMAC keys under 32 bytes. Pass `jwt_secret=`/`refresh_token_secret=`.
* Time comes from the injectable `FakeClock` (default start 2027-01-15T08:00:00Z), not the wall
  clock, for `iat`/`exp`, token identifiers, rotation, locks and timestamps.
* One tenant: the fake holds the data of `FakeQelos(tenant=...)`. A request's tenant is resolved as
  the gateway does it: a host of `hosts=` gives its tenant (a `tenant` header is ignored there),
  any other host the `tenant` header, else `"0"`; a verified JWT then sets the auth service's
  tenant to its claim. Requests for another tenant find no users, blueprints, API tokens or session
  cookie. Every host not in `hosts=` counts as Qelos's default host (Qelos answers 400
  `no website for host` for a host it does not know); there is no impersonation.
* Workspace configuration is always active (a Qelos tenant can turn workspaces off).
* Social login has no provider: `GET /api/auth/{provider}` answers the provider callback's redirect
  straight away for the user given to `set_social_user()`; `redirectUrl` is ignored.
* `/api/auth/callback` returns a sanitised user document (no password, salt or token list).
* Unknown routes and wrong methods answer 404 `{"message":"Cannot <METHOD> <path>"}` in JSON where
  Express sends an HTML page; malformed JSON bodies answer 400 `{"message":"invalid JSON body"}`.
* A bare `Authorization: Bearer` with no token gives the usual 401 (Qelos probably answers 500).
* An invalid `authType` on a signin with the right password never gets an answer from Qelos (its login
  strategy's promise rejects unhandled: the request hangs, or the auth service exits in production);
  FakeQelos drops the connection, as a `drop` fault does.
* Signup stores `birthDate` as sent (Qelos normalises the date).
* `POST /api/workspaces` without a name gives 400 `{"message":"workspace name is required"}`
  (Qelos's answer is unverified); workspace creation permissions and label rules are not emulated.
* Entities: bare property names in `$sort` sort by that property (Qelos sorts by document paths
  such as `metadata.price`); `$populate`/`$outerPopulate`, relations, limits, `auditInfo`,
  `DELETE .../entities/all` and the guest rate limit are not emulated. Unknown `$` keys such as
  `$skip` and `$select` answer 500, as Mongo rejects them. Filters support equality and the
  `[$ne]`, `[$gt]`, `[$gte]`, `[$lt]`, `[$lte]`, `[$regex]` operators.
* Not emulated: `/api/me/api-tokens` (create tokens with `add_api_token()`), invites, users,
  roles, `DELETE /api/workspaces/{id}`, members listing, permissions, the provider callbacks.
* A `drop` fault raises `httpx.RemoteProtocolError` in-process; under uvicorn it closes the socket
  before any byte is written. Other ASGI servers answer their own 500 instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import FakeQelos
    from ._clock import FakeClock
    from ._log import LoggedRequest
    from ._models import FakeMember, FakeTokenPair, FakeUser, FakeWorkspace

# Imported on first use: the pytest plugin lives in this package and pytest loads it in every run,
# where PyJWT (the `testing` extra) may not be installed.
_EXPORTS: Dict[str, str] = {
    "FakeClock": "_clock",
    "FakeMember": "_models",
    "FakeQelos": "_app",
    "FakeTokenPair": "_models",
    "FakeUser": "_models",
    "FakeWorkspace": "_models",
    "LoggedRequest": "_log",
}

__all__ = [
    "FakeClock",
    "FakeMember",
    "FakeQelos",
    "FakeTokenPair",
    "FakeUser",
    "FakeWorkspace",
    "LoggedRequest",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
