"""Answers serialised once, by pydantic's own serialiser.

A route that returns a model through `response_model` has FastAPI validate it again and
encode it a second time; on the order path that was a real share of each request. The hot
routes build their validated model and return `model_response(model)` instead; their
`response_model=` stays for OpenAPI, which is unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    body = model.__pydantic_serializer__.to_json(model)
    return Response(body, status_code=status_code, media_type="application/json")
