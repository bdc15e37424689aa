"""One error hierarchy for every service, mapped by one set of handlers to the wire format.

Unexpected exceptions are answered by `RequestContextMiddleware` (outermost), which knows the
request id; Starlette's own last-resort handler would render outside our headers.

Wire format: `{"status_code": 404, "error_code": "NOT_FOUND", "message": "...", "details": {...}}`
(`details` only when there is something useful to add). Nothing here ever renders a traceback.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

# For a field of a partial update that may be left out but not sent as null: the model's
# validator refuses the null, and the OpenAPI document does not offer it.
NotNull = SkipJsonSchema[None]


class ErrorResponse(BaseModel):
    """The one error shape of every service (documented for every error status)."""

    status_code: int = Field(ge=400, le=599, description="The HTTP status, repeated")
    error_code: str = Field(description="Stable machine-readable code, e.g. VALIDATION_ERROR")
    message: str = Field(description="For people; never a stack trace")
    detail: str = Field(
        description="The message again, under the name FastAPI and the original RetailHub "
        "backend used: the storefront shows `detail` to the shopper"
    )
    details: dict[str, Any] | SkipJsonSchema[None] = Field(
        None,
        description="Only when there is more to say; a validation error lists "
        "`fields: [{field, message, type}]`",
    )


class AppError(Exception):
    """Base of every error a use case may raise; carries its HTTP status and error code."""

    status_code: int = 500
    error_code: str = "INTERNAL_ERROR"
    message: str = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class BadRequest(AppError):
    status_code = 400
    error_code = "BAD_REQUEST"
    message = "Bad request"


class Unauthorized(AppError):
    status_code = 401
    error_code = "UNAUTHORIZED"
    message = "Not authenticated"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status_code = 403
    error_code = "FORBIDDEN"
    message = "Not allowed"


class NotFound(AppError):
    status_code = 404
    error_code = "NOT_FOUND"
    message = "Not found"


class Conflict(AppError):
    status_code = 409
    error_code = "CONFLICT"
    message = "Conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"
    message = "Request body too large"


class UnsupportedMediaType(AppError):
    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"
    message = "Unsupported media type"


class ValidationFailed(AppError):
    status_code = 422
    error_code = "VALIDATION_ERROR"
    message = "Invalid input"


class TooManyRequests(AppError):
    status_code = 429
    error_code = "TOO_MANY_REQUESTS"
    message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs["headers"] = {"Retry-After": str(max(1, retry_after))}
        super().__init__(message, **kwargs)


class ServiceUnavailable(AppError):
    status_code = 503
    error_code = "SERVICE_UNAVAILABLE"
    message = "A service this request needs is unavailable; try again shortly"


_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def error_body(
    status_code: int, error_code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status_code": status_code,
        "error_code": error_code,
        "message": message,
        # What FastAPI's own errors call the message; clients written for it read `detail`.
        "detail": message,
    }
    if details:
        body["details"] = details
    return body


def error_response(
    status_code: int,
    error_code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, error_code, message, details), status_code, headers=headers
    )


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.error_code, exc.message, exc.details, exc.headers)


# Pydantic puts the schema it tried into an error's location when a field is a union or has
# a validator function (`function-after[_not_blank(), constrained-str]`, `[key]`): a client
# knows the field, not our validators, so those parts are dropped.
_SCHEMA_PART = re.compile(r"[\[\](),\s]|^[a-z]+(-[a-z]+)+$")


def field_name(loc: tuple[int | str, ...]) -> str:
    """`body.shipping_address`, `query.limit`, `body.items.0.quantity`."""
    parts = [str(p) for p in loc if isinstance(p, int) or not _SCHEMA_PART.search(p)]
    return ".".join(parts)


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    # Only location, message and type: never the submitted value (it may be a password).
    return [
        {
            "field": field_name(tuple(err.get("loc", ()))),
            "message": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors()
        # The "or null" branch of an optional field (`X | NotNull`): the value was not meant
        # to be null, so only the other branch's error says what is wrong.
        if err.get("type") != "none_required"
    ]


_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _not_json(request: Request, exc: RequestValidationError) -> bool:
    """A body FastAPI did not read as JSON (another Content-Type, or none) fails validation
    as `body: not an object`: that is a 415, not a field of the client's being wrong."""
    media = _media_type(request.headers.get("content-type"))
    if _is_json(media) or media in _FORMS:
        return False
    return any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _not_json(request, exc):
        return error_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send the body as JSON (Content-Type: application/json)",
        )
    fields = _field_errors(exc)
    names = ", ".join(sorted({f["field"] for f in fields})) or "request"
    return error_response(422, "VALIDATION_ERROR", f"Invalid input: {names}", {"fields": fields})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize()
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
