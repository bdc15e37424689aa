"""The HTTP edges every service shares: which methods a path allows (405 and OPTIONS), a
body that is not JSON where JSON is expected (415), and CORS refusals in the wire error
format.

Starlette answers a 405 with the methods of the first route whose path matched, so
`OPTIONS /api/products` used to say `Allow: GET` although POST is served there too. The
methods here are collected from every route of the path.
"""

from __future__ import annotations

from typing import Any

from fastapi import params
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from retail.kernel.errors import error_response

# Methods the framework answers for every path it serves (HEAD for each GET, OPTIONS here).
IMPLICIT = frozenset({"OPTIONS"})


def allowed_methods(routes: list[BaseRoute], path: str) -> list[str]:
    """Every method some route serves at this path (empty: no route has this path)."""
    methods: set[str] = set()
    for context in iter_route_contexts(routes):
        regex = getattr(context, "path_regex", None)
        served = getattr(context, "methods", None)
        if served and regex is not None and regex.match(path):
            methods |= served
    return sorted(methods | IMPLICIT) if methods else []


async def method_not_allowed(request: Request, _: Exception) -> Response:
    """405 with an `Allow` naming every method of the path; OPTIONS (RFC 9110 9.3.7) is not
    an error: 204 with the same `Allow`. Registered for status 405."""
    allow = ", ".join(allowed_methods(request.app.routes, get_route_path(request.scope)))
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": allow})
    message = f"{request.method} is not allowed here; allowed: {allow}"
    return error_response(405, "METHOD_NOT_ALLOWED", message, headers={"Allow": allow})


def takes_json_body(route: Any) -> bool:
    """Whether a route (or route context) reads a JSON body (not a form or file upload)."""
    if getattr(route, "body_field", None) is None:
        return False
    dependant = route.dependant
    return not any(isinstance(p.field_info, params.Form) for p in dependant.body_params)


class JsonErrorCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight is answered in the wire error format: 403
    CORS_ORIGIN_NOT_ALLOWED for an origin not in CORS_ORIGINS, CORS_REQUEST_NOT_ALLOWED
    for a method or header the API does not take. No Access-Control-Allow-Origin is sent
    for a refused origin, so the browser still blocks the call."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        code = "CORS_ORIGIN_NOT_ALLOWED" if "origin" in refused else "CORS_REQUEST_NOT_ALLOWED"
        message = (
            "This origin may not call the API"
            if "origin" in refused
            else (f"CORS preflight refused: {', '.join(refused)} not allowed")
        )
        headers: dict[str, Any] = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in {"content-length", "content-type"}
        }
        return error_response(403, code, message, {"refused": refused}, headers=headers)
