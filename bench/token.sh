#!/usr/bin/env bash
# bench/token.sh: the module's token check (hpki_auth on) against no check
# and against the OpenResty-style alternative (access_by_lua + a Redis GET
# per request), in one nginx, in one run. See docs/benchmarks.md,
# "Token check".
#
# Starts, in a private temporary directory and on free loopback ports, a
# redis-server and one nginx (build/ngx_http_hpki_module.so, Debian's
# libnginx-mod-http-lua) serving the same small static file at
#   /plain/f.json    no check
#   /checked/f.json  hpki_auth on (+ hpki_token_cache if nginx -t accepts it)
#   /lua/f.json      access_by_lua_block: bench/token_check.lua
# over plain HTTP (loopback only), mints an RS256 token like a card login's
# and stores its state, checks that /checked and /lua answer 200 with it and
# 401 without it (and with an unknown one), then drives each location with
# wrk in interleaved rounds and prints the medians and the ratios.
#
# Environment:
#   BENCH_DURATION     seconds per measured wrk run (default 3)
#   BENCH_ROUNDS       interleaved rounds (default 8; the median is reported)
#   BENCH_WARMUP       seconds of warm-up per location (default 2)
#   BENCH_CONNECTIONS  wrk -c (default 50)
#   BENCH_THREADS      wrk -t (default 2)
#   BENCH_PIN          1 (default): one nginx worker pinned to CPU 0, wrk
#                      and redis-server pinned to CPU 1, so the load
#                      generator does not take the server's CPU; 0: nothing
#                      pinned, nginx with BENCH_WORKERS workers
#   BENCH_WORKERS      worker_processes when not pinned (default 2 = cores)
#   BENCH_TOKEN_CACHE  the hpki_token_cache line to use (default: the first
#                      of a few forms that nginx -t accepts; "off": none)
#   BENCH_TIMEOUT      seconds after which everything is stopped (default:
#                      the planned run time plus a margin)
#   BENCH_LEAVE=1      keep the temporary directory
#
# Exit status: 0 when the figures were measured (whether or not a target is
# met; this reports, it is not a test), non-zero when something fails to
# start or the pre-check fails.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=${HPKI_MODULE:-$ROOT/build/ngx_http_hpki_module.so}
NGINX=${HPKI_NGINX:-nginx}
REDIS_SERVER=${HPKI_REDIS_SERVER:-redis-server}
LUA_MODULES=/usr/lib/nginx/modules

