"""HTTP status codes and WebSocket close codes by name, as Starlette's and FastAPI's status
module has them (status.HTTP_404_NOT_FOUND is 404, status.WS_1008_POLICY_VIOLATION 1008)."""
import http

for _status in http.HTTPStatus:
    globals()["HTTP_%d_%s" % (_status.value, _status.name)] = _status.value
del _status

_WS_CODES = {1000: "NORMAL_CLOSURE", 1001: "GOING_AWAY", 1002: "PROTOCOL_ERROR",
             1003: "UNSUPPORTED_DATA", 1005: "NO_STATUS_RCVD", 1006: "ABNORMAL_CLOSURE",
             1007: "INVALID_FRAME_PAYLOAD_DATA", 1008: "POLICY_VIOLATION", 1009: "MESSAGE_TOO_BIG",
             1010: "MANDATORY_EXT", 1011: "INTERNAL_ERROR", 1012: "SERVICE_RESTART",
             1013: "TRY_AGAIN_LATER", 1014: "BAD_GATEWAY", 1015: "TLS_HANDSHAKE"}
for _code, _name in _WS_CODES.items():
    globals()["WS_%d_%s" % (_code, _name)] = _code
del _code, _name
