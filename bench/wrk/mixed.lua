-- Round-robin over REQUESTS_, a list of {method, path, body} set by run.py:
-- one request per round trip; the thread walks the list, so consecutive
-- requests on any connection hit different routes.
init = function(args)
  prepared = {}
  for i, r in ipairs(REQUESTS_) do
    local headers = {}
    if r[3] then headers["Content-Type"] = "application/json" end
    prepared[i] = wrk.format(r[1], r[2], headers, r[3])
  end
  next_index = 0
end

request = function()
  next_index = next_index % #prepared + 1
  return prepared[next_index]
end
