-- The OpenResty-style token check that bench/token.sh compares the module
-- with: what a user would write with Debian's libnginx-mod-http-lua and
-- lua-nginx-redis (lua-resty-redis 0.27, installed as "nginx.redis").
--
--   init_by_lua_block   { require("token_check").configure{ redis_port = N, ... } }
--   access_by_lua_block { require("token_check").check() }
--
-- Per request: parse the Bearer token, decode its claims (lua-cjson), check
-- exp/nbf/iss/aud, then GET hpki:tok:<jti> from Redis over a pooled
-- connection (cosocket keepalive pool, 1 s timeout) and refuse unless it
-- names the token's subject. It does NOT verify the JWT signature, so it
-- does strictly less work than the module's hpki_auth (and is not secure).

local redis = require "nginx.redis"
local cjson = require "cjson.safe"

local ngx = ngx
local decode_base64 = ngx.decode_base64
local ngx_time = ngx.time
local null = ngx.null
local type = type

local M = {}

local cfg = {
    redis_host = "127.0.0.1",
    redis_port = 6379,
    timeout_ms = 1000,          -- connect, send and read
    pool_size = 128,            -- idle connections kept per worker
    pool_idle_ms = 60000,
    issuer = nil,
    audience = "hpki",
    leeway = 60,
}

function M.configure(opts)
    for k, v in pairs(opts) do cfg[k] = v end
end

local B64URL = { ["-"] = "+", ["_"] = "/" }

local function b64url_decode(s)
    s = s:gsub("[-_]", B64URL)
    local pad = #s % 4
    if pad > 0 then s = s .. ("="):rep(4 - pad) end
    return decode_base64(s)
end

local function refuse(why)
    ngx.header["WWW-Authenticate"] =
        'Bearer realm="hpki", error="invalid_token", error_description="'
        .. why .. '"'
    return ngx.exit(ngx.HTTP_UNAUTHORIZED)
end

function M.check()
    local auth = ngx.var.http_authorization
    if not auth then
        ngx.header["WWW-Authenticate"] = 'Bearer realm="hpki"'
        return ngx.exit(ngx.HTTP_UNAUTHORIZED)
    end

    local payload = auth:match("^Bearer [%w_-]+%.([%w_-]+)%.[%w_-]+$")
    if not payload or #auth > 8192 then
        return refuse("malformed token")
    end

    local claims = cjson.decode(b64url_decode(payload) or "")
    if type(claims) ~= "table" or type(claims.jti) ~= "string"
        or type(claims.sub) ~= "string" or type(claims.exp) ~= "number"
    then
        return refuse("malformed claims")
    end

    local now = ngx_time()
    if claims.exp + cfg.leeway < now
        or (type(claims.nbf) == "number" and claims.nbf - cfg.leeway > now)
    then
        return refuse("expired or not yet valid")
    end
    if claims.iss ~= cfg.issuer or claims.aud ~= cfg.audience then
        return refuse("wrong issuer or audience")
    end

    local red = redis:new()
    red:set_timeout(cfg.timeout_ms)
    local ok, err = red:connect(cfg.redis_host, cfg.redis_port)
    if not ok then
        ngx.log(ngx.ERR, "token check: redis connect: ", err)
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
    end

    local state
    state, err = red:get("hpki:tok:" .. claims.jti)
    if err then
        ngx.log(ngx.ERR, "token check: redis GET: ", err)
        red:close()
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
    end
    red:set_keepalive(cfg.pool_idle_ms, cfg.pool_size)

    if state == null or state ~= claims.sub then
        return refuse("revoked or unknown")
    end
end

return M
