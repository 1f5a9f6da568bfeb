-- wrk script for bench/token.sh: every request carries the same
-- Authorization header (BENCH_TOKEN), and done() prints one machine-readable
-- line: RESULT requests duration_us p50_us p99_us non2xx3xx socket_errors
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout))
end
