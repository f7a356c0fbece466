"""Routes as FastAPI declares them: the decorators (shared by App and APIRouter), APIRouter with
its prefix, tags and dependencies, include_router, and the 307 redirects between /items and
/items/ (redirect_slashes).

    router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(token)])

    @router.get("/{id}")
    def read_user(id: int): ...

    app.include_router(router)          # GET /users/{id}, token checked first

An APIRouter keeps its routes until an App (or another router) includes it; the App registers
each with C then, as if declared on it, with the prefixes joined and the dependencies of every
level run first, outermost first.
"""
import inspect

from . import _plans

__all__ = ["APIRouter", "Route"]


class Route:
    """One declared route: path (prefix joined), endpoint, methods, and its options (those of
    add_api_route: status_code, dependencies, tags...)."""

    def __init__(self, path, endpoint, methods, options):
        self.path, self.endpoint, self.methods, self.options = path, endpoint, methods, options

    def __repr__(self):
        return "Route(%r, %s)" % (self.path, "|".join(self.methods))


class Routes:
    """The route decorators. Each ends in add_api_route, which App and APIRouter define."""

    def add_api_route(self, path, endpoint, *, methods=None, status_code=200, blocking=False,
                      dependencies=None, response_model=_plans._DEFAULT,
                      response_model_include=None, response_model_exclude=None,
                      response_model_exclude_unset=False, response_model_exclude_none=False,
                      response_class=None, tags=None, summary=None, description=None,
                      response_description="Successful Response", responses=None,
                      deprecated=None, operation_id=None, include_in_schema=True, name=None,
                      openapi_extra=None, callbacks=None):
        """Declares endpoint for path and methods (default ["GET"]). blocking=True: the
        handler blocks (I/O), so its event loop is given away before it starts.
        dependencies: Depends(...) run before the handler, results unused. response_model
        (default: the return annotation, when it names a pydantic model) validates and
        filters what the handler returns, with FastAPI's response_model_* options;
        response_class makes it that class of turbo.Response. tags, summary, description,
        responses, deprecated, operation_id, include_in_schema, name, openapi_extra and
        callbacks are kept for the API document."""
        raise NotImplementedError

    @staticmethod
    def full_options(path, endpoint, options):
        """options with add_api_route's defaults for those not given (methods included);
        an unknown name is a TypeError, as with a real signature."""
        bound = inspect.signature(Routes.add_api_route).bind(None, path, endpoint, **options)
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "path", "endpoint")}

    def api_route(self, path, methods=None, **options):
        """Decorates a handler: add_api_route(path, handler, methods=methods, ...)."""
        def register(func):
            self.add_api_route(path, func, methods=methods, **options)
            return func
        return register

    def route(self, path, methods=None, status_code=200, **options):
        """api_route, with the status code as turbo's earlier positional argument."""
        return self.api_route(path, methods, status_code=status_code, **options)

    def get(self, path, **options):
        return self.api_route(path, ["GET"], **options)

    def post(self, path, **options):
        return self.api_route(path, ["POST"], **options)

    def put(self, path, **options):
        return self.api_route(path, ["PUT"], **options)

    def patch(self, path, **options):
        return self.api_route(path, ["PATCH"], **options)

    def delete(self, path, **options):
        return self.api_route(path, ["DELETE"], **options)

    def options(self, path, **options):
        return self.api_route(path, ["OPTIONS"], **options)

    def include_router(self, router, *, prefix="", tags=None, dependencies=None, responses=None,
                       deprecated=None, include_in_schema=True):
        """Declares every route of router here, under prefix, with these tags and responses
        added and these dependencies run before the router's own."""
        _check_prefix(prefix)
        for r in router.routes:
            options = dict(r.options)
            options["tags"] = list(tags or ()) + list(options.get("tags") or ())
            options["dependencies"] = list(dependencies or ()) + list(options.get("dependencies") or ())
            options["responses"] = {**(responses or {}), **(options.get("responses") or {})}
            if deprecated is not None:
                options["deprecated"] = deprecated
            options["include_in_schema"] = include_in_schema and options.get("include_in_schema", True)
            self.add_api_route(prefix + r.path, r.endpoint, methods=r.methods, **options)


def _options_signature(method):
    """add_api_route's keyword options, for the decorators' signatures (help(), editors)."""
    params = [p for p in inspect.signature(Routes.add_api_route).parameters.values()
              if p.kind == p.KEYWORD_ONLY and p.name != "methods"]
    head = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("path", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if method == "api_route":
        head.append(inspect.Parameter("methods", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
    return inspect.Signature(head + params)


for _name in ("api_route", "get", "post", "put", "patch", "delete", "options"):
    getattr(Routes, _name).__signature__ = _options_signature(_name)
    if _name != "api_route":
        getattr(Routes, _name).__doc__ = "A %s route: api_route(path, [%r], ...)." % (
            _name.upper(), _name.upper())


def _check_prefix(prefix):
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError("a prefix must start with '/' and not end with '/': %r" % (prefix,))


class APIRouter(Routes):
    """Routes kept together, to be included in an App (or another router) with
    include_router. prefix is put before each path; tags, dependencies and responses apply
    to every route."""

    def __init__(self, *, prefix="", tags=None, dependencies=None, responses=None,
                 deprecated=None, include_in_schema=True):
        _check_prefix(prefix)
        self.prefix, self.tags = prefix, list(tags or ())
        self.dependencies, self.responses = list(dependencies or ()), dict(responses or {})
        self.deprecated, self.include_in_schema = deprecated, include_in_schema
        self.routes = []

    def add_api_route(self, path, endpoint, **options):
        options = self.full_options(path, endpoint, options)
        methods = options.pop("methods")
        options["tags"] = self.tags + list(options.get("tags") or ())
        options["dependencies"] = self.dependencies + list(options.get("dependencies") or ())
        options["responses"] = {**self.responses, **(options.get("responses") or {})}
        if self.deprecated is not None and options.get("deprecated") is None:
            options["deprecated"] = self.deprecated
        if not self.include_in_schema:
            options["include_in_schema"] = False
        self.routes.append(Route(self.prefix + path, endpoint, list(methods or ["GET"]), options))


def slash_twin(path):
    """/items for /items/ and the other way round; None for /."""
    if path == "/":
        return None
    return path[:-1] if path.endswith("/") else path + "/"
