"""The OpenAPI 3.1 document of an App, and the pages that show it (/docs: Swagger UI, /redoc).

Made once per process, when /openapi.json is first asked for, from what the routes declared:
paths and operations (operationId as FastAPI names them, summary and description from the
docstring, tags, deprecated, responses), parameters with their schemas and rules, request bodies
(pydantic's JSON schemas, forms, files), response models, the 422 of routes that take values,
the security schemes of turbo.security's dependencies. A mounted app's own document stays its own.
"""
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

_SCALAR_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}
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


def _scalar_schema(q, ann, schemas):
    """The schema of a path, query, header, cookie or form value, or a file."""
    name, key, source, conv, nullable, default, _, _, rules, _, many = q
    if conv in ("bytes", "upload"):
        schema = {"type": "string", "format": "binary"}
    elif conv in _SCALAR_TYPES:
        schema = {"type": _SCALAR_TYPES[conv]}
    else:
        schema = schemas.of(ann)
    for rule, bound, *_ in rules:
        schema[_RULE_KEYS.get(rule, rule)] = bound.pattern if rule == "pattern" else bound
    if many:
        schema = {"type": "array", "items": schema}
    if nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["title"] = _title(name) if source not in ("header", "query", "cookie") else _title(key)
    if len(default) == 1 and default[0] is not None:
        try:
            json.dumps(default[0])
            schema["default"] = default[0]
        except (TypeError, ValueError):
            pass
    return schema


def _plan_of(route):
    """(documented values, body members, (call, scopes) of each step) of a route."""
    call = route.call
    if hasattr(call, "documented"):
        return call.documented, call.bodies, call.callers
    values, bodies = [], []
    in_path = _plans.captures(_plans.translate(route.path))
    for p, ann, marker in _plans.parameters(route.endpoint):
        q = _plans.leaf(p, ann, marker, in_path)
        if q[2] == "body":
            bodies.append((ann, marker, q[1], q))
        elif q[2] != "request":
            values.append((q, ann))
    return values, bodies, [(route.endpoint, [])]


def _request_body(op_id, bodies, forms, schemas):
    """The requestBody of an operation: its form, its one JSON body, or the object its body
    parameters are the members of (a Body_<operationId> component, as FastAPI names it)."""
    if not forms and len(bodies) == 1 and not getattr(bodies[0][1], "embed", False):
        ann, _, _, q = bodies[0]
        return _body({"application/json": {"schema": schemas.of(ann)}}, not q[5])
    props = {}
    for q, ann in forms:
        props[q[1]] = _scalar_schema(q, ann, schemas)
    for ann, _, key, q in bodies:
        schema = schemas.of(ann)
        props[key] = schema if "$ref" in schema else dict(schema, title=_title(key))
    required = [q[1] for q, _ in forms if not q[5]] + [key for _, _, key, q in bodies if not q[5]]
    media = ("multipart/form-data" if any(q[2] == "file" for q, _ in forms)
             else "application/x-www-form-urlencoded") if forms else "application/json"
    name = "Body_" + op_id
    schemas.components[name] = dict({"title": name, "type": "object", "properties": props},
                                    **({"required": required} if required else {}))
    return _body({media: {"schema": {"$ref": "#/components/schemas/" + name}}}, required)


def _body(content, required):
    """A requestBody; "required" only when it is (FastAPI leaves it out otherwise)."""
    return dict({"content": content}, **({"required": True} if required else {}))


def _security(callers, schemes):
    """The security requirements of an operation, and its schemes into schemes."""
    out = []
    for call, scopes in callers:
        if not isinstance(call, security._Scheme):
            continue
        if isinstance(call, security.OAuth2PasswordBearer):
            model = {"type": "oauth2", "flows": {"password": {"scopes": call.scopes,
                                                               "tokenUrl": call.token_url}}}
        elif isinstance(call, (security.HTTPBasic, security.HTTPBearer)):
            model = {"type": "http", "scheme": "basic" if isinstance(call, security.HTTPBasic)
                     else "bearer"}
        else:
            model = {"type": "apiKey", "in": call.source, "name": call.key}
        if call.description:
            model["description"] = call.description
        schemes[call.scheme_name] = model
        if {call.scheme_name: list(scopes)} not in out:  # one scheme, met along two chains
            out.append({call.scheme_name: list(scopes)})
    return out


