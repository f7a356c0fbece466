"""Route plans: what a handler's signature asks of each request, read once, at decoration.

turbo._turbo calls describe() for each route and keeps the answer as the C plan it follows
(turbo_py.c, tb_plan_new). An annotation turbo cannot honour is refused here, never ignored.
"""
import collections
import dataclasses
import datetime
import decimal
import functools
import inspect
import re
import sys
import types
import typing

from . import params
from ._support import UploadFile, model_errors
from ._turbo import JSONResponse, Request, Response
from .exceptions import HTTPException, RequestValidationError
from .responses import StreamingResponse

_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))  # X | None: Python 3.10+
_KNOWN = ((int, "int"), (float, "float"), (bool, "bool"), (str, "str"), (typing.Any, "str"),
          (inspect.Parameter.empty, "str"), (bytes, "bytes"))
SOURCES = ("path", "query", "header", "cookie", "body", "form", "file", "request")
_MANY = (list, set, tuple)

# The plan of one parameter, as C reads it (turbo_py.c, tb_plan_param). key: its name in the
# request; source: one of SOURCES; conv: how its text becomes a value (conversion()); default:
# a 1-tuple, (factory, "factory") for a default_factory, or () when the value is required;
# model: what validates a body value (validator()), or None; rules: as params.Param.rules;
# rank: orders the checks and so the errors of a 422 (path, query, header, cookie, body);
# many: every value of that name, in a list (1), a set (2) or a tuple (3); docs: what the marker
# keeps for the API document (C does not read it).
Leaf = collections.namedtuple("Leaf", "name key source conv nullable default model kwonly rules "
                                      "rank many docs", defaults=(None,))


def translate(path):
    """FastAPI's "{name:path}" is turbo's tail capture "{name...}"."""
    return path.replace(":path}", "...}")


def captures(pattern):
    return {name[:-3] if name.endswith("...") else name
            for name in re.findall(r"\{([^}]*)\}", pattern)}


def _pydantic_model(ann):
    pydantic = sys.modules.get("pydantic")  # a model exists only if the program imported it
    return pydantic is not None and isinstance(ann, type) and issubclass(ann, pydantic.BaseModel)


def _plain_container(ann, kind):
    """dict, list, Dict[str, Any], List[Any]: taken as they are (C checks the type only)."""
    return all(arg is typing.Any or (kind == "dict" and i == 0 and arg is str)
               for i, arg in enumerate(typing.get_args(ann)))


def conversion(ann):
    """(how the value is made, whether None is allowed, the annotation without None); "typed":
    one C does not convert itself (list[Item], unions...), which pydantic validates."""
    nullable = False
    if typing.get_origin(ann) in _UNIONS:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(ann))
        if len(args) > 1:
            return "typed", nullable, typing.Union[tuple(args)]
        ann = args[0]
    for known, conv in _KNOWN:
        if ann is known:
            return conv, nullable, ann
    if isinstance(ann, type) and issubclass(ann, UploadFile):
        return "upload", nullable, ann
    for kind, cls in (("dict", dict), ("list", list)):
        if ann is cls or typing.get_origin(ann) is cls:
            return kind if _plain_container(ann, kind) else "typed", nullable, ann
    if isinstance(ann, type) and issubclass(ann, Request):
        return "request", nullable, ann
    return ("model" if _pydantic_model(ann) else "typed"), nullable, ann


_COMPLEX = (dict, list, set, frozenset, tuple, bytes, UploadFile, Request)


def typed_scalar(ann):
    """Whether an annotation C does not convert is still one value FastAPI reads from the path,
    the query, a header or a cookie (an Enum, a date, a UUID, a Decimal, a Literal, a union of
    such): C passes its text to pydantic, which makes the value."""
    if typing.get_origin(ann) in _UNIONS:
        return all(conversion(a)[0] in ("str", "int", "float", "bool") or typed_scalar(a)
                   for a in typing.get_args(ann) if a is not type(None))
    if typing.get_origin(ann) is typing.Literal:
        return True
    return (isinstance(ann, type) and not issubclass(ann, _COMPLEX) and not _pydantic_model(ann)
            and not dataclasses.is_dataclass(ann))


