-- wrk script for tests/hardening/test_load_faults.py: rotates over a mix of small requests
-- (plan, JSON weights, npz / safetensors / npy weights by body format and by Accept header, health)
-- and prints one JSON line with the totals, the errors and the latency percentiles at the end.
--
--   wrk -t2 -c64 -d20s --timeout 10s -s tests/hardening/wrk_mix.lua http://127.0.0.1:PORT [-- BLOCK]
--
-- Nine requests in ten are distinct work: each carries a seed no other request of the run uses
-- (the wrk thread's number times 10^9 plus the thread's own counter; setup() numbers the threads,
-- so no two threads share a sequence), so the server draws, encodes and plans for real instead of
-- answering from its cache. The tenth repeats one of a few fixed bodies (caches and 304-free
-- repeats are part of real traffic too), and every 50th is /healthz. BLOCK (default 0) moves the
-- seeds to (BLOCK * 100 + thread) * 10^9 + counter, so that runs with different blocks (a warm-up
-- and the measured run) share no seed either.

local mlp = '{"architecture":{"layers":[' ..
  '{"type":"dense","name":"fc1","in_features":64,"out_features":32,"activation":"relu"},' ..
  '{"type":"dense","name":"fc2","in_features":32,"out_features":10,"activation":"softmax"}]},' ..
  '"scheme":"auto","seed":%d'
local conv = '{"architecture":{"layers":[{"type":"conv2d","name":"c","in_channels":3,"out_channels":8,' ..
  '"kernel_size":[3,3],"activation":"tanh"}]},"seed":%d,"dtype":"%s"'

local json = {["Content-Type"] = "application/json"}
local safetensors = {["Content-Type"] = "application/json", ["Accept"] = "application/vnd.safetensors"}
local accept_json = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}

-- each kind of request, as a function of its seed
local kinds = {
  function(s) return wrk.format("POST", "/v1/plan", json, string.format(mlp, s) .. "}") end,
  function(s) return wrk.format("POST", "/v1/weights", json, string.format(mlp, s) .. "}") end,
  function(s) return wrk.format("POST", "/v1/weights", json, string.format(mlp, s) .. ',"format":"npz"}') end,
  function(s) return wrk.format("POST", "/v1/weights", safetensors, string.format(conv, s, "bfloat16") .. "}") end,
  function(s)
    return wrk.format("POST", "/v1/weights", json,
      string.format(conv, s, "float16") .. ',"tensors":["c.weight"],"format":"npy"}')
  end,
  function(s) return wrk.format("POST", "/v1/weights", accept_json, string.format(conv, s, "float32") .. "}") end,
}

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local base, counter = 0, 0
local repeated = {}
local health = wrk.format("GET", "/healthz", {["X-Request-ID"] = "wrk-health"}, nil)

function init(args)
  base = ((tonumber(args[1]) or 0) * 100 + (tonumber(wrk.thread:get("id")) or 0)) * 1000000000
  for seed = 1, 4 do
    for _, kind in ipairs(kinds) do table.insert(repeated, kind(seed)) end
  end
end

function request()
  counter = counter + 1
  if counter % 50 == 0 then return health end
  if counter % 10 == 0 then return repeated[math.floor(counter / 10) % #repeated + 1] end
  return kinds[counter % #kinds + 1](base + counter)
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
