"""Route plans: what a handler's signature asks of each request, read once, at decoration.

turbo._turbo calls describe() for each route and keeps the answer as the C plan its
trampoline follows (turbo_py.c, tb_plan_new): where each parameter comes from (the path,
the query, the body or the request itself), how its text becomes a value, and its default.
An annotation turbo cannot honour is refused here, with the reason, never ignored.
"""
import inspect
import re
import sys
import types
import typing

from ._turbo import Request

_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))  # X | None: Python 3.10+
_SCALARS = ((int, "int"), (float, "float"), (bool, "bool"), (str, "str"), (typing.Any, "str"))


def translate(path):
    """FastAPI's "{name:path}" is turbo's tail capture "{name...}"."""
    return path.replace(":path}", "...}")


def captures(pattern):
    """The capture names of a turbo pattern."""
    return {name[:-3] if name.endswith("...") else name
            for name in re.findall(r"\{([^}]*)\}", pattern)}


def _pydantic_model(ann):
    pydantic = sys.modules.get("pydantic")  # a model exists only if the program imported it
    return pydantic is not None and isinstance(ann, type) and issubclass(ann, pydantic.BaseModel)


def _container(name, ann, kind):
    """dict[str, Any], List[Any] and the bare forms: the items are not checked one by one,
    so an annotation that asks for it is refused."""
    for i, arg in enumerate(typing.get_args(ann)):
        if arg is not typing.Any and not (kind == "dict" and i == 0 and arg is str):
            raise TypeError("parameter '%s': %r: turbo does not check the items of a body; "
                            "annotate it as %s or use a pydantic model" % (name, ann, kind))
    return kind


def conversion(name, ann):
    """(how the value is made, whether None is allowed, the pydantic model or None)."""
    nullable = False
    if typing.get_origin(ann) in _UNIONS:
        args = typing.get_args(ann)
        if len(args) != 2 or type(None) not in args:
            raise TypeError("parameter '%s': %r: only Optional[X] unions are supported"
                            % (name, ann))
        ann = args[0] if args[1] is type(None) else args[1]
        nullable = True
    origin = typing.get_origin(ann)
    if ann is inspect.Parameter.empty:
        return "str", nullable, None
    for scalar, conv in _SCALARS:
        if ann is scalar:
            return conv, nullable, None
    if ann is dict or origin is dict:
        return _container(name, ann, "dict"), nullable, None
    if ann is list or origin is list:
        return _container(name, ann, "list"), nullable, None
    if isinstance(ann, type) and issubclass(ann, Request):
        return "request", nullable, None
    if _pydantic_model(ann):
        return "model", nullable, ann
    raise TypeError("parameter '%s': annotation %r is not supported; use int, float, str, "
                    "bool, Optional[...], dict, list, a pydantic model or turbo.Request"
                    % (name, ann))


def _hints(func):
    """The annotations, string ones resolved; a callable that is not a function (a
    partial) has only what its signature shows."""
    try:
        return typing.get_type_hints(func)
    except TypeError:
        return {}


def describe(func, pattern):
    """(is_async, parameters) for a handler of a route with this turbo pattern. Each
    parameter: (name, source, conversion, nullable, default, model, keyword_only), source
    one of path, query, body, request; default a 1-tuple, or () when the value is required."""
    in_path = captures(pattern)
    hints = _hints(func)
    params, bodies = [], 0
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):  # nothing to pass
            continue
        conv, nullable, model = conversion(p.name, hints.get(p.name, p.annotation))
        if conv == "request":
            source = "request"
        elif conv in ("dict", "list", "model"):
            if p.name in in_path:
                raise TypeError("path parameter '%s' must be int, float, str or bool" % p.name)
            bodies += 1
            if bodies > 1:
                raise TypeError("parameter '%s': only one body parameter is supported" % p.name)
            source = "body"
        else:
            source = "path" if p.name in in_path else "query"
        default = () if p.default is p.empty else (p.default,)
        params.append((p.name, source, conv, nullable, default, model, p.kind == p.KEYWORD_ONLY))
    return inspect.iscoroutinefunction(func), tuple(params)