def _pydantic(why):
    try:
        import pydantic
    except ImportError:
        raise TypeError("%s needs pydantic, which is not installed" % why) from None
    return pydantic


def validator(name, ann, conv, rules=None):
    """What C calls to make a body value of annotation ann (with the marker's rules)."""
    pydantic = _pydantic("parameter '%s': %r" % (name, ann))
    v2 = hasattr(pydantic, "TypeAdapter")
    if conv == "model" and not rules and not v2:
        return ann.parse_obj
    if rules:
        ann = typing.Annotated[ann, pydantic.Field(**rules)]
    if v2:  # from_attributes: what is no object is model_attributes_type, as in FastAPI
        return functools.partial(pydantic.TypeAdapter(ann).validate_python, from_attributes=True)

    def parse_v1(value):
        """pydantic 1's parse_obj_as, its errors located without __root__, as FastAPI's."""
        try:
            return pydantic.parse_obj_as(ann, value)
        except pydantic.ValidationError as e:
            for error in e.errors():  # the list it keeps: its next errors() gives these
                if error["loc"][:1] == ("__root__",):
                    error["loc"] = error["loc"][1:]
            raise
    return parse_v1


def _hints(func):
    """The annotations, string ones resolved, Annotated kept ({} for a partial)."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except TypeError:
        return {}


def _marker(p, ann):
    """(the annotation without Annotated, the parameter's Param or Depends, or None)."""
    from .dependencies import Depends
    kinds = (params.Param, Depends)
    marker = p.default if isinstance(p.default, kinds) else None
    if typing.get_origin(ann) is typing.Annotated:
        ann, *meta = typing.get_args(ann)
        for m in meta:
            if not isinstance(m, kinds):
                raise TypeError("parameter '%s': Annotated metadata %r is not supported; use "
                                "Query, Path, Header, Cookie or Depends" % (p.name, m))
            if marker is not None:
                raise TypeError("parameter '%s' has two markers" % p.name)
            marker = m
    return ann, marker


def _default(p, marker):
    value = p.default
    if marker is not None and getattr(marker, "default_factory", None) is not None:
        return (marker.default_factory, "factory")
    if marker is not None and value is marker:
        value = marker.default
    return () if value is p.empty or value is ... else (value,)


def parameters(func):
    """(parameter, annotation without Annotated, marker or None) for each parameter of func
    but *args and **kwargs."""
    if inspect.isclass(func):
        hints = _hints(func.__init__)
    elif inspect.isroutine(func) or getattr(func, "__signature__", None) is not None:
        hints = _hints(func)
    else:
        hints = _hints(type(func).__call__)
    for p in inspect.signature(func).parameters.values():
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            yield (p, *_marker(p, hints.get(p.name, p.annotation)))


def leaf(p, ann, marker, in_path):
    """The Leaf of one parameter of a route whose path has the captures in_path."""
    conv, nullable, bare = conversion(ann)
    key, rules, check, many = p.name, (), None, 0
    if marker is None and _files(ann):
        marker = params.File()  # FastAPI reads an UploadFile parameter as a file unasked
    collection = typing.get_origin(bare) or bare
    if marker is not None and collection in _MANY and marker.source != "body":
        many = _MANY.index(collection) + 1  # list[int] = Query(), List[UploadFile] = File()...
        conv, _, bare = conversion((typing.get_args(bare) or (str,))[0])
    typed = conv == "typed" and typed_scalar(bare) and getattr(marker, "source", "") != "file"
    if is_body(ann, marker):
        if p.name in in_path and marker is None:
            raise TypeError("path parameter '%s' must be one value (int, str, an Enum, a date...), "
                            "not %r" % (p.name, ann))
        source = "body"
        if marker is not None or conv not in ("dict", "list"):
            check = validator(p.name, bare, conv, marker.field_rules() if marker else None)
            conv = "model"
    elif typed or marker is not None and (conv in ("str", "int", "float", "bool")
                                          or marker.source == "file" and conv in ("bytes", "upload")):
        source = marker.source if marker else "path" if p.name in in_path else "query"
        key = marker.key(p.name) if marker else p.name
        if typed:  # C takes the text, pydantic makes the value and keeps the marker's rules
            constraints = marker.field_rules() if marker else None
            _check_typed_rules(p.name, bare, constraints, many)
            check, conv = validator(p.name, bare, conv, constraints), "str"
            check.annotation = bare  # for the API document
        elif source != "file":
            rules = marker.rules(p.name, conv)
        if source == "path" and key not in in_path:
            raise TypeError("parameter '%s': Path() but the route has no {%s}" % (p.name, key))
        if many and source in ("path", "cookie"):
            raise TypeError("parameter '%s': a list cannot come from a %s" % (p.name, source))
    elif marker is not None:
        raise TypeError("parameter '%s': %s() takes one value (int, str, an Enum, a date...)%s, "
                        "or a list of them, not %r" % (p.name, type(marker).__name__,
                                                       ", bytes or UploadFile" if marker.source == "file"
                                                       else "", ann))
    elif conv in ("typed", "bytes", "upload"):
        raise TypeError("parameter '%s': annotation %r is not supported here; use one value (int, "
                        "str, an Enum, a date...), Optional[...], or a body (dict, list, a pydantic "
                        "model, Body()) or turbo.Request" % (p.name, ann))
    elif conv == "request":
        source = "request"
    else:
        source = "path" if p.name in in_path else "query"
    return Leaf(p.name, key, source, conv, nullable, _default(p, marker), check,
                p.kind == p.KEYWORD_ONLY, rules, SOURCES.index(source), many,
                dict(marker.docs, alias=marker.alias) if isinstance(marker, params.Param) else None)


def parameter_model(ann, marker):
    """Whether a parameter is a pydantic model of query (header, cookie, form) values, as
    FastAPI's parameter models: `filters: Annotated[Filters, Query()]`."""
    return _pydantic_model(ann) and isinstance(marker, (params.Query, params.Header, params.Cookie,
                                                        params.Form)) and not isinstance(marker, params.File)


_LEFT_TO_THE_MODEL = object()  # the default of a field made by a factory: the model makes it


def model_reader(model, marker, name):
    """A dependency that makes a parameter model of its fields, each read as a parameter from the
    marker's source with the field's annotation, alias and default: C finds and converts them,
    the model validates them (its errors located at the source and the field, in one 422); with
    extra="forbid", the names no field takes are refused too."""
    pydantic = _pydantic("parameter '%s': %r" % (name, model))
    v2 = hasattr(pydantic, "TypeAdapter")
    keys, signature = {}, []
    for field, info in (model.model_fields if v2 else model.__fields__).items():
        required = info.is_required() if v2 else info.required
        alias = info.alias if v2 else info.alias if info.has_alias else None
        default = ... if required else _LEFT_TO_THE_MODEL if info.default_factory else info.default
        options = {"convert_underscores": marker.convert_underscores} if marker.source == "header" else {}
        read_as = type(marker)(default, alias=alias, **options)
        keys[field] = (alias or field, read_as.key(field))
        signature.append(inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=read_as,
                                           annotation=info.annotation if v2 else info.outer_type_))
    extra = model.model_config.get("extra") if v2 else getattr(model.__config__, "extra", None)
    forbid = getattr(extra, "value", extra) == "forbid"
    if forbid and marker.source == "form":
        raise TypeError("parameter '%s': extra='forbid' is not supported on a form model" % name)
    if forbid:  # _request: no field's name (pydantic keeps names with "_" private)
        signature.append(inspect.Parameter("_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request))
    taken = {key.lower() if marker.source == "header" else key for _, key in keys.values()}

    def read(_request=None, **values):
        data = {keys[field][0]: v for field, v in values.items() if v is not _LEFT_TO_THE_MODEL}
        if _request is not None:  # the names no field takes, for the model to refuse
            given = {"query": _request.query_params, "header": _request.headers,
                     "cookie": _request.cookies}[marker.source]
            data.update((k, v) for k, v in given.items() if k not in taken)
        try:
            return model.model_validate(data) if v2 else model.parse_obj(data)
        except pydantic.ValidationError as e:
            raise RequestValidationError(model_errors(e, marker.source)) from None
    read.__signature__ = inspect.Signature(signature)
    read.__name__ = read.__qualname__ = "read_%s" % model.__name__
    return read


_ORDERED = (decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)
_BOUNDS = ("gt", "ge", "lt", "le", "multiple_of")


def _check_typed_rules(name, ann, rules, many):
    """Refuses now the rules pydantic would fail to apply to a value it makes (max_length on a
    date: a TypeError at each request): bounds on a Decimal or a date, time or timedelta,
    multiple_of on a Decimal, none on a list of them (FastAPI would bound the list)."""
    if not rules:
        return
    bounds = isinstance(ann, type) and issubclass(ann, _ORDERED) and not set(rules) - set(_BOUNDS)
    if many or not bounds or ("multiple_of" in rules and not issubclass(ann, decimal.Decimal)):
        raise TypeError("parameter '%s': %s cannot apply to %s%r" % (
            name, ", ".join(sorted(rules)), "a list of " if many else "", ann))


def is_body(ann, marker):
    """Whether a parameter is (part of) the body: Body(), or unmarked and no scalar."""
    if marker is not None:
        return isinstance(marker, params.Body)
    conv, _, bare = conversion(ann)
    return (conv in ("dict", "list", "model") or conv == "typed" and not typed_scalar(bare)) \
        and not _files(ann)


def _files(ann):
    """UploadFile, or a list of them."""
    conv, _, bare = conversion(ann)
    if typing.get_origin(bare) is list:
        conv = conversion((typing.get_args(bare) or (str,))[0])[0]
    return conv == "upload"


def one_body(bodies):
    """Whether a route's body parameters (p, annotation, marker) are the whole body."""
    return len(bodies) == 1 and not getattr(bodies[0][2], "embed", False)


class Members:
    """Several body parameters (or one with embed=True): one model whose fields are the body's
    members, as FastAPI makes it; members() gives each parameter's value."""

    def __init__(self, bodies):
        pydantic = _pydantic("several body parameters (or Body(embed=True))")
        fields = {}
        for i, (p, ann, marker) in enumerate(bodies):
            default = _default(p, marker)
            extra = marker.field_rules() if marker is not None else {}
            if len(default) == 2:
                extra["default_factory"] = default[0]
            else:
                extra["default"] = default[0] if default else ...
            fields["f%d" % i] = (ann, pydantic.Field(alias=marker.key(p.name) if marker else p.name,
                                                     **extra))
        self.model = pydantic.create_model("Body", **fields)
        self.names = tuple(fields)
        self.validate = validator("body", self.model, "model")
        # The C plan of the body, checked last: validated against the model, None when empty.
        self.leaf = Leaf("body", "body", "body", "model", True, (None,), self.check, False, (),
                         1 << 20, 0)

    def check(self, body):
        """A body that is no object has no members: each is missing, as FastAPI finds it."""
        return self.validate(body if isinstance(body, dict) else {})

    def members(self, body):
        """The values, in the order of the parameters; an absent body is {}."""
        if body is None:
            import pydantic
            try:
                body = self.check({})
            except pydantic.ValidationError as e:  # the 422 C answers for a body
                raise HTTPException(422, model_errors(e, "body")) from None
        return [getattr(body, name) for name in self.names]


def describe(func, pattern):
    """(is_async, parameters, call, finishes) for a handler of a route with this turbo pattern:
    C calls call with the values of the parameters (their Leaf plans)."""
    from .dependencies import Solver, Depends
    if isinstance(func, Solver):
        return func.is_async, tuple(func.params), func.call, func.finishes
    in_path = captures(pattern)
    out = []
    for p, ann, marker in parameters(func):
        if isinstance(marker, Depends):
            raise TypeError("parameter '%s': Depends() is read by the App's decorators, not by "
                            "add_route" % p.name)
        out.append(leaf(p, ann, marker, in_path))
    bodies = [q.name for q in out if q.source == "body"]
    if len(bodies) > 1:
        raise TypeError("parameter '%s': several body parameters need the App's decorators"
                        % bodies[1])
    return inspect.iscoroutinefunction(func), tuple(out), func, False


class _Default:
    """response_model not given: the return annotation decides."""

    def __repr__(self):
        return "<the return annotation>"


_DEFAULT = _Default()


def _mentions_model(ann):
    return _pydantic_model(ann) or any(_mentions_model(a) for a in typing.get_args(ann))


def response_model(func, model=_DEFAULT):
    """response_model= if given, else the return annotation when it names a pydantic model."""
    if model is _DEFAULT:
        model = _hints(func).get("return")
        return model if _mentions_model(model) else None
    return model


def default_status(cls):
    """A route's status when it names none: its response class's own default (307 for
    RedirectResponse), else 200."""
    try:
        default = inspect.signature(cls).parameters["status_code"].default
    except (TypeError, ValueError, KeyError):  # None, or a class of C's
        return 200
    return default if isinstance(default, int) else 200


class Shaper:
    """What C calls with each result that is no Response: validated against the response
    model and dumped as FastAPI's (only its fields, by alias, response_model_* options), then
    made the response_class, with the route's status or the given one."""

    def __init__(self, model, cls, options):
        self.model, self.cls, self.status_code = model, cls, options["status_code"]
        self.dump = {k: options["response_model_" + k] for k in (
            "include", "exclude", "by_alias", "exclude_unset", "exclude_defaults", "exclude_none")}
        pydantic = sys.modules.get("pydantic")
        v2 = model is not None and hasattr(pydantic, "TypeAdapter")
        self.adapter = pydantic.TypeAdapter(model) if v2 else None

    def __call__(self, value, *status_and_headers):
        if self.adapter is not None:
            value = self.adapter.validate_python(value, from_attributes=True)
            value = self.adapter.dump_python(value, mode="json", **self.dump)
        elif self.model is not None:
            # pydantic 1 keeps a subclass's extra fields: models are made dicts first
            value = _v1_plain(value, by_alias=True, exclude_unset=self.dump["exclude_unset"])
            value = _v1_plain(sys.modules["pydantic"].parse_obj_as(self.model, value), **self.dump)
        if self.cls is None:
            return value
        return self.cls(value, *(status_and_headers or (self.status_code,)))


def _v1_plain(value, **dump):
    """A pydantic 1 result with its models, in lists and dicts too, made dicts."""
    import pydantic
    if isinstance(value, pydantic.BaseModel):
        return value.dict(**dump)
    if isinstance(value, (list, tuple)):
        return [_v1_plain(v, **dump) for v in value]
    if isinstance(value, dict):
        return {k: _v1_plain(v, **dump) for k, v in value.items()}
    return value


def shaper(func, options):
    """The Shaper of a route, or None (JSON, as returned)."""
    model = response_model(func, options["response_model"])
    if model is not None and "pydantic" not in sys.modules:
        raise TypeError("response_model=%r needs pydantic, which is not imported" % (model,))
    cls = None if options["response_class"] is JSONResponse else options["response_class"]
    if cls is not None and not (isinstance(cls, type)
                                and issubclass(cls, (Response, StreamingResponse))):
        raise TypeError("response_class=%r is not a turbo.Response class" % (cls,))
    return None if model is None and cls is None else Shaper(model, cls, options)