def _responses(route, o, schemas, takes_values):
    status = str(o["status_code"])
    cls = o["response_class"]
    media = getattr(cls, "media_type", None) or "application/json"
    ok = {"description": o["response_description"]}
    if int(status) not in (204, 304):
        model = o["response_model"]
        if model is _plans._DEFAULT:
            model = _plans._hints(route.endpoint).get("return")
            model = model if model is not None and _plans._mentions_model(model) else None
        schema = schemas.of(model) if model is not None and media == "application/json" else {}
        if media != "application/json":
            schema = {"type": "string"}
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
    forms = [(q, ann) for q, ann in values if q[2] in ("form", "file")]
    params = [(q, ann) for q, ann in values if q[2] not in ("form", "file")]
    op = {"summary": o["summary"] or _title(name), "operationId": op_id}
    if o["tags"]:
        op["tags"] = list(o["tags"])
    description = o["description"] or inspect.cleandoc(getattr(route.endpoint, "__doc__", "") or "")
    if description:
        op["description"] = description
    if o["deprecated"]:
        op["deprecated"] = True
    seen = set()
    parameters = []
    for q, ann in params:
        if (q[1], q[2]) in seen:
            continue
        seen.add((q[1], q[2]))
        parameters.append({"name": q[1], "in": q[2], "required": q[2] == "path" or not q[5],
                           "schema": _scalar_schema(q, ann, schemas)})
    if parameters:
        op["parameters"] = parameters
    if bodies or forms:
        op["requestBody"] = _request_body(op_id, bodies, forms, schemas)
    op["responses"] = _responses(route, o, schemas, bool(params or bodies or forms))
    requirements = _security(callers, schemes)
    if requirements:
        op["security"] = requirements
    if o["openapi_extra"]:
        op.update(o["openapi_extra"])
    return path, op


def document(app):
    """The OpenAPI 3.1 document of app, as a dict."""
    info = {"title": app.title, "version": app.version}
    if app.description:
        info["description"] = app.description
    for key in ("summary", "terms_of_service", "contact", "license_info"):
        value = app.info_extra.get(key)
        if value:
            info[{"terms_of_service": "termsOfService", "license_info": "license"}.get(key, key)] = value
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
    doc = {"openapi": "3.1.0", "info": info, "paths": paths}
    if app.servers:
        doc["servers"] = app.servers
    if any("422" in op["responses"] for ops in paths.values() for op in ops.values()):
        schemas.components["ValidationError"] = _VALIDATION_ERROR
        schemas.components["HTTPValidationError"] = _HTTP_VALIDATION_ERROR
    components = {}
    if schemas.components:
        components["schemas"] = dict(sorted(schemas.components.items()))
    if schemes:
        components["securitySchemes"] = schemes
    if components:
        doc["components"] = components
    if app.openapi_tags:
        doc["tags"] = app.openapi_tags
    return doc


def _page(name):
    """A page of turbo/pages/, read when first served."""
    with open(os.path.join(os.path.dirname(__file__), "pages", name)) as f:
        return f.read()


def swagger_page(app):
    """/docs: Swagger UI over the document (its script and style from swagger_js_url and
    swagger_css_url: a CDN by default, a local copy for offline deployments)."""
    return responses.HTMLResponse(_page("swagger.html") % (
        html.escape(app.title), html.escape(app.swagger_css_url), html.escape(app.swagger_js_url),
        json.dumps(app.openapi_url), json.dumps(app.docs_url + "/oauth2-redirect")))


def redoc_page(app):
    """/redoc: ReDoc over the document."""
    return responses.HTMLResponse(_page("redoc.html") % (
        html.escape(app.title), html.escape(app.openapi_url), html.escape(app.redoc_js_url)))


def oauth2_redirect_page():
    """Where Swagger UI's OAuth2 login comes back: hands the answer to the opener."""
    return responses.HTMLResponse(_page("oauth2-redirect.html"))


def add_routes(app, free):
    """Declares /openapi.json, /docs, /docs/oauth2-redirect and /redoc: those the app asks for
    and free(path) says no route or mounted app takes (a mounted app's docs stay its own)."""
    cached = []

    def openapi():
        if not cached:
            cached.append(JSONResponse(document(app)))
        return cached[0]

    pages = [(app.openapi_url, openapi)]
    if app.openapi_url and app.docs_url:
        pages += [(app.docs_url, lambda: swagger_page(app)),
                  (app.docs_url + "/oauth2-redirect", oauth2_redirect_page)]
    if app.openapi_url and app.redoc_url:
        pages.append((app.redoc_url, lambda: redoc_page(app)))
    for path, page in pages:
        if path and free(path):
            app.add_route(path, page)
