"""The security dependencies of fastapi.security, with the same answers when a credential is
missing or malformed. Each reads one value of the request, which its __signature__ asks C for;
auto_error=False: None instead of the error.
"""
import base64
import binascii
import dataclasses
import inspect
import typing

from . import params
from .exceptions import HTTPException

__all__ = ["APIKeyCookie", "APIKeyHeader", "APIKeyQuery", "HTTPAuthorizationCredentials",
           "HTTPBasic", "HTTPBasicCredentials", "HTTPBearer", "OAuth2PasswordBearer",
           "OAuth2PasswordRequestForm"]


@dataclasses.dataclass
class HTTPBasicCredentials:
    username: str
    password: str


@dataclasses.dataclass
class HTTPAuthorizationCredentials:
    scheme: str
    credentials: str


class _Scheme:
    """A dependency that reads one value (source, key); model: its scheme in the document."""
    source, key = "header", "Authorization"

    def __init__(self, *, scheme_name=None, description=None, auto_error=True):
        self.scheme_name = scheme_name or type(self).__name__
        self.description, self.auto_error = description, auto_error
        marker = {"header": params.Header, "query": params.Query,
                  "cookie": params.Cookie}[self.source](None, alias=self.key)
        self.__signature__ = inspect.Signature([inspect.Parameter(
            "value", inspect.Parameter.KEYWORD_ONLY, default=marker, annotation=typing.Optional[str])])

    def refuse(self, status, detail="Not authenticated", challenge=None):
        """None with auto_error=False, else the error FastAPI answers."""
        if not self.auto_error:
            return None
        raise HTTPException(status, detail, headers={"WWW-Authenticate": challenge} if challenge else None)


def _split(authorization):
    """("Bearer", "abc") from "Bearer abc"; ("", "") when absent."""
    scheme, _, rest = (authorization or "").partition(" ")
    return scheme, rest


class OAuth2PasswordBearer(_Scheme):
    """The bearer token of an OAuth2 password flow: 401 without one."""

    def __init__(self, tokenUrl, scheme_name=None, scopes=None, description=None, auto_error=True):
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.token_url, self.scopes = tokenUrl, dict(scopes or {})
        self.model = {"type": "oauth2", "flows": {"password": {"scopes": self.scopes,
                                                               "tokenUrl": tokenUrl}}}

    def __call__(self, *, value):
        scheme, token = _split(value)
        if scheme.lower() != "bearer":
            return self.refuse(401, challenge="Bearer")
        return token


class OAuth2PasswordRequestForm:
    """The form of an OAuth2 password request (Depends() it); scopes: the scope field split."""

    def __init__(self, grant_type: typing.Optional[str] = params.Form(None, pattern="password"),
                 username: str = params.Form(), password: str = params.Form(),
                 scope: str = params.Form(""), client_id: typing.Optional[str] = params.Form(None),
                 client_secret: typing.Optional[str] = params.Form(None)):
        self.grant_type, self.username, self.password = grant_type, username, password
        self.scopes = scope.split()
        self.client_id, self.client_secret = client_id, client_secret


class HTTPBearer(_Scheme):
    """Authorization: Bearer <credentials>: 403 without it."""

    def __init__(self, *, bearerFormat=None, scheme_name=None, description=None, auto_error=True):
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.bearer_format = bearerFormat
        self.model = {"type": "http", "scheme": "bearer"}

    def __call__(self, *, value):
        scheme, credentials = _split(value)
        if not (scheme and credentials):
            return self.refuse(403)
        if scheme.lower() != "bearer":
            return self.refuse(403, "Invalid authentication credentials")
        return HTTPAuthorizationCredentials(scheme, credentials)


class HTTPBasic(_Scheme):
    """Authorization: Basic base64(user:password): 401 with a challenge without it."""

    def __init__(self, *, scheme_name=None, realm=None, description=None, auto_error=True):
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.realm = realm
        self.model = {"type": "http", "scheme": "basic"}

    def __call__(self, *, value):
        challenge = 'Basic realm="%s"' % self.realm if self.realm else "Basic"
        scheme, encoded = _split(value)
        if not value or scheme.lower() != "basic":
            return self.refuse(401, challenge=challenge)
        try:
            username, sep, password = base64.b64decode(encoded).decode("ascii").partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            sep = ""
        if not sep:
            raise HTTPException(401, "Invalid authentication credentials",
                                headers={"WWW-Authenticate": challenge})
        return HTTPBasicCredentials(username, password)


class _APIKey(_Scheme):
    """An API key under name: 403 without it."""

    def __init__(self, *, name, scheme_name=None, description=None, auto_error=True):
        self.key = name
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.model = {"type": "apiKey", "in": self.source, "name": name}

    def __call__(self, *, value):
        return value if value else self.refuse(403)


class APIKeyHeader(_APIKey):
    source = "header"


class APIKeyQuery(_APIKey):
    source = "query"


class APIKeyCookie(_APIKey):
    source = "cookie"
