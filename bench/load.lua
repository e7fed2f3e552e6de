-- wrk script of the CNOP benches: one wrk thread per connection, each connection one user.
--   wrk -t N -c N -s bench/load.lua URL -- TOKENS_FILE orders ASSET QUANTITY
--   wrk -t N -c N -s bench/load.lua URL -- TOKENS_FILE get PATH
-- TOKENS_FILE holds one bearer token a line (line i for thread i; "-" for none). "orders" alternates
-- market buys and sells of QUANTITY of ASSET, flipping side after each 2xx; "get" repeats GET PATH.
-- Every non-2xx response is counted; done() prints one BENCH_JSON line for bench/wrk.py.

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  local tokens = {}
  for line in io.lines(args[1]) do
    table.insert(tokens, line)
  end
  local token = tokens[((id - 1) % #tokens) + 1]
  mode = args[2]
  headers = { ["Content-Type"] = "application/json" }
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  if mode == "orders" then
    asset, quantity = args[3], args[4]
  else
    path = args[3]
  end
  buy = true
  ok = 0
  errors = 0
  codes = ""
end

function request()
  if mode == "orders" then
    local side = buy and "market_buy" or "market_sell"
    local body = '{"order_type":"' .. side .. '","asset_id":"' .. asset .. '","quantity":"' .. quantity .. '"}'
    return wrk.format("POST", "/api/v1/orders", headers, body)
  end
  return wrk.format("GET", path, headers)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    buy = not buy
  else
    errors = errors + 1
    if #codes < 200 then
      codes = codes .. status .. " "
    end
  end
end

function done(summary, latency, requests)
  local ok_total, err_total, codes_all = 0, 0, ""
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    err_total = err_total + thread:get("errors")
    codes_all = codes_all .. thread:get("codes")
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"ok":%d,"errors":%d,"socket_errors":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"codes":"%s"}\n',
    summary.requests, summary.duration, ok_total, err_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    codes_all
  ))
end
