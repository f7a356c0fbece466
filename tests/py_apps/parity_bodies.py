"""Bodies, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served by
uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import os
from typing import Dict, List, Optional, Union

from pydantic import BaseModel

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Body, Depends, FastAPI as App
else:
    from turbo import App, Body, Depends


class Item(BaseModel):
    name: str
    price: float = 1.0
    tags: List[str] = []


class User(BaseModel):
    username: str
    full_name: Optional[str] = None


app = App()


@app.put("/items/{item_id}")
def update_item(item_id: int, item: Item, user: User, importance: int = Body(gt=0)):
    return {"item_id": item_id, "item": item, "user": user, "importance": importance}


@app.put("/embed")
def embed(item: Item = Body(embed=True)):
    return item


@app.put("/embed-alias")
def embed_alias(item: Item = Body(embed=True, alias="thing"), note: str = Body("none", max_length=5)):
    return {"item": item, "note": note}


@app.post("/list")
def item_list(items: List[Item]):
    return {"names": [i.name for i in items]}


@app.post("/weights")
def weights(weights: Dict[str, float]):
    return weights


@app.post("/scalar")
def scalar(n: int = Body()):
    return {"n": n}


@app.post("/optional")
def optional(item: Optional[Item] = None):
    return {"item": item}


@app.post("/union")
def union(value: Union[Item, List[int]]):
    return {"value": value}


def extra_from_body(extra: str = Body("x")):
    return extra


@app.post("/dep-body")
def dep_body(item: Item, extra: str = Depends(extra_from_body)):
    return {"item": item, "extra": extra}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
