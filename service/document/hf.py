"""``architecture.hf_config``: a Hugging Face ``config.json`` object, validated against its family's
declared keys (``core.hf``) and loaded as an ``HFModel`` with its layers.

Only the keys the family reads are checked; every other key is kept as given (it is written back as
the folder's config.json) and never read. Errors name the key under ``architecture.hf_config``:
``model_type`` (missing, or not a family weightinit builds), ``architectures`` (a head class the
family does not have), or a family key (``num_hidden_layers``: Missing data for required field.).
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from ..core import hf
from .fields import marshmallow_field
from .strict import instance


def family_schema(family: hf.Family) -> type[Schema]:
    """The schema of one family's keys: the declared ones validated, the others left to the config."""
    attrs: dict = {f.name: marshmallow_field(f) for f in family.fields}
    if family.rules:
        @validates_schema
        def _rules(self, data, **kw):
            for rule in family.rules:
                broken = rule.check(data)
                if broken:
                    raise ValidationError(broken[1], broken[0])

        attrs["_rules"] = _rules
    attrs["Meta"] = type("Meta", (), {"unknown": EXCLUDE})
    return type(f"{family.model_type.title()}Config", (Schema,), attrs)


FAMILY_SCHEMAS: dict[str, type[Schema]] = {name: family_schema(f) for name, f in hf.FAMILIES.items()}


class HFConfigField(fields.Field):
    """A config.json object; loads as an ``HFModel`` (its family's layers built)."""

    def _deserialize(self, value, attr, data, **kw) -> hf.HFModel:
        if not isinstance(value, dict):
            raise ValidationError("must be a config.json object")
        model_type = value.get("model_type")
        if model_type is None:
            raise ValidationError({"model_type": ["Missing data for required field."]})
        if model_type not in hf.FAMILIES:
            raise ValidationError({"model_type": [f"Must be one of: {', '.join(hf.MODEL_TYPES)} "
                                                  f"(got {str(model_type)[:64]!r})."]})
        family = hf.FAMILIES[model_type]
        architecture = _architecture(family, value.get("architectures"))
        keys = dict(value)
        for alias, key in family.aliases.items():  # GPT-2's hidden_size is its n_embd
            if alias in keys and key not in keys:
                keys[key] = keys[alias]
        values = instance(FAMILY_SCHEMAS[model_type]).load(keys)
        return hf.model(family, architecture, value, values)


def _architecture(family: hf.Family, architectures) -> str:
    """The head class: ``architectures[0]``, or the family's base model when the key is absent."""
    if architectures is None:
        return family.base
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        raise ValidationError({"architectures": ["must be a list of class names, e.g. "
                                                 f"[{next(iter(family.heads))!r}]"]})
    if architectures[0] not in family.heads:
        raise ValidationError({"architectures": [f"{architectures[0][:64]!r} is not a {family.model_type} class "
                                                 f"weightinit builds; one of: {', '.join(family.heads)}"]})
    return architectures[0]
