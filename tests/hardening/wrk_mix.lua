-- wrk script for tests/hardening/test_load_faults.py: rotates over a mix of small requests
-- (plan, JSON weights, npz / safetensors / npy weights by body format and by Accept header, health)
-- and prints one JSON line with the totals, the errors and the latency percentiles at the end.
--
--   wrk -t2 -c64 -d20s --timeout 10s -s tests/hardening/wrk_mix.lua http://127.0.0.1:PORT

local mlp = '{"architecture":{"layers":[' ..
  '{"type":"dense","name":"fc1","in_features":64,"out_features":32,"activation":"relu"},' ..
  '{"type":"dense","name":"fc2","in_features":32,"out_features":10,"activation":"softmax"}]},' ..
  '"scheme":"auto","seed":%d'
local conv = '{"architecture":{"layers":[{"type":"conv2d","name":"c","in_channels":3,"out_channels":8,' ..
  '"kernel_size":[3,3],"activation":"tanh"}]},"seed":%d,"dtype":"%s"'

local json = {["Content-Type"] = "application/json"}
local function with(h, k, v)
  local out = {}
  for key, value in pairs(h) do out[key] = value end
  out[k] = v
  return out
end

local requests = {}
local counter = 0

function init(args)
  -- a few seeds so responses differ, but each request stays a few KiB
  for seed = 1, 4 do
    table.insert(requests, wrk.format("POST", "/v1/plan", json, string.format(mlp, seed) .. "}"))
    table.insert(requests, wrk.format("POST", "/v1/weights", json, string.format(mlp, seed) .. "}"))
    table.insert(requests, wrk.format("POST", "/v1/weights", json,
      string.format(mlp, seed) .. ',"format":"npz"}'))
    table.insert(requests, wrk.format("POST", "/v1/weights", with(json, "Accept", "application/vnd.safetensors"),
      string.format(conv, seed, "bfloat16") .. "}"))
    table.insert(requests, wrk.format("POST", "/v1/weights", json,
      string.format(conv, seed, "float16") .. ',"tensors":["c.weight"],"format":"npy"}'))
    table.insert(requests, wrk.format("POST", "/v1/weights", with(json, "Accept", "application/json"),
      string.format(conv, seed, "float32") .. "}"))
  end
  table.insert(requests, wrk.format("GET", "/healthz", {["X-Request-ID"] = "wrk-health"}, nil))
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
