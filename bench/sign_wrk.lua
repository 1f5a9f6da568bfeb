-- wrk script for bench/sign.sh: POST /hpki/sign with the day's token
-- (BENCH_TOKEN) and a random SHA-256-sized digest per request,
-- {"hashes":["<base64 of 32 random bytes>"]}. Each thread makes 4096 such
-- requests in init() and sends them in turn, so that the client's own
-- cost per request is a table lookup (a client computes its hashes
-- anyway; this measures the gateway). Responses that are 200 but do not
-- carry a signature are counted too. done() prints one machine-readable
-- line:
--   RESULT requests duration_us p50_us p99_us non2xx3xx socket_errors no_sig

local token = os.getenv("BENCH_TOKEN") or ""

local b64chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64 = {}
for i = 1, 64 do
    b64[i - 1] = b64chars:sub(i, i)
end

-- base64 of n random bytes (n a multiple of 3 gives no padding; 32 = 30 + 2)
local function random_b64(n)
    local out = {}
    local bytes = {}
    for i = 1, n do
        bytes[i] = math.random(0, 255)
    end
    local i = 1
    while i <= n do
        local a, b, c = bytes[i], bytes[i + 1], bytes[i + 2]
        local v = a * 65536 + (b or 0) * 256 + (c or 0)
        out[#out + 1] = b64[math.floor(v / 262144) % 64]
        out[#out + 1] = b64[math.floor(v / 4096) % 64]
        out[#out + 1] = b and b64[math.floor(v / 64) % 64] or "="
        out[#out + 1] = c and b64[v % 64] or "="
        i = i + 3
    end
    return table.concat(out)
end

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
    table.insert(threads, thread)
end

local requests = {}
local nrequests = 4096
local next_request = 0

function init(args)
    -- each thread its own sequence
    math.randomseed(os.time() * 1000 + (id or 0) * 7919)
    no_sig = 0
    for i = 1, nrequests do
        local body = '{"hashes":["' .. random_b64(32) .. '"]}'
        requests[i] = wrk.format("POST", "/hpki/sign", {
            ["Authorization"] = "Bearer " .. token,
            ["Content-Type"] = "application/json",
        }, body)
    end
end

function request()
    next_request = next_request % nrequests + 1
    return requests[next_request]
end

function response(status, headers, body)
    if status == 200 and not body:find('"signatures":["', 1, true) then
        no_sig = no_sig + 1
    end
end

function done(summary, latency, requests)
    local bad = 0
    for _, t in ipairs(threads) do
        bad = bad + (t:get("no_sig") or 0)
    end
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d %d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout, bad))
end