DURATION=${BENCH_DURATION:-3}
ROUNDS=${BENCH_ROUNDS:-8}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
PIN=${BENCH_PIN:-1}
PIN_CLIENT=()           # prefix for wrk and redis-server
AFFINITY=""
if [ "$PIN" = 1 ] && { [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; }
then
    echo "bench/token.sh: fewer than 2 CPUs or no taskset: not pinning" >&2
    PIN=0
fi
if [ "$PIN" = 1 ]; then
    WORKERS=1
    PIN_CLIENT=(taskset -c 1)
    AFFINITY="worker_cpu_affinity 01;"
fi

LOCATIONS=(plain checked lua)

die() { echo "bench/token.sh: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- prerequisites -----------------------------------------------------------

[ -e "$MODULE" ] || die "$MODULE is not built (make)"
for cmd in "$NGINX" "$REDIS_SERVER" redis-cli wrk curl openssl perl; do
    command -v "$cmd" >/dev/null || die "$cmd not found (make deps)"
done
for so in ndk_http_module.so ngx_http_lua_module.so; do
    [ -e "$LUA_MODULES/$so" ] \
        || die "$LUA_MODULES/$so missing (libnginx-mod-http-lua; make deps)"
done
[ -e /usr/share/lua/5.1/nginx/redis.lua ] \
    || die "lua-nginx-redis is not installed (make deps)"

# --- private directory, cleanup, time bound ----------------------------------

D=$(mktemp -d "${TMPDIR:-/tmp}/hpki-bench-token-XXXXXXXX")
chmod 0755 "$D"
NGINX_PID="" REDIS_PID="" WRK_PID="" WATCHDOG_PID=""


cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$WRK_PID"
    stop_pid "$NGINX_PID"
    stop_pid "$REDIS_PID"
    [ -n "$WATCHDOG_PID" ] && kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
    if [ -n "${BENCH_LEAVE:-}" ]; then
        echo "bench/token.sh: left $D" >&2
    else
        rm -rf "$D"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench/token.sh: interrupted" >&2; exit 130' INT
trap 'echo "bench/token.sh: stopped (time bound or SIGTERM)" >&2; exit 143' TERM

# everything stops itself: the whole run is bounded
BUDGET=${BENCH_TIMEOUT:-$(( ROUNDS * 3 * (DURATION + 10) + 3 * (WARMUP + 10) + 90 ))}
watchdog "$BUDGET"

read -r HTTP_PORT REDIS_PORT < <(free_ports 2)

# a private copy of the module: a rebuild (cp over build/...so) while nginx
# runs would change the mapped code under it
cp "$MODULE" "$D/ngx_http_hpki_module.so"


# --- Redis --------------------------------------------------------------------

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

"${PIN_CLIENT[@]}" "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --daemonize no --dir "$D" --logfile "$D/redis.log" --save '' \
    --appendonly no >/dev/null 2>&1 &
REDIS_PID=$!
wait_until 10 "$REDIS_PID" "$D/redis.log" sh -c \
    "[ \"\$(redis-cli -h 127.0.0.1 -p $REDIS_PORT PING)\" = PONG ]"

# --- a token like a card login's ----------------------------------------------

ISSUER="http://127.0.0.1:$HTTP_PORT"
KID=bench-1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$D/token.key" 2>/dev/null || die "openssl genpkey failed"
chmod 0600 "$D/token.key"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

mint() {                # mint JTI: an RS256 token signed with the gateway key
    local jti=$1 now input sig
    now=$(date +%s)
    input="$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "$KID" | b64url)"
    input="$input.$(printf '{"amr":["hpki_card"],"aud":"hpki","cnf":{"x5t#S256":"%s"},"exp":%d,"hpki_role":"Medical Doctor","iat":%d,"iss":"%s","jti":"%s","nbf":%d,"scope":"openid sign","sub":"bench-doctor"}' \
        "$(openssl rand 32 | b64url)" $(( now + 18 * 3600 )) "$now" \
        "$ISSUER" "$jti" "$now" | b64url)"
    sig=$(printf '%s' "$input" \
        | openssl dgst -sha256 -sign "$D/token.key" -binary | b64url)
    printf '%s.%s' "$input" "$sig"
}

JTI=$(openssl rand 18 | b64url)
TOKEN=$(mint "$JTI")
UNKNOWN=$(mint "$(openssl rand 18 | b64url)")     # never stored in Redis
JTI2=$(openssl rand 18 | b64url)
TOKEN2=$(mint "$JTI2")
TAMPERED="${TOKEN2%.*}.${TOKEN##*.}"
for j in "$JTI" "$JTI2"; do
    [ "$(rcli SET "hpki:tok:$j" bench-doctor EX $(( 18 * 3600 )))" = OK ] \
        || die "cannot store the token state in Redis"
done

# --- nginx --------------------------------------------------------------------

for loc in "${LOCATIONS[@]}"; do
    mkdir -p "$D/www/$loc"
    # a small static JSON file, the same in every location
    printf '{"status":"ok","service":"hpki-gateway","note":"%s"}\n' \
        "a small static file served by nginx for the token check benchmark" \
        > "$D/www/$loc/f.json"
done
mkdir -p "$D/logs"

write_conf() {          # write_conf "CACHE HTTP-LEVEL LINE"
    cat > "$D/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
$AFFINITY
pid $D/nginx.pid;
error_log $D/error.log warn;
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
load_module $LUA_MODULES/ndk_http_module.so;
load_module $LUA_MODULES/ngx_http_lua_module.so;
load_module $D/ngx_http_hpki_module.so;

events {
    worker_connections 1024;
}

http {
    access_log off;
    keepalive_requests 100000;
    default_type application/json;
    client_body_temp_path $D/client_body_temp;
    proxy_temp_path $D/proxy_temp;
    fastcgi_temp_path $D/fastcgi_temp;
    uwsgi_temp_path $D/uwsgi_temp;
    scgi_temp_path $D/scgi_temp;

    # the module: Redis holds the token state
    hpki_redis           127.0.0.1:$REDIS_PORT;
    hpki_redis_timeout   1s;
    hpki_token_key       $D/token.key kid=$KID;
    hpki_token_issuer    $ISSUER;
    hpki_token_audience  hpki;
    $1

    # the Lua alternative
    lua_package_path "$ROOT/bench/?.lua;/usr/share/lua/5.1/?.lua;;";
    init_by_lua_block {
        require("token_check").configure{
            redis_host = "127.0.0.1", redis_port = $REDIS_PORT,
            issuer = "$ISSUER", audience = "hpki",
        }
    }

    server {
        listen 127.0.0.1:$HTTP_PORT;
        server_name localhost;
        root $D/www;

        location /plain/ {
        }

        location /checked/ {
            hpki_auth on;
        }

        location /lua/ {
            access_by_lua_block {
                require("token_check").check()
            }
        }
    }
}
EOF
}


# the shared-memory token cache, when this build of the module has it
CACHE_LINE=""
if [ "${BENCH_TOKEN_CACHE:-}" = off ]; then
    CACHE_NOTE="off (BENCH_TOKEN_CACHE=off)"
elif [ -n "${BENCH_TOKEN_CACHE:-}" ]; then
    CACHE_LINE="$BENCH_TOKEN_CACHE"
    CACHE_LINE="${CACHE_LINE%;};"
    write_conf "$CACHE_LINE"
    nginx_t || { cat "$D/nginx-t.out" >&2; die "nginx -t refuses '$CACHE_LINE'"; }
    CACHE_NOTE="on: $CACHE_LINE (BENCH_TOKEN_CACHE)"
else
    CACHE_NOTE="not available in this build (nginx -t refuses hpki_token_cache)"
    # docs/module.md: hpki_token_cache SIZE [valid=TIME]; the defaults
    for cand in "hpki_token_cache 10m;" \
                "hpki_token_cache zone=hpki_tokens:10m;"; do
        write_conf "$cand"
        if nginx_t; then
            CACHE_LINE=$cand
            CACHE_NOTE="on: $cand"
            break
        fi
    done
fi
write_conf "$CACHE_LINE"
nginx_t || { cat "$D/nginx-t.out" >&2; die "nginx -t failed"; }

"$NGINX" -p "$D/" -c "$D/nginx.conf" -e "$D/error.log" \
    >"$D/nginx.stderr" 2>&1 &
NGINX_PID=$!
wait_until 10 "$NGINX_PID" "$D/error.log" \
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/plain/f.json"

# --- the check is real: 200 with the token, 401 without ------------------------

status() {              # status PATH [TOKEN]
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        ${2:+-H "Authorization: Bearer $2"} "http://127.0.0.1:$HTTP_PORT$1"
}
expect() {              # expect CODE PATH [TOKEN] -- what
    local want=$1 got
    got=$(status "$2" "${3:-}")
    if [ "$got" != "$want" ]; then
        echo "--- $D/error.log" >&2; tail -20 "$D/error.log" >&2 || true
        die "pre-check: $2 ${4:-}: expected $want, got $got"
    fi
    printf '  %-16s %-22s %s\n' "$2" "${4:-}" "$got"
}

echo "pre-check (plain HTTP on 127.0.0.1:$HTTP_PORT):"
expect 200 /plain/f.json   "$TOKEN"   "with the token"
expect 200 /plain/f.json   ""         "without a token"
for loc in checked lua; do
    expect 200 "/$loc/f.json" "$TOKEN"   "with the token"
    expect 401 "/$loc/f.json" ""         "without a token"
    expect 401 "/$loc/f.json" "$UNKNOWN" "unknown to Redis"
done
# the signature matters to the module, not to the Lua check (it does not
# verify signatures): claims of a token whose state is in Redis, signature of
# another token
expect 401 /checked/f.json "$TAMPERED" "bad signature"
expect 200 /lua/f.json     "$TAMPERED" "bad signature"

# --- measure -------------------------------------------------------------------

# wrk in the background of this shell (never in a subshell), so that ^C and
# the time bound stop it at once and a failure stops the script
RESULT=()
run_wrk() {             # run_wrk LOCATION SECONDS: sets RESULT
    local out="$D/wrk.out" rc=0
    BENCH_TOKEN=$TOKEN timeout -s INT $(( $2 + 15 )) \
        "${PIN_CLIENT[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${2}s" \
            -s "$ROOT/bench/token_wrk.lua" \
            "http://127.0.0.1:$HTTP_PORT/$1/f.json" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "wrk failed on /$1 (status $rc)"; }
    read -r -a RESULT < <(grep '^RESULT ' "$out") || true
    if [ "${#RESULT[@]}" -ne 7 ] || [ "${RESULT[1]}" -eq 0 ]; then
        cat "$out" >&2
        die "no requests measured on /$1"
    fi
}

