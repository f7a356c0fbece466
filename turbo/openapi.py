"""The OpenAPI 3.1 document of an App, and the pages that show it (/docs: Swagger UI, /redoc).

Made once per process, when /openapi.json is first asked for, from what the routes declared,
as FastAPI makes it. A mounted app's own document stays its own.
"""
import contextlib
import functools
import html
import inspect
import json
import os
import re
import sys

from . import _plans, responses, security
from ._turbo import JSONResponse

SWAGGER_JS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
SWAGGER_CSS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"

_SCALAR_SCHEMAS = {"int": {"type": "integer"}, "float": {"type": "number"},
                   "str": {"type": "string"}, "bool": {"type": "boolean"},
                   "bytes": {"type": "string", "format": "binary"},
                   "upload": {"type": "string", "format": "binary"}}
_RULE_KEYS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum",
              "le": "maximum", "multiple_of": "multipleOf", "min_length": "minLength",
              "max_length": "maxLength"}
_VALIDATION_ERROR = {
    "title": "ValidationError", "type": "object", "required": ["loc", "msg", "type"],
    "properties": {"loc": {"title": "Location", "type": "array",
                           "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                   "msg": {"title": "Message", "type": "string"},
                   "type": {"title": "Error Type", "type": "string"}}}
_HTTP_VALIDATION_ERROR = {
    "title": "HTTPValidationError", "type": "object",
    "properties": {"detail": {"title": "Detail", "type": "array",
                              "items": {"$ref": "#/components/schemas/ValidationError"}}}}


def _title(name):
    return name.replace("_", " ").title()


def _some(**entries):
    """The entries that are not empty: the document leaves the others out, as FastAPI's does."""
    return {k: v for k, v in entries.items() if v}


def operation_id(name, path, method):
    """FastAPI's: the function's name and the path, made an identifier, and the method."""
    return re.sub(r"\W", "_", name + path) + "_" + method.lower()


class Schemas:
    """The JSON schemas of the annotations met, their models gathered in components."""

    def __init__(self):
        self.components = {}

    def of(self, ann):
        pydantic = sys.modules.get("pydantic")
        if pydantic is None or ann is inspect.Parameter.empty:
            return {}
        ref = "#/components/schemas/{model}"
        if hasattr(pydantic, "TypeAdapter"):
            schema = pydantic.TypeAdapter(ann).json_schema(ref_template=ref)
            defs = schema.pop("$defs", {})
        else:
            schema = pydantic.schema_of(ann, ref_template=ref)
            defs = schema.pop("definitions", {})
            schema.pop("title", None)
        self.components.update(defs)
        if "title" in schema and "properties" in schema:  # a model: by reference
            self.components[schema["title"]] = schema
            return {"$ref": ref.format(model=schema["title"])}
        return schema


def _scalar_schema(q, schemas):
    """The schema of a path, query, header, cookie or form value, or a file (q its Leaf)."""
    typed = getattr(q.model, "annotation", None)  # an Enum, a date...: pydantic's schema
    schema = dict(schemas.of(typed) if typed is not None else _SCALAR_SCHEMAS[q.conv])
    for rule, bound, *_ in q.rules:
        schema[_RULE_KEYS.get(rule, rule)] = bound.pattern if rule == "pattern" else bound
    if q.many:
        schema = {"type": "array", "items": schema}
    if q.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["title"] = _title(q.key if q.source in ("header", "query", "cookie") else q.name)
    if len(q.default) == 1 and q.default[0] is not None:
        with contextlib.suppress(TypeError, ValueError):  # a default that is no JSON
            json.dumps(q.default[0])
            schema["default"] = q.default[0]
    return schema


def _parameter(q, schemas):
    """The entry of a path, query, header or cookie value, with what its marker says of it
    (title, description, example(s), deprecated), as FastAPI writes it."""
    docs = q.docs or {}
    schema = _scalar_schema(q, schemas)
    schema.update(_some(title=docs.get("title"), description=docs.get("description")))
    entry = {"name": docs.get("alias") or q.key, "in": q.source,
             "required": q.source == "path" or not q.default, "schema": schema}
    entry.update(_some(description=docs.get("description"), deprecated=docs.get("deprecated")))
    if docs.get("examples"):
        entry["examples"] = docs["examples"]
    elif docs.get("example") is not None:
        entry["example"] = docs["example"]
    return entry


def _plan_of(route):
    """(documented values, body members, (call, scopes) of each step) of a route."""
    call = route.call
    if hasattr(call, "documented"):
        return call.documented, call.bodies, call.callers
    values, bodies = [], []
    in_path = _plans.captures(_plans.translate(route.path))
    for p, ann, marker in _plans.parameters(route.endpoint):
        q = _plans.leaf(p, ann, marker, in_path)
        if q.source == "body":
            bodies.append((p, ann, marker, q))
        elif q.source != "request":
            values.append(q)
    return values, bodies, [(route.endpoint, [])]


def _request_body(op_id, bodies, forms, schemas):
    """The requestBody of an operation: its form, its one JSON body, or a Body_<operationId>."""
    if not forms and _plans.one_body(bodies):
        _, ann, _, q = bodies[0]
        return _some(content={"application/json": {"schema": schemas.of(ann)}},
                     required=not q.default)
    props = {}
    for q in forms:
        props[q.key] = _scalar_schema(q, schemas)
    for _, ann, _, q in bodies:
        schema = schemas.of(ann)
        props[q.key] = schema if "$ref" in schema else dict(schema, title=_title(q.key))
    required = [q.key for q in forms + [b[3] for b in bodies] if not q.default]
    media = ("multipart/form-data" if any(q.source == "file" for q in forms)
             else "application/x-www-form-urlencoded") if forms else "application/json"
    name = "Body_" + op_id
    schemas.components[name] = {"title": name, "type": "object", "properties": props,
                                 **_some(required=required)}
    return _some(content={media: {"schema": {"$ref": "#/components/schemas/" + name}}},
                 required=bool(required))


def _security(callers, schemes):
    """The security requirements of an operation, and its schemes into schemes."""
    out = []
    for call, scopes in callers:
        if isinstance(call, security._Scheme):
            schemes[call.scheme_name] = dict(call.model, **_some(description=call.description))
            if {call.scheme_name: list(scopes)} not in out:  # one scheme, met along two chains
                out.append({call.scheme_name: list(scopes)})
    return out


def _media_type(cls):
    """The media type a response class declares: None for Response, RedirectResponse and
    FileResponse, which declare none (FastAPI then documents no content); JSON by default."""
    if cls is None or issubclass(cls, JSONResponse):
        return "application/json"
    media = getattr(cls, "media_type", None)  # Response's own is a slot, not a str
    return media if isinstance(media, str) else None


def _responses(route, o, schemas, takes_values):
    status = str(o["status_code"])
    media = _media_type(o["response_class"])
    ok = {"description": o["response_description"]}
    if media is not None and int(status) not in (204, 304):
        model = _plans.response_model(route.endpoint, o["response_model"])
        if media != "application/json":
            schema = {"type": "string"}
        else:
            schema = {} if model is None else schemas.of(model)
        ok["content"] = {media: {"schema": schema}}
    out = {status: ok}
    if takes_values:
        out["422"] = {"description": "Validation Error", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}
    for code, extra in (o["responses"] or {}).items():
        extra = dict(extra)
        if "model" in extra:
            extra["content"] = {"application/json": {"schema": schemas.of(extra.pop("model"))}}
        out.setdefault(str(code), {"description": "Additional Response"}).update(extra)
    return out


def _operation(route, method, schemas, schemes):
    o = route.options
    name = o["name"] or getattr(route.endpoint, "__name__", "route")
    path = re.sub(r"\{([^}:]*)(:path)?\}", r"{\1}", route.path)
    op_id = o["operation_id"] or operation_id(name, path, method)
    values, bodies, callers = _plan_of(route)
    forms = [q for q in values if q.source in ("form", "file")]
    params = [q for q in values if q.source not in ("form", "file")]
    body = _request_body(op_id, bodies, forms, schemas) if bodies or forms else None
    parameters = {}  # a value two dependencies take is one parameter
    for q in params:
        if (q.key, q.source) not in parameters and (q.docs or {}).get("include_in_schema", True):
            parameters[q.key, q.source] = _parameter(q, schemas)
    op = _some(summary=o["summary"] or _title(name), operationId=op_id, tags=list(o["tags"] or ()),
               description=o["description"] or inspect.cleandoc(getattr(route.endpoint, "__doc__",
                                                                        "") or ""),
               deprecated=bool(o["deprecated"]), parameters=list(parameters.values()),
               requestBody=body,
               responses=_responses(route, o, schemas, bool(params or bodies or forms)),
               security=_security(callers, schemes))
    return path, dict(op, **(o["openapi_extra"] or {}))


def document(app):
    schemas, schemes, paths = Schemas(), {}, {}
    for route in app.routes:
        if not route.options["include_in_schema"]:
            continue
        for method in route.methods:
            path, op = _operation(route, method, schemas, schemes)
            paths.setdefault(path, {})[method.lower()] = op
    for method, path, symbol, extra in app.natives:
        op = {"summary": _title(symbol), "operationId": operation_id(symbol, path, method),
              "responses": {"200": {"description": "Successful Response"}}}
        paths.setdefault(path, {})[method.lower()] = dict(op, **(extra or {}))
    if any("422" in op["responses"] for ops in paths.values() for op in ops.values()):
        schemas.components["ValidationError"] = _VALIDATION_ERROR
        schemas.components["HTTPValidationError"] = _HTTP_VALIDATION_ERROR
    info = {"title": app.title, "version": app.version,
            **_some(description=app.description, **app.info_extra)}
    components = _some(schemas=dict(sorted(schemas.components.items())), securitySchemes=schemes)
    return {"openapi": "3.1.0", "info": info, "paths": paths,
            **_some(servers=app.servers, components=components, tags=app.openapi_tags)}


def _page(name, *values):
    """A page of turbo/pages/, read when it is served, with values in its %s."""
    with open(os.path.join(os.path.dirname(__file__), "pages", name)) as f:
        return responses.HTMLResponse(f.read() % values)


def add_routes(app, free):
    """Declares /openapi.json, /docs (Swagger UI), /docs/oauth2-redirect and /redoc: those the
    app asks for and free(path) says no route or mounted app takes."""
    escape = html.escape

    @functools.lru_cache(maxsize=None)
    def openapi():
        return JSONResponse(document(app))

    def swagger():
        return _page("swagger.html", escape(app.title), escape(app.swagger_css_url),
                     escape(app.swagger_js_url), json.dumps(app.openapi_url),
                     json.dumps(app.docs_url + "/oauth2-redirect"))

    def redoc():
        return _page("redoc.html", escape(app.title), escape(app.openapi_url),
                     escape(app.redoc_js_url))

    pages = [(app.openapi_url, openapi)]
    if app.openapi_url and app.docs_url:
        pages += [(app.docs_url, swagger),
                  (app.docs_url + "/oauth2-redirect", lambda: _page("oauth2-redirect.html"))]
    if app.openapi_url and app.redoc_url:
        pages.append((app.redoc_url, redoc))
    for path, page in pages:
        if path and free(path):
            app.add_route(path, page)
