"""Validating an event model's input into plain dicts, for the collector's hot path.

A pydantic model instance costs far more to build than the dict it holds: validating a native
submission into `FeedbackSubmission` (four nested models, 21 fields with their defaults) took
three times as long as validating the same JSON into dicts, and it was the largest single cost
of an accepted event. `PlainModel` derives, from the model's own pydantic-core schema, a
validator of the same constraints whose output is nested dicts holding only the fields the
input gave (no defaults), and a serialiser that writes them as the model would.

The model stays the contract: the derived schema is built from it at import, so a changed
field or constraint changes both; a model-level validator must be given as a `rule` on the
dict (the derivation refuses a model validator it has no rule for, and any schema construct it
does not know); a failure is reported with the model's own `ValidationError`, by validating
the input again with the model. `tests/schema/test_plain.py` checks on random input that both
accept and refuse the same documents and that their JSON validates as the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import CoreSchema, SchemaSerializer, SchemaValidator
from pydantic_core import core_schema as cs

M = TypeVar("M", bound=BaseModel)

Plain = dict[str, Any]
"""A validated event as nested dicts: only the fields its input gave, defaults left out."""

Rule = Callable[[Plain], None]
"""The dict form of a model validator (`mode="after"`): raises `ValueError` to refuse."""

_LEAVES = frozenset(
    {"str", "int", "float", "bool", "literal", "datetime", "date", "none", "any", "bytes"}
)
_FIELD_OPTIONS = ("validation_alias", "serialization_alias", "serialization_exclude", "metadata")


class PlainModel(Generic[M]):
    """`model`'s validation into `Plain` dicts, and their JSON as the model writes it."""

    def __init__(self, model: type[M], *, rules: Mapping[str, Rule] | None = None) -> None:
        self.model = model
        schema = plain_schema(model.__pydantic_core_schema__, dict(rules or {}))
        self.schema = schema
        self._validator = SchemaValidator(schema)
        self._serializer = SchemaSerializer(schema)

    def validate_json(self, data: bytes | str) -> Plain:
        """The dict of a JSON document; raises the model's `ValidationError` when invalid."""
        try:
            plain: Plain = self._validator.validate_json(data)
        except ValidationError:
            return self._from_model(self.model.model_validate_json(data))
        return plain

    def validate_python(self, data: Any) -> Plain:
        """The dict of a Python object; raises the model's `ValidationError` when invalid."""
        try:
            plain: Plain = self._validator.validate_python(data)
        except ValidationError:
            return self._from_model(self.model.model_validate(data))
        return plain

    def to_json(self, plain: Plain, *, exclude: set[str] | None = None) -> bytes:
        """The JSON of a validated dict, None members left out, as the model's `to_json` with
        `exclude_none` writes the same values."""
        return self._serializer.to_json(plain, exclude_none=True, exclude=exclude)

    def _from_model(self, instance: BaseModel) -> Plain:
        # Reached only if the derived schema refused what the model accepts (the tests say it
        # does not); the model has the last word, as it has on every refusal.
        plain: Plain = self._validator.validate_python(instance.model_dump(exclude_unset=True))
        return plain


def plain_schema(schema: CoreSchema, rules: dict[str, Rule]) -> CoreSchema:
    """`schema` with every model turned into a typed dict of the same fields and constraints;
    fields with a default become optional keys without it."""
    kind = schema["type"]
    if kind == "model":
        return _typed_dict(schema, rules)
    if kind == "function-after" and schema["schema"]["type"] == "model":
        name = schema["function"]["function"].__name__
        rule = rules.get(name)
        if rule is None:
            raise TypeError(f"no plain rule for the model validator {name!r}")
        return cs.no_info_after_validator_function(
            _checked(rule), _typed_dict(schema["schema"], rules)
        )
    if kind in _LEAVES:
        return schema
    if kind in ("nullable", "function-after", "function-before"):
        return {**schema, "schema": plain_schema(schema["schema"], rules)}
    if kind == "list":
        return {**schema, "items_schema": plain_schema(schema["items_schema"], rules)}
    raise TypeError(f"PlainModel does not know the schema type {kind!r}")


def _typed_dict(schema: Any, rules: dict[str, Rule]) -> CoreSchema:
    if schema.get("post_init") or schema.get("custom_init") or schema.get("root_model"):
        raise TypeError(f"PlainModel cannot derive {schema['cls'].__name__}: custom construction")
    fields_schema = schema["schema"]
    if fields_schema.get("computed_fields") or fields_schema.get("extras_schema"):
        raise TypeError(f"PlainModel cannot derive {schema['cls'].__name__}: computed fields")
    fields: dict[str, cs.TypedDictField] = {}
    for name, field in fields_schema["fields"].items():
        inner = field["schema"]
        optional = inner["type"] == "default"
        options = {option: field[option] for option in _FIELD_OPTIONS if option in field}
        fields[name] = cs.typed_dict_field(
            plain_schema(inner["schema"] if optional else inner, rules),
            required=not optional,
            **options,
        )
    config: cs.CoreConfig = schema.get("config") or cs.CoreConfig()
    return cs.typed_dict_schema(
        fields, extra_behavior=config.get("extra_fields_behavior", "ignore"), config=config
    )


def _checked(rule: Rule) -> Callable[[Plain], Plain]:
    def check(plain: Plain) -> Plain:
        rule(plain)
        return plain

    return check
