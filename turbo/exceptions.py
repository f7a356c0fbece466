"""HTTPException, as FastAPI's: raise it in a handler or a dependency to answer
{"detail": detail} with that status and headers."""
import http

from ._turbo import Response

__all__ = ["HTTPException"]


class HTTPException(Exception):
    """HTTPException(status_code, detail=None, headers=None). detail defaults to the status's
    reason phrase and may be any JSON-encodable value. The status and headers are checked when
    it is made, as a Response's are (ValueError for one turbo cannot send)."""

    def __init__(self, status_code, detail=None, headers=None):
        checked = Response(b"", status_code, headers)
        if detail is None:
            detail = http.HTTPStatus(status_code).phrase
        super().__init__(status_code, detail)
        self.status_code, self.detail, self.headers = status_code, detail, headers
        self.header_list = checked.headers.raw  # what C sends: the checked (name, value) pairs

    def __str__(self):
        return "%d: %s" % (self.status_code, self.detail)

    def __repr__(self):
        return "HTTPException(status_code=%r, detail=%r)" % (self.status_code, self.detail)
