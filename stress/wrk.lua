-- wrk script for stress/stress.pl and soak.pl: raw throughput on the token
-- check (GET /whoami with the good token, STRESS_TOKEN) beside the checking
-- load generator. wrk cannot check signatures, so it only counts statuses:
-- done() prints one line
--   WRK requests=N duration_us=N p50_us=N p99_us=N errors=connect/read/write/timeout status:200=N status:503=N ...
-- STRESS_WRK_DELAY_MS paces each connection (default 2 ms between requests)
-- so that wrk does not take both cores from the rest of the stack.

local token = os.getenv("STRESS_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
local pause = tonumber(os.getenv("STRESS_WRK_DELAY_MS") or "2")

local threads = {}

setup = function(thread)
    table.insert(threads, thread)
end

init = function(args)
    statuses = {}
end

delay = function()
    return pause
end

response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        local s = t:get("statuses")
        for k, v in pairs(s) do
            all[k] = (all[k] or 0) + v
        end
    end
    local e = summary.errors
    local line = string.format(
        "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d/%d/%d/%d",
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(99), e.connect, e.read, e.write, e.timeout)
    local keys = {}
    for k in pairs(all) do table.insert(keys, k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
        line = line .. string.format(" status:%d=%d", k, all[k])
    end
    io.write(line .. "\n")
end
