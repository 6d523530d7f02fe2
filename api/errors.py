"""Every error leaves the API as ``application/problem+json`` (RFC 9457), rendered here only.

Typed errors of :mod:`spotify_engine.errors` map to status codes; request validation names
the bad field; a Neo4j outage is a 503 with ``Retry-After`` (the driver reconnects by itself,
so the same process answers 200 again once the server is back).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spotify_engine.errors import (
    AuthFailed,
    CredentialsMissing,
    CredentialsRefused,
    GraphUnavailable,
    ModelError,
    NotFound,
    SpotifyEngineError,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

#: Typed error -> (status, title); the first match wins, so subclasses come first.
STATUS: tuple[tuple[type[SpotifyEngineError], int, str], ...] = (
    (NotFound, 404, "Not Found"),
    (CredentialsMissing, 401, "Unauthorized"),
    (CredentialsRefused, 403, "Forbidden"),
    (GraphUnavailable, 503, "Service Unavailable"),
    (AuthFailed, 503, "Service Unavailable"),
    (ModelError, 503, "Service Unavailable"),
)


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"] if len(loc) > 1 else [str(p) for p in loc]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install(app: FastAPI, *, retry_after_s: int) -> None:
    @app.exception_handler(SpotifyEngineError)
    async def _typed(request: Request, exc: SpotifyEngineError) -> JSONResponse:
        status, title = next(
            ((st, ti) for cls, st, ti in STATUS if isinstance(exc, cls)),
            (500, "Internal Server Error"),
        )
        if status == 500:
            log.error("unexpected %s: %s", type(exc).__name__, exc)
        headers: dict[str, str] = {}
        if status == 503:
            headers["Retry-After"] = str(retry_after_s)
        if status == 401:
            headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
        return problem(request, status, title, str(exc), headers, hint=exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "request", "message": "invalid"}
        detail = f"{first['field']}: {first['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem(request, 422, "Unprocessable Content", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            request,
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail) if exc.detail else None,
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(request, 500, "Internal Server Error", "an unexpected error occurred")


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
