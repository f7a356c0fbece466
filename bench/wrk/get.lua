-- One GET per round trip. No request() function, so wrk keeps its static,
-- prebuilt request and spends no Lua time per request. run.py sets PATH_.
wrk.method = "GET"
wrk.path = PATH_
