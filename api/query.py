"""Query parameters read through one pydantic model, validated in one call.

FastAPI validates each declared query parameter on its own, re-inspecting its annotation on
every request (``field_annotation_is_sequence``, alias lookup, one ``validate_python`` each):
for the seven parameters of a user's recommendations that was about a quarter of the
request's CPU on the API's hottest path. A :class:`QueryModel` validates them all with one
``model_validate``; its ``openapi`` documents them exactly as declared parameters would be,
and an invalid value raises the same ``RequestValidationError`` (``loc`` ``("query", name,
...)``), so the answer is the API's usual 422 problem.

    RECOMMENDATIONS = QueryModel(RecommendationsQuery)

    @router.get("/{user_id}/recommendations", openapi_extra=RECOMMENDATIONS.openapi)
    async def get_recommendations(user_id: UserId, request: Request) -> Response:
        q = RECOMMENDATIONS.parse(request)
"""

from __future__ import annotations

import typing
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class QueryModel(Generic[M]):
    """The query parameters of a route as the fields of ``model`` (no aliases; a ``list``
    field is a repeated parameter, ``?exclude_songs=a&exclude_songs=b``)."""

    def __init__(self, model: type[M]):
        self.model = model
        self._fields = tuple(
            (name, typing.get_origin(field.annotation) is list)
            for name, field in model.model_fields.items()
        )
        self.openapi: dict[str, Any] = {"parameters": self._parameters()}

    def parse(self, request: Request) -> M:
        given = request.query_params
        values: dict[str, Any] = {}
        for name, many in self._fields:
            if many:
                if items := given.getlist(name):
                    values[name] = items
            elif (value := given.get(name)) is not None:
                values[name] = value
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None

    def _parameters(self) -> list[dict[str, Any]]:
        schema = self.model.model_json_schema()
        if "$defs" in schema:  # a nested type would need its definitions carried along
            raise TypeError(f"{self.model.__name__}: query fields must be plain types")
        out = []
        for name, field in self.model.model_fields.items():
            prop = dict(schema["properties"][name])
            description = prop.pop("description", None)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": field.is_required(),
                "schema": prop,
            }
            if description:
                parameter["description"] = description
            out.append(parameter)
        return out
