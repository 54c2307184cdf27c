from __future__ import annotations

import re
from typing import Awaitable, Callable, Dict, List, Pattern, Sequence, Tuple

from starlette.convertors import Convertor
from starlette.responses import Response
from starlette.routing import compile_path

from ._auth_routes import logout, refresh_token, signin, signup
from ._call import Call
from ._entities import count_entities, create_entity, delete_entity, get_entity, list_entities, update_entity
from ._http import Problem, message
from ._me_routes import get_me, post_me
from ._social_routes import auth_callback, social_login
from ._workspace_routes import activate_workspace, create_workspace, get_workspace, list_workspaces

Handler = Callable[[Call], Awaitable[Response]]

ROUTES: Sequence[Tuple[str, str, Handler]] = (
    ("POST", "/api/signin", signin),
    ("POST", "/api/signup", signup),
    ("POST", "/api/token/refresh", refresh_token),
    ("POST", "/api/logout", logout),
    ("GET", "/api/me", get_me),
    ("POST", "/api/me", post_me),
    ("GET", "/api/workspaces", list_workspaces),
    ("POST", "/api/workspaces", create_workspace),
    ("GET", "/api/workspaces/{workspace_id}", get_workspace),
    ("POST", "/api/workspaces/{workspace_id}/activate", activate_workspace),
    ("POST", "/api/auth/callback", auth_callback),
    ("GET", "/api/auth/{provider}", social_login),
    ("GET", "/api/blueprints/{key}/entities", list_entities),
    ("POST", "/api/blueprints/{key}/entities", create_entity),
    ("GET", "/api/blueprints/{key}/entities/{identifier}", get_entity),
    ("PUT", "/api/blueprints/{key}/entities/{identifier}", update_entity),
    ("DELETE", "/api/blueprints/{key}/entities/{identifier}", delete_entity),
    ("GET", "/api/blueprints/{key}/charts/count", count_entities),
)

_VERSION_PREFIX = re.compile(r"^/api/v1(?=/)")
_ACCEPT_VERSION = re.compile(r"^v\d+$")


class Router:
    """Express-style dispatch: a path with no route for the method is a 404, never a 405."""

    def __init__(self, routes: Sequence[Tuple[str, str, Handler]] = ROUTES) -> None:
        self._routes: List[Tuple[str, Pattern[str], Dict[str, Convertor[str]], Handler]] = []
        for method, path, handler in routes:
            regex, _, convertors = compile_path(path)
            self._routes.append((method, regex, convertors, handler))

    async def handle(self, call: Call) -> Response:
        response = await self._dispatch(call)
        for cookie in call.set_cookies:
            response.headers.append("set-cookie", cookie)
        response.headers["x-api-version"] = "v1"
        return response

    async def _dispatch(self, call: Call) -> Response:
        version = call.request.headers.get("accept-version")
        if version is not None and not _ACCEPT_VERSION.match(version):
            return message(400, "Invalid Accept-Version header")
        method = call.request.method
        path = _VERSION_PREFIX.sub("/api", call.request.url.path)
        if len(path) > 1:
            path = path.rstrip("/")
        for route_method, regex, convertors, handler in self._routes:
            match = regex.match(path)
            if match is None or route_method != method:
                continue
            call.path_params = {key: convertors[key].convert(value) for key, value in match.groupdict().items()}
            try:
                return await handler(call)
            except Problem as problem:
                return problem.response
        return message(404, f"Cannot {method} {path}")
