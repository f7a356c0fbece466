"""Routes as FastAPI declares them: the decorators (shared by App and APIRouter), APIRouter and
include_router. An APIRouter keeps its routes until an App (or another router) includes it.
"""
import inspect

from . import _plans

__all__ = ["APIRouter", "Route"]


class Route:
    """One declared route: path, endpoint, methods, and the options of add_api_route."""

    def __init__(self, path, endpoint, methods, options):
        self.path, self.endpoint, self.methods, self.options = path, endpoint, methods, options

    def __repr__(self):
        return "Route(%r, %s)" % (self.path, "|".join(self.methods))


class Routes:
    """The route decorators, which end in _add, as App and APIRouter define it."""

    def add_api_route(self, path, endpoint, *, methods=None, status_code=None, blocking=False,
                      dependencies=None, response_model=_plans._DEFAULT,
                      response_model_include=None, response_model_exclude=None,
                      response_model_by_alias=True, response_model_exclude_unset=False,
                      response_model_exclude_defaults=False, response_model_exclude_none=False,
                      response_class=None, tags=None, summary=None, description=None,
                      response_description="Successful Response", responses=None,
                      deprecated=None, operation_id=None, include_in_schema=True, name=None,
                      openapi_extra=None, callbacks=None):
        """Declares endpoint for path and methods (default ["GET"]), with FastAPI's options;
        blocking=True: the handler blocks (I/O), so its event loop is given away first."""
        options = dict(locals())  # every option above, given or not
        del options["self"], options["path"], options["endpoint"]
        if status_code is None:
            options["status_code"] = _plans.default_status(response_class)
        self._add(path, endpoint, options)

    def api_route(self, path, methods=None, **options):
        """Decorates a handler: add_api_route(path, handler, methods=methods, ...)."""
        return decorator(lambda func: self.add_api_route(path, func, methods=methods, **options))

    def route(self, path, methods=None, status_code=None, **options):
        """api_route, with the status code as turbo's earlier positional argument."""
        return self.api_route(path, methods, status_code=status_code, **options)

    def websocket(self, path, name=None):
        """Decorates an async def endpoint(websocket: WebSocket, ...) for WebSockets at path; its
        other parameters come from the path, the query and the headers, as a route's."""
        return decorator(lambda func: self.add_api_websocket_route(path, func, name))

    def add_api_websocket_route(self, path, endpoint, name=None):
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError("a WebSocket endpoint must be an async def, not %r" % (endpoint,))
        self.add_api_route(path, endpoint, methods=["WEBSOCKET"], include_in_schema=False, name=name)

    def include_router(self, router, *, prefix="", tags=None, dependencies=None, responses=None,
                       deprecated=None, include_in_schema=True):
        """Declares every route of router here, under prefix, with these options added."""
        _check_prefix(prefix)
        for r in router.routes:
            options = _joined(r.options, tags, dependencies, responses)
            if deprecated is not None:
                options["deprecated"] = deprecated
            options["include_in_schema"] = include_in_schema and options["include_in_schema"]
            self._add(prefix + r.path, r.endpoint, dict(options, methods=r.methods))


def methods_of(methods):
    """A route's methods, upper case: one, a list, or None for GET."""
    methods = [methods] if isinstance(methods, str) else list(methods or ["GET"])
    if not methods or not all(isinstance(m, str) for m in methods):
        raise TypeError("methods must be a str or a non-empty list of str, not %r" % (methods,))
    return tuple(m.upper() for m in methods)


def decorator(add):
    """A decorator that gives the function it decorates to add, and returns it as it is."""
    def register(func):
        add(func)
        return func
    return register


def _method_decorator(method):
    def decorate(self, path, **options):
        return self.api_route(path, [method], **options)
    decorate.__name__ = decorate.__qualname__ = method.lower()
    decorate.__doc__ = "A %s route: api_route(path, [%r], ...)." % (method, method)
    return decorate


def _spell_options(func):
    """func's **options shown as add_api_route's keyword options."""
    own = [p for p in inspect.signature(func).parameters.values() if p.kind != p.VAR_KEYWORD]
    options = [p for p in inspect.signature(Routes.add_api_route).parameters.values()
               if p.kind == p.KEYWORD_ONLY and p.name != "methods"]
    func.__signature__ = inspect.Signature(own + options)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE")  # a decorator each
_spell_options(Routes.api_route)
for _method in METHODS:
    setattr(Routes, _method.lower(), _method_decorator(_method))
    _spell_options(getattr(Routes, _method.lower()))


def _check_prefix(prefix):
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError("a prefix must start with '/' and not end with '/': %r" % (prefix,))


def _joined(options, tags, dependencies, responses):
    """A route's options with the tags, dependencies and responses of an outer level."""
    return dict(options, tags=list(tags or ()) + list(options["tags"] or ()),
                dependencies=list(dependencies or ()) + list(options["dependencies"] or ()),
                responses={**(responses or {}), **(options["responses"] or {})})


class APIRouter(Routes):
    """Routes kept together, to be included in an App (or another router) with
    include_router; prefix, tags, dependencies and responses apply to every route."""

    def __init__(self, *, prefix="", tags=None, dependencies=None, responses=None,
                 deprecated=None, include_in_schema=True):
        _check_prefix(prefix)
        self.prefix, self.tags = prefix, list(tags or ())
        self.dependencies, self.responses = list(dependencies or ()), dict(responses or {})
        self.deprecated, self.include_in_schema = deprecated, include_in_schema
        self.routes = []

    def _add(self, path, endpoint, options):
        options = _joined(options, self.tags, self.dependencies, self.responses)
        methods = list(methods_of(options.pop("methods")))
        if options["deprecated"] is None:
            options["deprecated"] = self.deprecated
        options["include_in_schema"] = self.include_in_schema and options["include_in_schema"]
        self.routes.append(Route(self.prefix + path, endpoint, methods, options))


def slash_twin(path):
    """/items for /items/ and the other way round; None for /."""
    if path == "/":
        return None
    return path[:-1] if path.endswith("/") else path + "/"
