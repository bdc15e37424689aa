"""A route's query string read by one Pydantic model, in one call.

FastAPI checks each query parameter a route declares on every request by walking its
annotation again (a model? a sequence? JSON?) and then validating it on its own: about
7 µs a parameter here, 61 µs for search's eight (docs/performance.md, round 7). A model
read by `QueryString` does the same checks in one `model_validate` of the query string,
in pydantic-core: 15 µs for the eight, the dependency's own call included. A route with
many optional parameters takes its model as a dependency:

    SearchParams = Annotated[SearchParameters, Depends(QueryString(SearchParameters))]

The model gets each parameter's last value, as FastAPI does, and ignores names it does not
declare (`extra="ignore"`, also as FastAPI). Its errors are FastAPI's own
`RequestValidationError`, located `query.<field>`, so they are answered as every other
VALIDATION_ERROR, and kernel/openapi.py lists each field as a query parameter of the
operation, with the 422 it can answer.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class QueryString(Generic[M]):
    """A dependency that reads the query string into `model`."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    async def __call__(self, request: Request) -> M:
        # async although it awaits nothing: FastAPI runs a plain `def` dependency in its
        # thread pool.
        try:
            return self.model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in errors]
            ) from None

    def parameters(self) -> list[dict[str, Any]]:
        """The model's fields as OpenAPI query parameters, as FastAPI writes declared ones."""
        schema = self._schema()
        required = set(schema.get("required", ()))
        parameters = []
        for name, field in schema["properties"].items():
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in field:
                parameter["description"] = field["description"]
            parameter["schema"] = field
            parameters.append(parameter)
        return parameters

    def definitions(self) -> dict[str, Any]:
        """The schemas the parameters refer to (an enum's, say), for the document's components."""
        definitions: dict[str, Any] = self._schema().get("$defs", {})
        return definitions

    def _schema(self) -> dict[str, Any]:
        return self.model.model_json_schema(ref_template="#/components/schemas/{model}")
