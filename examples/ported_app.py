"""A FastAPI tutorial-style app ported to turbo by changing its imports only: users, items
behind a bearer token, a router, a yield dependency, response models.
tests/test_fastapi_parity.py runs this very file under FastAPI too (the imports changed back)
and compares every answer.

    python3 examples/ported_app.py          # http://127.0.0.1:8000
    curl -d 'username=ann&password=secret' localhost:8000/token
    curl -H 'Authorization: Bearer ann' localhost:8000/items/
"""
import os
from typing import Dict, List, Optional

from pydantic import BaseModel

from turbo import APIRouter, App, Depends, HTTPException, Query, status
from turbo.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm


class UserIn(BaseModel):
    username: str
    password: str
    full_name: Optional[str] = None


class UserOut(BaseModel):
    username: str
    full_name: Optional[str] = None


class ItemIn(BaseModel):
    title: str
    price: float
    tags: List[str] = []


class Item(ItemIn):
    id: int
    owner: str


class Store:
    """What a database would hold; get_db hands one session per request."""

    def __init__(self):
        self.users: Dict[str, UserIn] = {"ann": UserIn(username="ann", password="secret", full_name="Ann")}
        self.items: Dict[int, Item] = {}
        self.sessions_open = 0  # sessions handed out and not yet closed


STORE = Store()


def get_db():
    STORE.sessions_open += 1
    try:
        yield STORE
    finally:
        STORE.sessions_open -= 1


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


def get_current_user(token: str = Depends(oauth2_scheme), db: Store = Depends(get_db)) -> UserIn:
    user = db.users.get(token)  # the token is the user name: this is a tutorial
    if user is None:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid token",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


app = App()
items = APIRouter(prefix="/items", tags=["items"], dependencies=[Depends(get_current_user)])


@app.post("/token")
def login(form: OAuth2PasswordRequestForm = Depends(), db: Store = Depends(get_db)):
    user = db.users.get(form.username)
    if user is None or user.password != form.password:
        raise HTTPException(status_code=400, detail="Incorrect username or password")
    return {"access_token": user.username, "token_type": "bearer"}


@app.post("/users/", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(user: UserIn, db: Store = Depends(get_db)):
    if user.username in db.users:
        raise HTTPException(status_code=409, detail="Username taken")
    db.users[user.username] = user
    return user


@app.get("/users/me", response_model=UserOut)
def read_me(user: UserIn = Depends(get_current_user)):
    return user


@items.get("/", response_model=List[Item])
def list_items(skip: int = 0, limit: int = Query(10, ge=1, le=100), db: Store = Depends(get_db)):
    return list(db.items.values())[skip:skip + limit]


@items.post("/", response_model=Item, status_code=status.HTTP_201_CREATED)
def create_item(item: ItemIn, user: UserIn = Depends(get_current_user), db: Store = Depends(get_db)):
    new = Item(id=len(db.items) + 1, owner=user.username, **dict(item))
    db.items[new.id] = new
    return new


@items.get("/{item_id}", response_model=Item)
def read_item(item_id: int, db: Store = Depends(get_db)):
    if item_id not in db.items:
        raise HTTPException(status_code=404, detail="Item not found")
    return db.items[item_id]


@items.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: int, user: UserIn = Depends(get_current_user), db: Store = Depends(get_db)):
    item = db.items.get(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="Item not found")
    if item.owner != user.username:
        raise HTTPException(status_code=403, detail="Not your item")
    del db.items[item_id]


@app.get("/health")
def health(db: Store = Depends(get_db)):
    return {"status": "ok", "users": len(db.users)}


app.include_router(items)

if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "8000")), workers=1)
