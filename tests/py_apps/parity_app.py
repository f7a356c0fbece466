"""One source, two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served
by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import asyncio
import dataclasses
import datetime
import decimal
import enum
import os
import pathlib
import uuid
from typing import Optional

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Cookie, FastAPI as App, Header, HTTPException, Path, Query, Request, Response
else:
    from turbo import App, Cookie, Header, HTTPException, Path, Query, Request, Response

app = App()


@app.get("/whoami")
def whoami(request: Request):  # behind a trusted proxy (127.0.0.1), as its X-Forwarded-* say
    return {"scheme": request.url.scheme, "scope_scheme": request.scope["scheme"], "client": request.client.host}


@app.post("/request-url/{name}")
async def request_url_parts(name: str, request: Request):
    return {"replaced": str(request.url.replace(query="z=1")).split("/", 3)[3],
            "included": str(request.url.include_query_params(b=2, c="x")).split("/", 3)[3],
            "base": str(request.base_url).split("/", 3)[3],
            "streamed": b"".join([part async for part in request.stream()]).decode()}


@app.get("/items/{item_id}")
def read_item(item_id: int, q: Optional[str] = None, limit: int = 10, ratio: float = 0.5, flag: bool = False):
    return {"item_id": item_id, "q": q, "limit": limit, "ratio": ratio, "flag": flag}


@app.get("/need")
def need(a: int, b: str, c: float, d: bool):
    return {"a": a, "b": b, "c": c, "d": d}


@app.post("/body", status_code=201)
def body(item: dict):
    return {"got": item}


@app.post("/list")
def count(items: list):
    return {"n": len(items)}


@app.put("/items/{item_id}")
def replace(item_id: int, item: dict):
    return {"item_id": item_id, "item": item}


@app.delete("/items/{item_id}")
def delete(item_id: int):
    return {"deleted": item_id}


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    label: str
    at: datetime.date


RESULTS = {
    "dict": {"a": 1, "b": {"c": [1, 2, None]}},
    "list": [1, "two", 3.5, True, False, None],
    "str": "héllo \"w\"\n\t\u0001",
    "int": -42,
    "big": 2 ** 64 + 1,
    "floats": [0.1, 1.5, 1e20, 1e-7, 2.5e-300, 123456789012345680000.0, -0.0, 3.0, 1 / 3],
    "true": True,
    "none": None,
    "tuple": (1, "a"),
    "datetime": {"at": datetime.datetime(2024, 1, 2, 3, 4, 5, 600), "day": datetime.date(2024, 1, 2),
                 "time": datetime.time(7, 8, 9), "span": datetime.timedelta(days=1, seconds=1.5)},
    "uuid": uuid.UUID(int=0x1234),
    "decimal": [decimal.Decimal("1.5"), decimal.Decimal("10"), decimal.Decimal("-2.25")],
    "dataclass": Point(1, "p", datetime.date(2024, 5, 6)),
    "enum_set": {"colors": {Color.RED}, "frozen": frozenset([3])},
    "path": pathlib.PurePosixPath("/a/b"),
    "bytes_inside": {"b": b"text"},
}


@app.get("/types/{kind}")
def types(kind: str):
    return RESULTS[kind]


@app.get("/error/http")
def http_error():
    raise HTTPException(status_code=404, detail="no such thing", headers={"X-Reason": "missing"})


@app.get("/error/detail")
def http_error_detail():
    raise HTTPException(status_code=400, detail={"field": "x", "codes": [1, 2]})


@app.get("/response")
def response():
    return Response(content="plain", media_type="text/plain", headers={"X-A": "1"})


@app.get("/response/status")
def response_status():
    return Response(content=b"{}", status_code=202, media_type="application/json")


@app.get("/request/{name}")
def request_info(name: str, request: Request):
    return {"method": request.method, "name": name, "path_params": dict(request.path_params),
            "query": dict(request.query_params), "x": request.headers.get("x-test")}


@app.get("/async/{n}")
async def async_route(n: int):
    await asyncio.sleep(0.01)
    return {"n": n * 2}


@app.get("/status204", status_code=204)
def no_content():
    return None




# Response models: the return annotation or response_model= filters and checks what is sent.
from typing import List, Union  # noqa: E402

from pydantic import BaseModel, Field  # noqa: E402


class BaseUser(BaseModel):
    name: str
    email: Optional[str] = None
    tags: List[str] = []


class UserIn(BaseUser):
    password: str


@app.post("/users")
def create_user(user: UserIn) -> BaseUser:
    return user  # the password must not be sent


@app.get("/users/dict", response_model=BaseUser)
def user_dict():
    return {"name": "ann", "password": "secret", "extra": 1}


@app.get("/users/list")
def user_list() -> List[BaseUser]:
    return [UserIn(name="a", password="x"), {"name": "b", "password": "y", "tags": ["t"]}]


@app.get("/users/unset", response_model=BaseUser, response_model_exclude_unset=True)
def user_unset():
    return BaseUser(name="cy")


class Aliased(BaseModel):
    user_id: int = Field(alias="userId")
    full_name: Optional[str] = Field(None, alias="fullName")


@app.get("/users/aliased")
def user_aliased():  # no response model: sent by alias, at any depth
    return {"one": Aliased(userId=1, fullName="Ann"), "all": [Aliased(userId=2)]}


@app.get("/starlette-409")
def starlette_409():  # as code written for FastAPI may raise it
    try:
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError:
        StarletteHTTPException = HTTPException
    raise StarletteHTTPException(409, "taken")


@app.get("/users/defaults", response_model=BaseUser, response_model_exclude_defaults=True)
def user_defaults():
    return {"name": "eve", "email": None, "tags": ["t"]}


@app.get("/users/by-name", response_model=Aliased, response_model_by_alias=False)
def user_by_name():
    return Aliased(userId=3, fullName="Fay")


@app.get("/users/none", response_model=BaseUser, response_model_exclude_none=True)
def user_none():
    return {"name": "di"}


@app.get("/users/broken", response_model=BaseUser)
def user_broken():
    return {"email": "no name"}  # does not fit the model: a 500


@app.get("/users/off", response_model=None)
def user_off() -> dict:
    return {"name": "ed", "password": "shown: no model"}


# Parameter markers and their rules (FastAPI 0.92's spelling: defaults, regex=).
@app.get("/rules/{item_id}")
def rules(item_id: int = Path(..., ge=1), q: Optional[str] = Query(None, min_length=2, max_length=5, regex="^a"),
          size: float = Query(1.0, gt=0, le=10), n: int = Query(0, alias="num", multiple_of=2),
          x_token: str = Header("none"), sess: str = Cookie("no")):
    return {"item_id": item_id, "q": q, "size": size, "n": n, "x_token": x_token, "sess": sess}


@app.get("/needs-header")
def needs_header(x_key: str = Header(...), user_agent: Optional[str] = Header(None)):
    return {"x_key": x_key}


@app.get("/aliased-header")
def aliased_header(token: str = Header(alias="X-Token"), tags: List[str] = Header([], alias="X-Tag")):
    return {"token": token, "tags": tags}


class Size(str, enum.Enum):
    S = "small"
    L = "large"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


# Annotations C does not convert, read from the query and the path as FastAPI reads them.
@app.get("/typed/{size}")
def typed(size: Size, level: Level = Level.LOW, day: Optional[datetime.date] = None,
          key: Optional[uuid.UUID] = None, price: decimal.Decimal = decimal.Decimal("1.5"),
          either: Union[int, str] = 0, sizes: List[Size] = Query([])):
    return {"size": size, "level": level, "day": day, "key": key, "price": price, "either": either,
            "sizes": sizes, "types": [type(v).__name__ for v in (size, level, day, key, price, either)]}


@app.get("/typed-rules")
def typed_rules(price: decimal.Decimal = Query(..., gt=0), day: datetime.date = Header(...)):
    return {"price": price, "day": day}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
