"""Forms, files and list parameters, one source for two frameworks: FastAPI when
PARITY_FRAMEWORK=fastapi (served by uvicorn), turbo otherwise. tests/test_fastapi_parity.py
compares them."""
import os
from typing import List, Optional, Set, Tuple

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, File, Form, Header, Query, UploadFile
    from fastapi.security import OAuth2PasswordRequestForm
else:
    from turbo import App, Depends, File, Form, Header, Query, UploadFile
    from turbo.security import OAuth2PasswordRequestForm

app = App()


@app.post("/login")
def login(username: str = Form(), password: str = Form(min_length=3), remember: bool = Form(False)):
    return {"username": username, "password": password, "remember": remember}


@app.post("/optional-form")
def optional_form(age: Optional[int] = Form(None), name: Optional[str] = Form(None), tags: List[str] = Form([])):
    return {"age": age, "name": name, "tags": tags}


@app.post("/token")
def token(form: OAuth2PasswordRequestForm = Depends()):
    return {"access_token": form.username, "scopes": form.scopes, "grant_type": form.grant_type,
            "client_id": form.client_id}


@app.post("/bytes")
def upload_bytes(file: bytes = File()):
    return {"size": len(file), "text": file.decode("utf-8", "replace")}


@app.post("/upload")
async def upload(file: UploadFile, note: str = Form("none")):
    data = await file.read()
    return {"filename": file.filename, "type": file.content_type, "size": len(data),
            "head": data[:20].decode("utf-8", "replace"), "note": note}


@app.post("/uploads")
async def uploads(files: List[UploadFile] = File()):
    return [{"filename": f.filename, "size": len((await f.read()))} for f in files]


@app.post("/optional-file")
async def optional_file(file: Optional[UploadFile] = None):
    return {"given": file is not None}


@app.get("/list-query")
def list_query(q: List[str] = Query([]), n: Optional[List[int]] = Query(None)):
    return {"q": q, "n": n}


@app.get("/set-query")
def set_query(s: Set[int] = Query(set()), t: Tuple[str, ...] = Query(())):
    return {"s": sorted(s), "s_type": type(s).__name__, "t": t, "t_type": type(t).__name__}


@app.get("/list-header")
def list_header(x_tag: List[str] = Header([])):
    return {"tags": x_tag}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
