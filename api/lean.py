"""The API's hottest route served ahead of FastAPI's router, documented by FastAPI as usual.

FastAPI answers a request to an ``APIRoute`` through its router (included routers matched
through route contexts) and its request handler (dependencies and each declared parameter
resolved and validated one by one, the return value checked against the response model).
On ``GET /users/{user_id}/recommendations`` under load that machinery was about 40 % of the
server's CPU per request (issue 14 item 7, in process: 560 us per request with FastAPI's
handler, 480 with its router and no handler work, 390 served ahead of the router).

:func:`serve_ahead` puts a :class:`FastPath` for one ``APIRoute`` first in the app's routes.
It matches the same path and methods, validates the path parameters with the route's own
fields (a 422 problem as usual) and calls the same endpoint. The ``APIRoute`` stays where it
is: FastAPI documents it (``/docs``, ``/openapi.json``), and it would serve the requests
itself, unchanged, without the ``FastPath``. The endpoint takes the path parameters and
``request`` only, and returns its ``Response``; its query is read through
``api.query.QueryModel`` and documented with ``openapi_extra``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import Match, Route
from starlette.types import Scope


class FastPath(Route):
    """Serves ``route``'s endpoint; refuses (``TypeError``) an endpoint with parameters other
    than path parameters and the request, which only FastAPI's handler would resolve."""

    def __init__(self, route: APIRoute):
        d = route.dependant
        extra = [
            kind
            for kind, fields in (
                ("query", d.query_params),
                ("header", d.header_params),
                ("cookie", d.cookie_params),
                ("body", d.body_params),
                ("dependency", d.dependencies),
            )  # fmt: skip
            if fields
        ]
        if extra or d.request_param_name is None:
            raise TypeError(
                f"{route.path}: a FastPath endpoint takes path parameters and request only "
                f"(it has {', '.join(extra) or 'no request parameter'})"
            )
        self._path_fields = d.path_params
        self._request_name: str = d.request_param_name
        self._endpoint = route.endpoint
        super().__init__(
            route.path, self._serve, methods=sorted(route.methods or ()), name=route.name,
            include_in_schema=False,
        )  # fmt: skip

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self  # the route template of the metrics (api.services.metrics)
        return match, child

    async def _serve(self, request: Request) -> Response:
        values, errors = request_params_to_args(self._path_fields, request.path_params)
        if errors:
            raise RequestValidationError(errors)
        values[self._request_name] = request
        response: Response = await self._endpoint(**values)
        return response


def serve_ahead(app: FastAPI, router: APIRouter, path: str, method: str = "GET") -> FastPath:
    """Put a :class:`FastPath` for ``router``'s ``APIRoute`` of ``method path`` first in the
    app (``router`` is included in ``app`` without a further prefix)."""
    route = next(
        (r for r in router.routes
         if isinstance(r, APIRoute) and r.path == path and method in (r.methods or ())),
        None,
    )  # fmt: skip
    if route is None:
        raise LookupError(f"no {method} {path} route to serve ahead")
    fast = FastPath(route)
    app.router.routes.insert(0, fast)
    return fast


__all__ = ["FastPath", "serve_ahead"]
