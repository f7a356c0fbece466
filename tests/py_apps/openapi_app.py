"""The API document and its pages (tests/test_py.py): what FastAPI 0.92 cannot show (OpenAPI
3.1, native routes, the page options). TURBO_NO_DOCS=1: an app with openapi_url=None."""
import os
from typing import List, Optional

from pydantic import BaseModel

from turbo import App, Depends, File, Form, Header, Query, UploadFile
from turbo.security import OAuth2PasswordBearer


class Item(BaseModel):
    name: str
    price: float = 0


class Message(BaseModel):
    message: str


if os.environ.get("TURBO_NO_DOCS"):
    app = App(openapi_url=None)
else:
    app = App(title="Shop", version="2.0", description="Items and files.", servers=[{"url": "/"}],
              openapi_tags=[{"name": "items", "description": "What the shop sells."}],
              swagger_js_url="/static/swagger-ui-bundle.js", swagger_css_url="/static/swagger-ui.css")
    if os.environ.get("SWAGGER_DIST"):  # the browser test's local copy of swagger-ui-dist
        app.static("/static", os.environ["SWAGGER_DIST"])
oauth2 = OAuth2PasswordBearer(tokenUrl="token", scopes={"read": "Read items"})


@app.post("/items/", response_model=Item, status_code=201, tags=["items"],
          responses={404: {"model": Message, "description": "Not there"}})
def create_item(item: Item, token: str = Depends(oauth2)):
    """Makes an item.

    The price defaults to 0."""
    return item


@app.get("/items/", response_model=List[Item], tags=["items"], deprecated=True)
def list_items(limit: int = Query(10, gt=0, le=100),
               q: Optional[str] = Query(None, max_length=20, title="Search", description="Words to find.",
                                        example="pen", deprecated=True),
               secret: Optional[str] = Query(None, include_in_schema=False),
               x_custom: Optional[str] = Header(None, alias="X-Custom")):
    return []


@app.post("/upload", summary="Send a file")
def upload(file: UploadFile, note: str = Form("")):
    return {"size": file.size}


@app.get("/hidden", include_in_schema=False)
def hidden():
    return "not in the document"


app.native("GET", "/health", os.environ["TURBO_TEST_HANDLERS"], "health",
           openapi={"summary": "Health check", "tags": ["ops"]})

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
