-- wrk script: POST a job submission charged to the benchmark's grant. The program id,
-- grant and token come from the environment (bench-service.sh sets them).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ATRIUM_BENCH_TOKEN")
wrk.body = string.format(
  '{"program":"%s","grant":"%s","chips":1,"walltime_s":60,"argv":["bench"]}',
  os.getenv("ATRIUM_BENCH_PROGRAM"), os.getenv("ATRIUM_BENCH_GRANT"))
