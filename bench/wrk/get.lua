-- One GET per round trip. No request() function, so wrk keeps its static,
-- prebuilt request and spends no Lua time per request. run.py sets PATH_,
-- and HEADERS_ (name, value, name, value...) for more headers than Host.
wrk.method = "GET"
wrk.path = PATH_
for i = 1, #(HEADERS_ or {}), 2 do
  wrk.headers[HEADERS_[i]] = HEADERS_[i + 1]
end
