"""Every service's OpenAPI document names every error status an operation can answer, each
with the one error schema, and its docs pages work without internet access.

The statuses are derived from what a route depends on, not listed by hand on each route:
a bearer dependency answers 401 (and the admin one 403), a path parameter 404, any
parameter or body 422, a body 400 and 413 (and 415 if it is JSON), the database's units
of work 503. What only a route knows (409 EMAIL_TAKEN, 429 ...) stays in its
`responses=`, whose descriptions are kept; every error entry gets the `ErrorResponse`
schema. FastAPI's own 422 schema (`HTTPValidationError`) is replaced: it is not what the
services answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import HTTPBearer
from pydantic import TypeAdapter
from starlette.routing import BaseRoute

from retail.kernel.edges import takes_json_body
from retail.kernel.errors import ErrorResponse
from retail.kernel.queries import QueryString
from retail.kernel.security import (
    access_bearer,
    admin_principal,
    current_principal,
    internal_caller,
    service_bearer,
)
from retail.kernel.storage import read_only_unit_of_work, service_deps, unit_of_work

ERROR_SCHEMA = "ErrorResponse"
_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
DESCRIPTIONS = {
    400: "BAD_REQUEST: the body could not be read",
    401: "UNAUTHORIZED: no token, or an invalid or expired one",
    403: "FORBIDDEN: signed in, but not allowed",
    404: "NOT_FOUND: no such resource",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE: the body is over the size limit",
    415: "UNSUPPORTED_MEDIA_TYPE: the body is not JSON",
    422: "VALIDATION_ERROR: `details.fields` lists the fields and what is wrong",
    429: "TOO_MANY_REQUESTS: retry after `Retry-After` seconds",
    503: "SERVICE_UNAVAILABLE: the database or a service this needs cannot answer; retry",
}
_BY_DEPENDENCY: dict[Callable[..., Any], tuple[int, ...]] = {
    current_principal: (401,),
    internal_caller: (401,),
    admin_principal: (401, 403),
    unit_of_work: (503,),
    read_only_unit_of_work: (503,),
    service_deps: (503,),
}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _parameters(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    yield from _dependencies(dependant)


def error_statuses(route: APIRoute | RouteContext) -> set[int]:
    """The error statuses a route can answer, from what it depends on and declares."""
    found = {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
    for dependency in _dependencies(route.dependant):
        if isinstance(dependency.call, HTTPBearer):  # a token sent is checked, even if optional
            found.add(401)
        else:
            found.update(_BY_DEPENDENCY.get(dependency.call, ()))  # type: ignore[arg-type]
    every = list(_parameters(route.dependant))
    if any(d.path_params for d in every):
        found.add(404)
    if _query_strings(route) or any(
        d.query_params or d.path_params or d.header_params or d.cookie_params for d in every
    ):
        found.add(422)
    if route.body_field is not None:
        # 400: a body that cannot be read at all (not UTF-8, a broken multipart envelope).
        found |= {400, 413, 422} | ({415} if takes_json_body(route) else set())
    return found


def _query_strings(route: APIRoute | RouteContext) -> list[QueryString[Any]]:
    """The query models a route reads (kernel/queries.py): FastAPI sees only a `Request`."""
    return [d.call for d in _dependencies(route.dependant) if isinstance(d.call, QueryString)]


def _document_query_strings(
    operation: dict[str, Any], route: RouteContext, components: dict[str, Any]
) -> None:
    for query in dict.fromkeys(_query_strings(route)):  # once each, as FastAPI caches it
        parameters = operation.setdefault("parameters", [])
        named = {(p.get("in"), p.get("name")) for p in parameters}
        parameters.extend(p for p in query.parameters() if ("query", p["name"]) not in named)
        components.update(query.definitions())


def _token_is_optional(route: RouteContext) -> bool:
    """A route that reads a bearer token without requiring one (a public read that shows
    admins more): FastAPI marks it as secured all the same."""
    calls = {d.call for d in _dependencies(route.dependant)}
    required = {current_principal, admin_principal, internal_caller, access_bearer, service_bearer}
    return not calls & required


def _error_entry(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    description = (declared or {}).get("description")
    if not description or description == "Validation Error":  # FastAPI's own 422 entry
        description = DESCRIPTIONS.get(status, "Error")
    entry: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _REF}},
    }
    if status == 429:
        entry["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return entry


def document_errors(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Add the error statuses of every operation to an OpenAPI document, in place."""
    # Included routers are resolved lazily: iter_route_contexts walks into them, giving each
    # route as included (prefixed path, the router's `responses=` merged in).
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            _document_query_strings(operation, route, components)
            responses = operation.setdefault("responses", {})
            for status in error_statuses(route):
                responses[str(status)] = _error_entry(status, responses.get(str(status)))
            operation["responses"] = dict(sorted(responses.items()))
            if "security" in operation and _token_is_optional(route):
                operation["security"] = [{}, *operation["security"]]  # OpenAPI's "optional"
    components[ERROR_SCHEMA] = TypeAdapter(ErrorResponse).json_schema(
        ref_template="#/components/schemas/{model}"
    )
    if "HTTPValidationError" not in str(schema["paths"]):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def install_openapi(app: FastAPI) -> None:
    """FastAPI builds the document once (again only if routes are added); the error
    statuses are added to each document it builds."""
    build = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not documented or documented[0] is not document:
            document_errors(document, app.routes)
            documented[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
