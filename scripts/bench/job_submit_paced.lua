-- wrk script: job submissions at a fixed total rate (Debian has wrk but not wrk2). Each
-- connection waits connections/rate seconds before each request, so `wrk -cN` with
-- ATRIUM_BENCH_RATE_CONNECTIONS=N offers about ATRIUM_BENCH_RATE requests/s in all (less
-- when the server answers slower than that pace). Program, grant and token as in
-- job_submit.lua.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ATRIUM_BENCH_TOKEN")
wrk.body = string.format(
  '{"program":"%s","grant":"%s","chips":1,"walltime_s":60,"argv":["bench"]}',
  os.getenv("ATRIUM_BENCH_PROGRAM"), os.getenv("ATRIUM_BENCH_GRANT"))

local rate = tonumber(os.getenv("ATRIUM_BENCH_RATE") or "2000")
local connections = tonumber(os.getenv("ATRIUM_BENCH_RATE_CONNECTIONS") or "40")

function delay()
  return math.floor(1000 * connections / rate)
end
