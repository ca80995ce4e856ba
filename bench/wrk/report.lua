-- Shared by the wrk scripts beside it: per-status counts, and one "BENCH_JSON {...}" line at the
-- end with throughput, latency percentiles (microseconds), socket errors and the status counts.
-- A script loads it with dofile() and may define prepare() to run in each thread's init.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  customers = tonumber(args[1]) or 1000
  codes = {}
  math.randomseed(os.time() * 1000 + (id or 0))
  if prepare then
    prepare()
  end
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("codes") or {}) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%.0f,"p50_us":%.0f,"p90_us":%.0f,'
      .. '"p99_us":%.0f,"max_us":%.0f,"socket_errors":%d,"timeouts":%d,"status":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write, e.timeout,
    table.concat(parts, ",")))
end