hits() { rcli INFO stats | tr -d '\r' | awk -F: '$1=="keyspace_hits"{print $2}'; }

echo
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), worker_processes $WORKERS;" \
     "$(nproc) cores; wrk -t$THREADS -c$CONNS -d${DURATION}s," \
     "$ROUNDS interleaved rounds after ${WARMUP}s of warm-up each"
if [ "$PIN" = 1 ]; then
    echo "pinned: the nginx worker on CPU 0, wrk and redis-server on CPU 1"
else
    echo "not pinned: nginx, wrk and redis-server share the cores"
fi
echo "hpki_token_cache: $CACHE_NOTE"
echo

for loc in "${LOCATIONS[@]}"; do
    run_wrk "$loc" "$WARMUP"
done

declare -A RPS P50 P99 BAD GETS
for r in $(seq "$ROUNDS"); do
    # rotate the order each round, so no location always runs first
    order=("${LOCATIONS[@]:$(( (r - 1) % 3 ))}" "${LOCATIONS[@]:0:$(( (r - 1) % 3 ))}")
    for loc in "${order[@]}"; do
        h0=$(hits)
        run_wrk "$loc" "$DURATION"
        read -r _ n us p50 p99 st se <<<"${RESULT[*]}"
        h1=$(hits)
        RPS[$loc]+="$(awk -v n="$n" -v us="$us" 'BEGIN{printf "%.0f", n/(us/1e6)}') "
        P50[$loc]+="$p50 "
        P99[$loc]+="$p99 "
        BAD[$loc]=$(( ${BAD[$loc]:-0} + st + se ))
        GETS[$loc]+="$(awk -v g=$(( h1 - h0 )) -v n="$n" 'BEGIN{printf "%.3f", n ? g/n : 0}') "
        printf '  round %d  %-8s %9s req/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx/errors %d\n' \
            "$r" "/$loc" "$(echo "${RPS[$loc]}" | awk '{print $NF}')" \
            "$(awk -v x="$p50" 'BEGIN{print x/1000}')" \
            "$(awk -v x="$p99" 'BEGIN{print x/1000}')" $(( st + se ))
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo
printf '%-26s %10s %10s %10s %14s %s\n' location "req/s" "p50 ms" "p99 ms" \
    "Redis hits/req" ""
