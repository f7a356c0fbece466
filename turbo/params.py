"""Parameter markers, as FastAPI declares them: where a value comes from and what it must be.

Read once at decoration (turbo/_plans.py); per request the values are found, converted and
checked in C, and a value that breaks a rule gets pydantic 2's 422.
"""
import re

__all__ = ["Body", "Cookie", "File", "Form", "Header", "Path", "Query"]

_RULES = {  # rule: pydantic's error type and message, in the order pydantic checks them
    "min_length": ("string_too_short", "String should have at least %d character%s"),
    "max_length": ("string_too_long", "String should have at most %d character%s"),
    "pattern": ("string_pattern_mismatch", "String should match pattern '%s'"),
    "gt": ("greater_than", "Input should be greater than %s"),
    "ge": ("greater_than_equal", "Input should be greater than or equal to %s"),
    "lt": ("less_than", "Input should be less than %s"),
    "le": ("less_than_equal", "Input should be less than or equal to %s"),
    "multiple_of": ("multiple_of", "Input should be a multiple of %s"),
}
_STRING_RULES = {"min_length", "max_length", "pattern"}


def _number(x):
    """A bound as pydantic writes it in a message: 1.0 as 1."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


class Param:
    """Where a parameter comes from (source) and the rules its value must keep; default (...:
    required) or default_factory(); alias: the name in the request."""
    source = None

    def __init__(self, default=..., *, default_factory=None, alias=None, gt=None, ge=None,
                 lt=None, le=None, multiple_of=None, min_length=None, max_length=None,
                 pattern=None, regex=None, title=None, description=None, example=None,
                 examples=None, deprecated=None, include_in_schema=True):
        if default is not ... and default_factory is not None:
            raise TypeError("give a default or a default_factory, not both")
        self.default, self.default_factory, self.alias = default, default_factory, alias
        self.constraints = dict(  # regex: FastAPI's older name of pattern
            min_length=min_length, max_length=max_length,
            pattern=pattern if pattern is not None else regex,
            gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of)
        # For the OpenAPI document: kept, not used to serve.
        self.docs = dict(title=title, description=description, example=example,
                         examples=examples, deprecated=deprecated,
                         include_in_schema=include_in_schema)

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.default)

    def key(self, name):
        return self.alias or name

    def field_rules(self):
        """The rules as keywords of pydantic's Field (pydantic 1 calls pattern regex)."""
        import pydantic
        out = {k: v for k, v in self.constraints.items() if v is not None}
        if "pattern" in out and not hasattr(pydantic, "TypeAdapter"):
            out["regex"] = out.pop("pattern")
        return out

    def rules(self, name, conv):
        """The checks for C, in pydantic's order: (rule, bound, error type, message, ctx)."""
        given = {k: v for k, v in self.constraints.items() if v is not None}
        if set(given) - _STRING_RULES and conv not in ("int", "float"):
            raise TypeError("parameter '%s': gt, ge, lt, le and multiple_of need int or float"
                            % name)
        if set(given) & _STRING_RULES and conv != "str":
            raise TypeError("parameter '%s': min_length, max_length and pattern need str" % name)
        out = []
        for rule, bound in given.items():
            kind, message = _RULES[rule]
            if rule == "pattern":
                message, bound = message % bound, re.compile(bound)
            elif rule in _STRING_RULES:
                message %= (bound, "" if bound == 1 else "s")
            else:
                message %= _number(bound)
            out.append((rule, bound, kind, message, {rule: given[rule]}))
        return tuple(out)


class Body(Param):
    """A JSON body parameter: the whole body, or, with embed=True or beside other body
    parameters, its member under the parameter's name (alias)."""
    source = "body"

    def __init__(self, default=..., *, embed=False, media_type="application/json", **rules):
        super().__init__(default, **rules)
        self.embed, self.media_type = embed, media_type


class Form(Param):
    """A field of a form (application/x-www-form-urlencoded or multipart/form-data)."""
    source = "form"

    def __init__(self, default=..., *, media_type="application/x-www-form-urlencoded", **rules):
        super().__init__(default, **rules)
        self.media_type = media_type


class File(Form):
    """A file of a multipart/form-data form: bytes, an UploadFile, or a list of either."""
    source = "file"

    def __init__(self, default=..., *, media_type="multipart/form-data", **rules):
        super().__init__(default, media_type=media_type, **rules)


class Query(Param):
    """A value from the query string (the default for scalars)."""
    source = "query"


class Path(Param):
    """A capture of the path; always required."""
    source = "path"


class Header(Param):
    """A request header; the name's underscores become hyphens unless convert_underscores=False."""
    source = "header"

    def __init__(self, default=..., *, convert_underscores=True, **rules):
        super().__init__(default, **rules)
        self.convert_underscores = convert_underscores

    def key(self, name):  # as given: C finds it in any case, and a 422 names it so (FastAPI)
        if self.alias:
            return self.alias
        return name.replace("_", "-") if self.convert_underscores else name


class Cookie(Param):
    """A cookie of the request's Cookie header."""
    source = "cookie"
