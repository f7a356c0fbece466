"""jsonable_encoder, as FastAPI's: any value turbo can send as JSON, made of dicts, lists, str,
int, float, bool and None (for storing it, or comparing it, as the client will read it)."""
import sys

from . import _support

__all__ = ["jsonable_encoder"]


def jsonable_encoder(obj, include=None, exclude=None, by_alias=True, exclude_unset=False,
                     exclude_defaults=False, exclude_none=False):
    """The JSON form of obj, as FastAPI encodes it; exclude_none drops None values of dicts
    too."""
    options = dict(by_alias=by_alias, exclude_unset=exclude_unset,
                   exclude_defaults=exclude_defaults, exclude_none=exclude_none)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        if hasattr(obj, "model_dump"):
            return obj.model_dump(mode="json", include=include, exclude=exclude, **options)
        import json
        return json.loads(obj.json(include=include, exclude=exclude, **options))
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {jsonable_encoder(k): jsonable_encoder(v, **options) for k, v in obj.items()
                if not (exclude_none and v is None)
                and (include is None or k in include) and (exclude is None or k not in exclude)}
    if isinstance(obj, (list, tuple)):
        return [jsonable_encoder(v, **options) for v in obj]
    plain = _support.plain(obj)  # dataclasses, enums, dates...
    if plain is NotImplemented:
        try:
            plain = dict(obj)
        except (TypeError, ValueError):
            plain = vars(obj)
    return jsonable_encoder(plain, **options)
