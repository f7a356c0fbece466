"""HTTP status codes by name, as Starlette's and FastAPI's status module has them
(status.HTTP_404_NOT_FOUND is 404)."""
import http

for _status in http.HTTPStatus:
    globals()["HTTP_%d_%s" % (_status.value, _status.name)] = _status.value
del _status
