"""Dependencies, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served
by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import os
from typing import Optional

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Cookie, Depends, FastAPI as App, Header, HTTPException, Query, Request, Security
    from fastapi.security import (APIKeyCookie, APIKeyHeader, APIKeyQuery, HTTPBasic, HTTPBearer,
                                  OAuth2PasswordBearer, SecurityScopes)
else:
    from turbo import App, Cookie, Depends, Header, HTTPException, Query, Request, Security, SecurityScopes
    from turbo.security import (APIKeyCookie, APIKeyHeader, APIKeyQuery, HTTPBasic, HTTPBearer,
                                OAuth2PasswordBearer)


def not_blocked(x_block: Optional[str] = Header(None)):
    if x_block:
        raise HTTPException(status_code=418, detail="blocked by an app-level dependency")


app = App(dependencies=[Depends(not_blocked)])


def common_parameters(q: Optional[str] = None, skip: int = 0, limit: int = Query(100, le=100)):
    return {"q": q, "skip": skip, "limit": limit}


@app.get("/common")
def read_common(commons: dict = Depends(common_parameters)):
    return commons


class CommonQueryParams:
    def __init__(self, q: Optional[str] = None, skip: int = 0, limit: int = 100):
        self.q, self.skip, self.limit = q, skip, limit


@app.get("/class")
def read_class(commons: CommonQueryParams = Depends()):
    return {"q": commons.q, "skip": commons.skip, "limit": commons.limit}


@app.get("/class-named")
def read_class_named(commons=Depends(CommonQueryParams)):
    return {"q": commons.q, "skip": commons.skip}


def query_extractor(q: Optional[str] = None):
    return q


def query_or_cookie_extractor(q: str = Depends(query_extractor), last_query: Optional[str] = Cookie(None)):
    return q or last_query


@app.get("/sub")
def read_sub(query_or_default: str = Depends(query_or_cookie_extractor)):
    return {"q_or_cookie": query_or_default}


def fresh():
    return []


def holder(first: list = Depends(fresh), again: list = Depends(fresh, use_cache=False)):
    return first, again


@app.get("/cache")
def read_cache(pair=Depends(holder), first: list = Depends(fresh)):
    return {"cached": pair[0] is first, "uncached_differs": pair[1] is not first}


async def verify_token(x_token: str = Header()):
    if x_token != "fake-super-secret-token":
        raise HTTPException(status_code=400, detail="X-Token header invalid")


def verify_key(x_key: str = Header()):
    if x_key != "fake-super-secret-key":
        raise HTTPException(status_code=400, detail="X-Key header invalid")
    return x_key


@app.get("/guarded", dependencies=[Depends(verify_token), Depends(verify_key)])
async def read_guarded():
    return [{"item": "Foo"}, {"item": "Bar"}]


STATE = {"db_open": 0}


def get_db():
    db = {"open": True}
    STATE["db_open"] += 1
    try:
        yield db
    finally:
        db["open"] = False
        STATE["db_open"] -= 1


class Owner(Exception):
    pass


def checked_db(db: dict = Depends(get_db)):
    try:
        yield db
    except HTTPException:
        raise
    except Owner:
        raise HTTPException(status_code=409, detail="owner conflict, seen by the dependency")


@app.get("/db")
def read_db(db: dict = Depends(checked_db), fail: Optional[str] = None):
    if fail == "http":
        raise HTTPException(status_code=404, detail="no such row")
    if fail == "owner":
        raise Owner()
    return {"open": db["open"]}


async def async_common(n: int = 1):
    return n * 2


async def async_resource():
    yield "resource"


@app.get("/async")
async def read_async(doubled: int = Depends(async_common), res: str = Depends(async_resource),
                     commons: dict = Depends(common_parameters)):
    return {"doubled": doubled, "res": res, "limit": commons["limit"]}


@app.get("/async-sync-handler")
def read_async_sync(doubled: int = Depends(async_common)):
    return {"doubled": doubled}


def needs_a(a: int):
    return a


@app.get("/order/{p}")
def read_order(p: int, b: int, a: int = Depends(needs_a), h: str = Header()):
    return {"p": p, "b": b, "a": a, "h": h}


def method_and_header(request: Request):
    return request.method, request.headers.get("x-test")


@app.get("/request")
def read_request(seen=Depends(method_and_header)):
    return {"method": seen[0], "x": seen[1]}


oauth2 = OAuth2PasswordBearer(tokenUrl="token")
basic = HTTPBasic()
basic_realm = HTTPBasic(realm="turbo", auto_error=True)
bearer = HTTPBearer()
soft_bearer = HTTPBearer(auto_error=False)
key_header = APIKeyHeader(name="X-API-Key")
key_query = APIKeyQuery(name="api_key")
key_cookie = APIKeyCookie(name="session")


@app.get("/oauth2")
def read_oauth2(token: str = Depends(oauth2)):
    return {"token": token}


@app.get("/basic")
def read_basic(credentials=Depends(basic)):
    return {"username": credentials.username, "password": credentials.password}


@app.get("/basic-realm")
def read_basic_realm(credentials=Depends(basic_realm)):
    return {"username": credentials.username}


@app.get("/bearer")
def read_bearer(credentials=Depends(bearer)):
    return {"scheme": credentials.scheme, "credentials": credentials.credentials}


@app.get("/soft-bearer")
def read_soft_bearer(credentials=Depends(soft_bearer)):
    return {"anonymous": credentials is None}


@app.get("/keys")
def read_keys(h: str = Depends(key_header), q: str = Depends(key_query), c: str = Depends(key_cookie)):
    return [h, q, c]


def scoped_user(security_scopes: SecurityScopes, token: str = Depends(oauth2)):
    if "admin" in security_scopes.scopes and token != "root":
        raise HTTPException(status_code=401, detail="Not enough permissions",
                            headers={"WWW-Authenticate": 'Bearer scope="%s"' % security_scopes.scope_str})
    return {"scopes": security_scopes.scopes, "token": token}


@app.get("/scoped")
def read_scoped(user=Security(scoped_user, scopes=["items"])):
    return user


@app.get("/scoped-admin")
def read_scoped_admin(user=Security(scoped_user, scopes=["items", "admin"])):
    return user


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