declare -A M
for loc in "${LOCATIONS[@]}"; do
    M[$loc]=$(echo "${RPS[$loc]}" | median)
    case $loc in
        plain)   what="/plain (no check)" ;;
        checked) what="/checked (hpki_auth on)" ;;
        lua)     what="/lua (access_by_lua)" ;;
    esac
    note=""
    [ "${BAD[$loc]}" -eq 0 ] || note="  INVALID: ${BAD[$loc]} non-2xx or socket errors"
    printf '%-26s %10.0f %10.2f %10.2f %14.3f%s\n' "$what" "${M[$loc]}" \
        "$(echo "${P50[$loc]}" | median | awk '{print $1/1000}')" \
        "$(echo "${P99[$loc]}" | median | awk '{print $1/1000}')" \
        "$(echo "${GETS[$loc]}" | median)" "$note"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN{print (r >= t) ? "met" : "NOT met"}'; }
r1=$(ratio "${M[checked]}" "${M[plain]}")
r2=$(ratio "${M[checked]}" "${M[lua]}")
# the same ratios within each round (runs close in time), as a cross-check
read -r -a rp <<<"${RPS[plain]}"; read -r -a rc <<<"${RPS[checked]}"
read -r -a rl <<<"${RPS[lua]}"
q1="" q2=""
for i in "${!rp[@]}"; do
    q1+="$(ratio "${rc[$i]}" "${rp[$i]}") "
    q2+="$(ratio "${rc[$i]}" "${rl[$i]}") "
done
echo
echo "checked / unchecked: $r1  (target >= 0.8: $(verdict "$r1" 0.8))" \
     " per round: ${q1}median $(echo "$q1" | median)"
echo "checked / lua:       $r2  (target >= 2:   $(verdict "$r2" 2))" \
     " per round: ${q2}median $(echo "$q2" | median)"
echo "(medians of $ROUNDS rounds)"
exit 0
