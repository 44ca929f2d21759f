-- wrk script: each thread posts its share of the pre-signed requests (webhooks.sh writes
-- them), each once while they last; answers other than 202 are counted and reported.
-- Arguments after `--`: the requests file and the number of wrk threads.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local requests, sent = {}, 0
refused = 0 -- global: done() reads it from each thread

function init(args)
  local count, n = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if n % count == id then
      local webhook_id, timestamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["webhook-id"] = webhook_id,
        ["webhook-timestamp"] = timestamp,
        ["webhook-signature"] = signature,
        ["content-type"] = "application/json",
      }, body)
    end
    n = n + 1
  end
end

function request()
  sent = sent + 1
  return requests[((sent - 1) % #requests) + 1]
end

function response(status)
  if status ~= 202 then
    refused = refused + 1
  end
end

function done()
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("refused")
  end
  io.write(string.format("answers other than 202 (a request file reused, or a failure): %d\n", total))
end
