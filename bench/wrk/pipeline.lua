-- DEPTH_ requests of PATH_ written in one buffer; wrk counts every response
-- and sends the next batch when the last one of a batch has arrived.
init = function(args)
  local batch = {}
  for i = 1, DEPTH_ do
    batch[i] = wrk.format("GET", PATH_)
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
