#!/usr/bin/env bash
# bench/sign.sh: the signing path, POST /hpki/sign through nginx, against
# hpki-signd's own in-process ceiling measured in the same run (issue 5).
# See docs/benchmarks.md, "Signing through nginx".
#
# Starts, in a private temporary directory and on free loopback ports:
#   redis-server   with the ACL users of the test harness (share-a, share-b)
#   hpki-signd     the harness's configuration (t/lib/Hpki/Test.pm,
#                  write_signd_conf) with `workers 0` (one per CPU in each
#                  share pool: 2 + 2 on a 2-core machine) and log_level warn
#   nginx          the module over *plain HTTP* on 127.0.0.1 (so TLS does
#                  not dominate), POST /hpki/sign with hpki_auth on and
#                  hpki_sign_pass to an upstream with keepalive
# enrolls a doctor as the harness's enroll does (hpki-admin user add with the
# demo doctor's card certificate, key generate --bits 2048 --csr-out, a
# second certificate from scripts/pki.sh sign-csr, cert install), mints a
# token like a card login's with the gateway key and stores its state in
# Redis, and checks that one POST /hpki/sign returns a signature that
# `openssl pkeyutl -verify` accepts with the second certificate (and 401
# without the token). Then, for each concurrency (1, 4, 16):
#   nginx    wrk (bench/sign_wrk.lua: a random digest per request) for
#            BENCH_WARMUP s, then BENCH_ROUNDS rounds of: BENCH_DURATION s
#            measured, then the ceiling alone (hpki-signd-bench -C): the
#            two partial exponentiations of a fresh RSA-2048 split key,
#            in-process, on every core at once, BENCH_CEILING_SECONDS s
#   direct   build/hpki-signd-bench on hpki-signd's socket, same concurrency,
#            BENCH_DURATION s, and its own ceiling (also sequential, one core)
# and prints a table: signatures/s and p50/p99 through nginx (medians of
# the rounds), the ratio nginx/ceiling (the median of the rounds' ratios,
# each round against the ceiling measured right after it: target >= 0.85),
# the same against the highest ceiling of the whole run (stricter), and
# the direct-socket figures.
#
# Environment:
#   BENCH_DURATION      seconds per measured run (default 10)
#   BENCH_ROUNDS        rounds per concurrency (default 5), each a wrk run
#                       followed by the ceiling alone (hpki-signd-bench -C)
#   BENCH_CEILING_SECONDS  seconds of each such ceiling (default 3)
#   BENCH_WARMUP        seconds of wrk warm-up before each nginx run (default 2)
#   BENCH_CONCURRENCY   the concurrencies (default "1 4 16")
#   BENCH_THREADS       wrk -t at most (default 2; never more than -c)
#   BENCH_WORKERS       nginx worker_processes (default 1)
#   BENCH_SIGND_WORKERS hpki-signd `workers` (default 0 = one per CPU per pool)
#   BENCH_SIGND_AFFINITY hpki-signd `worker_cpu_affinity` (default auto: each
#                       share worker on one CPU, see docs/sidecar.md; off)
#   BENCH_KEEPALIVE     upstream keepalive connections per nginx worker
#                       (default 16, the highest concurrency; conf/hpki.conf
#                       ships 8)
#   BENCH_PIN           0 (default): nothing pinned; the share workers need
#                       every core, so is the ceiling ("on all cores").
#                       1: wrk and redis-server pinned to the last CPU,
#                       nginx's worker(s) to CPU 0 (hpki-signd unpinned)
#   BENCH_TOKEN_CACHE   the hpki_token_cache line (default: "hpki_token_cache
#                       10m;" when nginx -t accepts it; "off": none)
#   BENCH_TIMEOUT       seconds after which everything is stopped (default:
#                       the planned run time plus a margin)
#   BENCH_LEAVE=1       keep the temporary directory
#
# Exit status: 0 when the figures were measured, whether or not the target
# is met (this reports, it is not a test); non-zero when something fails to
# start or the pre-check fails.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HPKI_BUILD:-$ROOT/build}
MODULE=${HPKI_MODULE:-$BUILD/ngx_http_hpki_module.so}
NGINX=${HPKI_NGINX:-nginx}
REDIS_SERVER=${HPKI_REDIS_SERVER:-redis-server}

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CEIL_SECONDS=${BENCH_CEILING_SECONDS:-3}
WARMUP=${BENCH_WARMUP:-2}
read -r -a CONCS <<<"${BENCH_CONCURRENCY:-1 4 16}"
MAX_THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-1}
SIGND_WORKERS=${BENCH_SIGND_WORKERS:-0}
SIGND_AFFINITY=${BENCH_SIGND_AFFINITY:-auto}
KEEPALIVE=${BENCH_KEEPALIVE:-16}
PIN=${BENCH_PIN:-0}
TARGET=0.85
USER_ID=bench-doctor
NCPU=$(nproc)

PIN_CLIENT=()           # prefix for wrk and redis-server
AFFINITY=""
if [ "$PIN" = 1 ] && { [ "$NCPU" -lt 2 ] || ! command -v taskset >/dev/null; }
then
    echo "bench/sign.sh: fewer than 2 CPUs or no taskset: not pinning" >&2
    PIN=0
fi
if [ "$PIN" = 1 ]; then
    PIN_CLIENT=(taskset -c $(( NCPU - 1 )))
    AFFINITY="worker_cpu_affinity $(printf '1%.0s ' $(seq "$WORKERS") | sed 's/ $//');"
fi

die() { echo "bench/sign.sh: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- prerequisites -----------------------------------------------------------

for f in "$MODULE" "$BUILD/hpki-signd" "$BUILD/hpki-admin" \
         "$BUILD/hpki-signd-bench"; do
    [ -e "$f" ] || die "$f is not built (make)"
done
for cmd in "$NGINX" "$REDIS_SERVER" redis-cli wrk curl openssl perl flock; do
    command -v "$cmd" >/dev/null || die "$cmd not found (make deps)"
done
for c in "${CONCS[@]}"; do
    [[ "$c" =~ ^[0-9]+$ ]] && [ "$c" -ge 1 ] && [ "$c" -le 256 ] \
        || die "BENCH_CONCURRENCY: '$c' is not 1 to 256"
done
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] \
    || die "BENCH_ROUNDS: '$ROUNDS' is not 1 to 50"
[[ "$CEIL_SECONDS" =~ ^[0-9]+$ ]] && [ "$CEIL_SECONDS" -ge 1 ] \
    || die "BENCH_CEILING_SECONDS: '$CEIL_SECONDS' is not a positive number"

# --- private directory, cleanup, time bound ----------------------------------

D=$(mktemp -d "${TMPDIR:-/tmp}/hpki-bench-sign-XXXXXXXX")
chmod 0755 "$D"
NGINX_PID="" REDIS_PID="" SIGND_PID="" WRK_PID="" BENCH_PID="" WATCHDOG_PID=""
SIGND_CHILDREN=""


signd_children() {      # the share workers hpki-signd started
    [ -n "$SIGND_PID" ] && kill -0 "$SIGND_PID" 2>/dev/null || return 0
    cat /proc/"$SIGND_PID"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    stop_pid "$WRK_PID"
    stop_pid "$BENCH_PID"
    stop_pid "$NGINX_PID"
    SIGND_CHILDREN="$SIGND_CHILDREN $(signd_children | tr '\n' ' ')"
    stop_pid "$SIGND_PID"
    # the combiner stops its workers; any left over (they were ours) go too
    for pid in $SIGND_CHILDREN; do
        [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = hpki-signd ] \
            && stop_pid "$pid"
    done
    stop_pid "$REDIS_PID"
    [ -n "$WATCHDOG_PID" ] && kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
    if [ -n "${BENCH_LEAVE:-}" ]; then
        echo "bench/sign.sh: left $D" >&2
    else
        rm -rf "$D"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench/sign.sh: interrupted" >&2; exit 130' INT
trap 'echo "bench/sign.sh: stopped (time bound or SIGTERM)" >&2; exit 143' TERM

# everything stops itself: the whole run is bounded (per concurrency: the
# nginx warm-up and run, the direct run, about 6 s of ceiling, margins)
NC=${#CONCS[@]}
BUDGET=${BENCH_TIMEOUT:-$(( NC * (WARMUP + ROUNDS * (DURATION + 2 * CEIL_SECONDS + 8) + DURATION + 6 + 40) + 120 ))}
watchdog "$BUDGET"

read -r HTTP_PORT REDIS_PORT < <(free_ports 2)

# private copies of the binaries: a rebuild (cp over build/...) while they
# run would change the mapped code under them
mkdir -p "$D/bin"
cp "$MODULE" "$D/bin/ngx_http_hpki_module.so"
cp "$BUILD/hpki-signd" "$BUILD/hpki-admin" "$BUILD/hpki-signd-bench" "$D/bin/"
SIGND=$D/bin/hpki-signd
ADMIN=$D/bin/hpki-admin
SBENCH=$D/bin/hpki-signd-bench


secret() {              # secret FILE: stdin to FILE, mode 0600
    (umask 077 && cat > "$1")
    chmod 0600 "$1"
}

# --- demo PKI (the harness's cache, copied: sign-csr writes its CA database) --

PKI_CACHE=${HPKI_TEST_PKI:-$BUILD/t-pki/$(sha1sum "$ROOT/scripts/pki.sh" | cut -c1-12)}
timeout 120 "$ROOT/scripts/pki.sh" "$PKI_CACHE" --jpki >"$D/pki.log" 2>&1 \
    || { cat "$D/pki.log" >&2; die "scripts/pki.sh failed"; }
cp -a "$PKI_CACHE" "$D/pki"
pki() { echo "$D/pki/$(sed -n "s/^$1=//p" "$D/pki/manifest")"; }
DOCTOR_AUTH=$(pki doctor_auth_cert)
SIGN_CHAIN=$(pki sign_chain)
[ -e "$DOCTOR_AUTH" ] && [ -e "$SIGN_CHAIN" ] || die "the demo PKI is incomplete"

# --- Redis, with the harness's ACL users ---------------------------------------

mkdir -p "$D/redis"
openssl rand -hex 24 | tr -d '\n' | secret "$D/redis-share-a.pass"
openssl rand -hex 24 | tr -d '\n' | secret "$D/redis-share-b.pass"
cat > "$D/redis/users.acl" <<EOF
user default on nopass resetkeys ~hpki:tok:* ~hpki:cert:* ~hpki:user:* ~hpki:key:* ~hpki:sad:* ~hpki:rate:* ~hpki:fail:* &* +@all
user share-a on >$(cat "$D/redis-share-a.pass") resetkeys ~hpki:a:* resetchannels -@all +@read +@write +@keyspace +@transaction +@connection -@dangerous
user share-b on >$(cat "$D/redis-share-b.pass") resetkeys ~hpki:b:* resetchannels -@all +@read +@write +@keyspace +@transaction +@connection -@dangerous
EOF
cat > "$D/redis/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $D/redis
logfile $D/redis/redis.log
save ""
appendonly no
aclfile $D/redis/users.acl
EOF

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

"${PIN_CLIENT[@]}" "$REDIS_SERVER" "$D/redis/redis.conf" >/dev/null 2>&1 &
REDIS_PID=$!
wait_until 10 "$REDIS_PID" "$D/redis/redis.log" sh -c \
    "[ \"\$(redis-cli -h 127.0.0.1 -p $REDIS_PORT PING)\" = PONG ]"

# --- hpki-signd: the harness's configuration ------------------------------------

ISSUER="http://127.0.0.1:$HTTP_PORT"
KID=bench-1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null \
    | secret "$D/token.key"
openssl pkey -in "$D/token.key" -pubout -out "$D/token.pub.pem" 2>/dev/null \
    || die "cannot make the gateway token key"
head -c 32 /dev/urandom | secret "$D/kek-a"
head -c 32 /dev/urandom | secret "$D/kek-b"

UIDS=0
[ "$(id -u)" -eq 0 ] || UIDS="0 $(id -u)"
SOCK=$D/signd.sock
cat > "$D/hpki-signd.conf" <<EOF
# written by bench/sign.sh, in the shape of Hpki::Test::write_signd_conf
listen               $SOCK
socket_mode          0660
allow_uid            $UIDS
pid_file             $D/signd.pid
workers              $SIGND_WORKERS
worker_cpu_affinity  $SIGND_AFFINITY
redis                127.0.0.1:$REDIS_PORT
store_a_redis        127.0.0.1:$REDIS_PORT
store_a_user         share-a
store_a_password_file $D/redis-share-a.pass
store_a_kek          $D/kek-a
store_b_redis        127.0.0.1:$REDIS_PORT
store_b_user         share-b
store_b_password_file $D/redis-share-b.pass
store_b_kek          $D/kek-b
token_public_key     $D/token.pub.pem
token_issuer         $ISSUER
token_audience       hpki
audit_log            $D/audit.log
log_level            warn
EOF

signd_ping() {          # one PING/PONG frame round trip on the socket
    perl -MIO::Socket::UNIX -MSocket=SOCK_STREAM -e '
        my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $ARGV[0])
            or exit 1;
        print $s pack("N C C", 2, 1, 0x02);
        my $got = "";
        local $SIG{ALRM} = sub { exit 1 };
        alarm 2;
        while (length $got < 6) {
            sysread($s, $got, 6 - length $got, length $got) or last;
        }
        exit($got eq pack("N C C", 2, 1, 0x82) ? 0 : 1);' "$SOCK"
}

"$SIGND" -c "$D/hpki-signd.conf" >"$D/signd.log" 2>&1 &
SIGND_PID=$!
wait_until 15 "$SIGND_PID" "$D/signd.log" signd_ping
sleep 0.2
SIGND_CHILDREN=$(signd_children | tr '\n' ' ')

# --- enroll the doctor, as Hpki::Test::enroll does -------------------------------

admin() {
    timeout 60 "$ADMIN" -c "$D/hpki-signd.conf" "$@" >>"$D/admin.log" 2>&1 \
        || { tail -20 "$D/admin.log" >&2; die "hpki-admin $* failed"; }
}
admin user add --id "$USER_ID" --cert "$DOCTOR_AUTH"
SUBJECT=$(openssl x509 -in "$DOCTOR_AUTH" -noout -subject -nameopt compat \
          | sed 's/^subject= *//')
admin key generate --user "$USER_ID" --bits 2048 --subject "$SUBJECT" \
    --csr-out "$D/second.csr"
timeout 60 "$ROOT/scripts/pki.sh" "$D/pki" sign-csr "$D/second.csr" \
    "$D/second.pem" "Medical Doctor" >>"$D/pki.log" 2>&1 \
    || { cat "$D/pki.log" >&2; die "scripts/pki.sh sign-csr failed"; }
admin cert install --user "$USER_ID" --cert "$D/second.pem" --chain "$SIGN_CHAIN"
openssl x509 -in "$D/second.pem" -pubkey -noout > "$D/second.pub"
KEY_BITS=$(openssl x509 -in "$D/second.pem" -noout -text \
           | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p')

# --- a token like a card login's ------------------------------------------------

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

mint() {                # mint JTI: an RS256 token signed with the gateway key
    local jti=$1 now input sig x5t
    now=$(date +%s)
    x5t=$(openssl x509 -in "$DOCTOR_AUTH" -outform DER \
          | openssl dgst -sha256 -binary | b64url)
    input="$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "$KID" | b64url)"
    input="$input.$(printf '{"amr":["hpki_card"],"aud":"hpki","cnf":{"x5t#S256":"%s"},"exp":%d,"hpki_role":"Medical Doctor","iat":%d,"iss":"%s","jti":"%s","nbf":%d,"scope":"openid sign","sub":"%s"}' \
        "$x5t" $(( now + 18 * 3600 )) "$now" "$ISSUER" "$jti" "$now" \
        "$USER_ID" | b64url)"
    sig=$(printf '%s' "$input" \
        | openssl dgst -sha256 -sign "$D/token.key" -binary | b64url)
    printf '%s.%s' "$input" "$sig"
}

JTI=$(openssl rand 18 | b64url)
TOKEN=$(mint "$JTI")
[ "$(rcli SET "hpki:tok:$JTI" "$USER_ID" EX $(( 18 * 3600 )))" = OK ] \
    || die "cannot store the token state in Redis"
printf '%s' "$TOKEN" > "$D/bench.tok"

# --- nginx: the module over plain HTTP on loopback --------------------------------

mkdir -p "$D/logs"
write_conf() {          # write_conf "TOKEN CACHE LINE"
    cat > "$D/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
$AFFINITY
pid $D/nginx.pid;
error_log $D/error.log warn;
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
load_module $D/bin/ngx_http_hpki_module.so;

events {
    worker_connections 1024;
}

http {
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path $D/client_body_temp;
    proxy_temp_path $D/proxy_temp;
    fastcgi_temp_path $D/fastcgi_temp;
    uwsgi_temp_path $D/uwsgi_temp;
    scgi_temp_path $D/scgi_temp;

    hpki_redis           127.0.0.1:$REDIS_PORT;
    hpki_redis_timeout   1s;
    hpki_token_key       $D/token.key kid=$KID;
    hpki_token_issuer    $ISSUER;
    hpki_token_audience  hpki;
    $1

    upstream hpki_signd {
        server unix:$SOCK;
        keepalive $KEEPALIVE;
    }

    server {
        listen 127.0.0.1:$HTTP_PORT;
        server_name localhost;

        location = /hpki/sign {
            hpki_auth on;
            hpki_sign_pass hpki_signd;
        }
    }
}
EOF
}


CACHE_LINE=""
if [ "${BENCH_TOKEN_CACHE:-}" = off ]; then
    CACHE_NOTE="off (BENCH_TOKEN_CACHE=off)"
else
    CACHE_LINE=${BENCH_TOKEN_CACHE:-hpki_token_cache 10m;}
    CACHE_LINE="${CACHE_LINE%;};"
    write_conf "$CACHE_LINE"
    if nginx_t; then
        CACHE_NOTE="on: $CACHE_LINE"
    elif [ -n "${BENCH_TOKEN_CACHE:-}" ]; then
        cat "$D/nginx-t.out" >&2; die "nginx -t refuses '$CACHE_LINE'"
    else
        CACHE_LINE=""
        CACHE_NOTE="not available in this build (nginx -t refuses it)"
    fi
fi
write_conf "$CACHE_LINE"
nginx_t || { cat "$D/nginx-t.out" >&2; die "nginx -t failed"; }

"$NGINX" -p "$D/" -c "$D/nginx.conf" -e "$D/error.log" \
    >"$D/nginx.stderr" 2>&1 &
NGINX_PID=$!
wait_until 10 "$NGINX_PID" "$D/error.log" \
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/"

# --- pre-check: one signature through nginx verifies with openssl ---------------

URL="http://127.0.0.1:$HTTP_PORT/hpki/sign"
echo "pre-check (plain HTTP on 127.0.0.1:$HTTP_PORT, RSA-$KEY_BITS key of $USER_ID):"
openssl rand 32 > "$D/check.dgst"
printf '{"hashes":["%s"]}' "$(openssl base64 -A < "$D/check.dgst")" > "$D/check.json"
code=$(curl -s -o "$D/check.out" -w '%{http_code}' --max-time 15 \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "@$D/check.json" "$URL") || code=000
if [ "$code" != 200 ]; then
    echo "--- answer"; cat "$D/check.out" >&2 || true; echo >&2
    echo "--- $D/error.log" >&2; tail -20 "$D/error.log" >&2 || true
    echo "--- $D/signd.log" >&2; tail -20 "$D/signd.log" >&2 || true
    die "pre-check: POST /hpki/sign answered $code"
fi
perl -MJSON::PP -MMIME::Base64 -0777 -e '
    my $j = decode_json(<STDIN>);
    my $s = $j->{signatures} or die "no signatures\n";
    @$s == 1 or die "expected one signature\n";
    open my $f, ">:raw", $ARGV[0] or die "$ARGV[0]: $!\n";
    print $f decode_base64($s->[0]);
    open $f, ">", $ARGV[1] or die "$ARGV[1]: $!\n";
    print $f $j->{certificate} // "";' "$D/check.sig" "$D/check.cert" \
    < "$D/check.out" || die "pre-check: unexpected answer: $(head -c 300 "$D/check.out")"
openssl pkeyutl -verify -pubin -inkey "$D/second.pub" -pkeyopt digest:sha256 \
    -in "$D/check.dgst" -sigfile "$D/check.sig" >"$D/check.verify" 2>&1 \
    && grep -q 'Verified Successfully' "$D/check.verify" \
    || { cat "$D/check.verify" >&2; die "pre-check: the signature does not verify"; }
printf '  %-52s %s\n' "signature over a random digest, openssl pkeyutl -verify" \
    "Verified Successfully ($(( $(stat -c %s "$D/check.sig") * 8 )) bits)"
[ "$(openssl x509 -in "$D/check.cert" -noout -fingerprint -sha256 2>/dev/null)" = \
  "$(openssl x509 -in "$D/second.pem" -noout -fingerprint -sha256)" ] \
    || die "pre-check: the answer does not carry the installed second certificate"
printf '  %-52s %s\n' "certificate in the answer" "the installed second certificate"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 \
    -H 'Content-Type: application/json' --data-binary "@$D/check.json" "$URL") \
    || code=000
[ "$code" = 401 ] || die "pre-check: without the token: expected 401, got $code"
printf '  %-52s %s\n' "without the token" 401

# --- measure ----------------------------------------------------------------------

ticks() {               # ticks PID...: utime + stime of those processes
    local p s=0 f
    for p in "$@"; do
        f=$(cut -d')' -f2- /proc/"$p"/stat 2>/dev/null) || continue
        s=$(( s + $(echo "$f" | awk '{print $12 + $13}') ))
    done
    echo "$s"
}
machine_busy() {        # ticks of all CPUs not idle / iowait
    awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
child_ticks() {         # CPU of this shell's reaped children (wrk, timeout)
    cut -d')' -f2- /proc/$$/stat | awk '{print $14 + $15}'
}

# wrk and hpki-signd-bench in the background of this shell (never in a
# subshell), so that ^C and the time bound stop them at once
RESULT=()
run_wrk() {             # run_wrk CONC SECONDS: sets RESULT
    local c=$1 t=$MAX_THREADS out="$D/wrk.out" rc=0
    [ "$t" -le "$c" ] || t=$c
    BENCH_TOKEN=$TOKEN timeout -s INT $(( $2 + 20 )) \
        "${PIN_CLIENT[@]}" wrk -t "$t" -c "$c" -d "${2}s" --timeout 10s \
            -s "$ROOT/bench/sign_wrk.lua" "$URL" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "wrk failed at -c $c (status $rc)"; }
    read -r -a RESULT < <(grep '^RESULT ' "$out") || true
    if [ "${#RESULT[@]}" -ne 8 ] || [ "${RESULT[1]}" -eq 0 ]; then
        cat "$out" >&2
        die "no requests measured at -c $c"
    fi
}

CEIL_R=""
run_ceiling() {         # the 2-core ceiling alone, CEIL_SECONDS s: sets CEIL_R
    local out="$D/ceiling.out" rc=0
    timeout -s TERM $(( 2 * CEIL_SECONDS + 60 )) \
        "$SBENCH" -C -d "$CEIL_SECONDS" -b "$KEY_BITS" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "hpki-signd-bench -C failed (status $rc)"; }
    CEIL_R=$(sed -n 's/^ceiling:.*, \([0-9.]*\)\/s on [0-9]* cores.*/\1/p' "$out" | head -1)
    [ -n "$CEIL_R" ] || { cat "$out" >&2; die "cannot read hpki-signd-bench -C's output"; }
}

BOUT=""
run_direct() {          # run_direct CONC: hpki-signd-bench, sets BOUT
    local out="$D/direct-$1.out" rc=0
    timeout -s TERM $(( 2 * DURATION + 60 )) \
        "$SBENCH" -s "$SOCK" -u "$USER_ID" -t "$D/bench.tok" -c "$1" \
            -d "$DURATION" -a sha256 -b "$KEY_BITS" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "hpki-signd-bench failed at -c $1 (status $rc)"; }
    BOUT=$out
}

ms() { awk -v x="$1" 'BEGIN{printf "%.2f", x / 1000}'; }

echo
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') (worker_processes $WORKERS," \
     "upstream keepalive $KEEPALIVE), plain HTTP on loopback;" \
     "hpki-signd workers $SIGND_WORKERS per pool, worker_cpu_affinity $SIGND_AFFINITY ($( [ "$SIGND_WORKERS" = 0 ] \
        && echo "$NCPU" || echo "$SIGND_WORKERS") + same), log_level warn"
echo "$NCPU cores; $(openssl version | cut -d' ' -f1-2); RSA-$KEY_BITS," \
     "SHA-256, PKCS#1 v1.5, one digest per request"
echo "per concurrency: wrk ${WARMUP}s warm-up, then $ROUNDS rounds of" \
     "${DURATION}s through nginx + ${CEIL_SECONDS}s of the ceiling alone;" \
     "then hpki-signd-bench ${DURATION}s on the socket + its ceiling"
if [ "$PIN" = 1 ]; then
    echo "pinned: nginx on CPU 0, wrk and redis-server on CPU $(( NCPU - 1 )), hpki-signd not"
else
    echo "not pinned: wrk, nginx, Redis, hpki-signd and its workers share the cores"
fi
echo "hpki_token_cache: $CACHE_NOTE"
echo "load average at start: $(loadavg)"
echo

HZ=$(getconf CLK_TCK)
declare -A NRPS NP50 NP99 NBAD DRPS DP50 DP99 DERR ONE ALL CPUSIG GWCPU SHARE OTHER RCEIL RRATIO
ALLR=""
ratio() {               # ratio A B [DECIMALS, default 2]
    awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN{
        if (a == "" || b == "" || b == 0) print "n/a"
        else printf "%." d "f", a / b }'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1}
    END {if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
         else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for c in "${CONCS[@]}"; do
    run_wrk "$c" "$WARMUP"

    NGINX_PIDS="$NGINX_PID $(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null)"
    SHARE_PIDS=$(signd_children | tr '\n' ' ')
    SIGND_CHILDREN="$SIGND_CHILDREN $SHARE_PIDS"

    # ROUNDS rounds of (wrk, then the ceiling alone): the machine's speed
    # drifts over minutes, so each round's figure is set against the
    # ceiling measured right after it; the medians are reported
    rps="" p50s="" p99s="" ceils="" ratios="" bad=0
    for round in $(seq "$ROUNDS"); do
        if [ "$round" = 1 ]; then
            m0=$(machine_busy); t0=$EPOCHREALTIME
            n0=$(ticks $NGINX_PIDS); c0=$(ticks "$SIGND_PID"); s0=$(ticks $SHARE_PIDS); r0=$(ticks "$REDIS_PID")
            w0=$(child_ticks)
        fi
        run_wrk "$c" "$DURATION"
        if [ "$round" = 1 ]; then
            w1=$(child_ticks)
            n1=$(ticks $NGINX_PIDS); c1=$(ticks "$SIGND_PID"); s1=$(ticks $SHARE_PIDS); r1=$(ticks "$REDIS_PID")
            m1=$(machine_busy); t1=$EPOCHREALTIME
            read -r _ n us p50 p99 st se nosig <<<"${RESULT[*]}"
        fi
        read -r _ rn rus rp50 rp99 rst rse rnosig <<<"${RESULT[*]}"
        r_rps=$(awk -v n="$rn" -v us="$rus" 'BEGIN{printf "%.1f", n / (us / 1e6)}')
        run_ceiling
        rps="$rps $r_rps" p50s="$p50s $rp50" p99s="$p99s $rp99"
        ceils="$ceils $CEIL_R"
        ratios="$ratios $(ratio "$r_rps" "$CEIL_R" 3)"
        bad=$(( bad + rst + rse + rnosig ))
        printf '  -c %-3d round %d: nginx %8s sig/s, ceiling %8s sig/s, ratio %s\n' \
            "$c" "$round" "$r_rps" "$CEIL_R" "$(ratio "$r_rps" "$CEIL_R" 3)"
    done
    NRPS[$c]=$(echo "$rps" | median)
    NP50[$c]=$(ms "$(echo "$p50s" | median)"); NP99[$c]=$(ms "$(echo "$p99s" | median)")
    RCEIL[$c]=$(echo "$ceils" | median)
    RRATIO[$c]=$(echo "$ratios" | median)
    ALLR="$ALLR $ceils"
    NBAD[$c]=$bad
    # CPU ms per signature: nginx, hpki-signd (combiner + workers), Redis,
    # and everything else on the machine (wrk, other people's jobs)
    # and the share workers' part of it (their two partial modexps)
    read -r CPUSIG[$c] GWCPU[$c] SHARE[$c] <<<"$(awk -v n="$n" -v hz="$HZ" \
        -v a=$(( n1 - n0 )) -v cb=$(( c1 - c0 )) -v b=$(( s1 - s0 )) \
        -v r=$(( r1 - r0 )) -v w=$(( w1 - w0 )) 'BEGIN{
        k = 1000 / hz / n; t = a + cb + b + r + w
        printf "nginx=%.2f,combiner=%.2f,share-workers=%.2f,redis=%.2f,wrk=%.2f %.3f %.2f\n",
            a * k, cb * k, b * k, r * k, w * k, t * k, t ? b / t : 0 }')"
    # how much of the machine other processes (other people's jobs) took
    OTHER[$c]=$(awk -v hz="$HZ" -v us="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print (b - a) * 1e6}')" -v ncpu="$NCPU" \
        -v o=$(( m1 - m0 - (n1 - n0) - (c1 - c0) - (s1 - s0) - (r1 - r0) - (w1 - w0) )) \
        'BEGIN{o = o < 0 ? 0 : o; printf "%.0f", 100 * o / (us / 1e6 * hz * ncpu)}')
    printf '  -c %-3d nginx   %8s sig/s  p50 %7s ms  p99 %7s ms  errors %d  (medians of %d rounds; load %s)\n' \
        "$c" "${NRPS[$c]}" "${NP50[$c]}" "${NP99[$c]}" "${NBAD[$c]}" "$ROUNDS" "$(loadavg)"
    printf '         CPU ms per signature: %s, total %s ms\n' \
        "$(echo "${CPUSIG[$c]}" | sed 's/=/ /g; s/,/, /g')" "${GWCPU[$c]}"
    printf '         other processes (not this bench) took %s%% of the %d cores meanwhile\n' \
        "${OTHER[$c]}" "$NCPU"

    run_direct "$c"
    DRPS[$c]=$(sed -n 's/^ *\([0-9.]*\) signatures\/s.*/\1/p' "$BOUT" | head -1)
    DP50[$c]=$(sed -n 's/.*latency p50 \([0-9.]*\) ms.*/\1/p' "$BOUT" | head -1)
    DP99[$c]=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$BOUT" | head -1)
    DERR[$c]=$(sed -n 's/.* \([0-9]*\) errors$/\1/p' "$BOUT" | head -1)
    ONE[$c]=$(sed -n 's/^ceiling:.*(\([0-9.]*\)\/s on one core).*/\1/p' "$BOUT" | head -1)
    ALL[$c]=$(sed -n 's/^ceiling:.*, \([0-9.]*\)\/s on [0-9]* cores.*/\1/p' "$BOUT" | head -1)
    if [ -z "${DRPS[$c]}" ] || [ -z "${ALL[$c]}" ]; then
        echo "bench/sign.sh: cannot read hpki-signd-bench's output (changed?):" >&2
        cat "$BOUT" >&2
    fi
    printf '         direct  %8s sig/s  p50 %7s ms  p99 %7s ms  errors %s\n' \
        "${DRPS[$c]:-n/a}" "${DP50[$c]:-n/a}" "${DP99[$c]:-n/a}" "${DERR[$c]:-n/a}"
    printf '         ceiling %8s sig/s on %d cores, %s sig/s sequential on one core\n' \
        "${ALL[$c]:-n/a}" "$NCPU" "${ONE[$c]:-n/a}"
done

# the strict ceiling: the highest of all its measurements (other load on
# the machine can only lower it, so the highest is the least disturbed)
maxof() { tr ' ' '\n' | grep . | sort -n | tail -1; }
CEIL=$( (for c in "${CONCS[@]}"; do echo "${ALL[$c]:-}"; done; echo "$ALLR") | tr '\n' ' ' | maxof)
CEIL1=$(for c in "${CONCS[@]}"; do echo "${ONE[$c]:-}"; done | tr '\n' ' ' | maxof)

echo
echo "ceiling (hpki-signd-bench, in-process, two partial modexps per signature):" \
     "per round, measured right after it (column 'ceiling', the median);" \
     "highest of the whole run ${CEIL:-n/a} sig/s on $NCPU cores;" \
     "${CEIL1:-n/a} sig/s sequential on one core"
if [ -n "$CEIL" ] && [ -n "$CEIL1" ] && awk -v a="$CEIL" -v b="$CEIL1" -v n="$NCPU" \
       'BEGIN{exit !(a < 0.8 * n * b)}'; then
    echo "WARNING: the $NCPU-core ceiling is under 0.8 x $NCPU x the one-core" \
         "figure: other processes were using the cores, the ceiling and the" \
         "ratios below are not reliable"
fi
busy=$(for c in "${CONCS[@]}"; do echo "${OTHER[$c]:-0}"; done | sort -n | tail -1)
if [ "${busy:-0}" -gt 10 ]; then
    echo "WARNING: other processes took up to ${busy}% of the $NCPU cores during" \
         "the nginx runs: the machine was not quiet, the figures are disturbed"
fi
echo
printf '%5s %12s %9s %9s %10s %8s %8s %8s %12s %9s %9s %9s\n' conc "nginx sig/s" \
    "p50 ms" "p99 ms" "ceiling" "/ceil" "/max" "/1-core" "direct sig/s" "p50 ms" "nginx/dir" "modexp CPU"
met=yes
for c in "${CONCS[@]}"; do
    r=${RRATIO[$c]:-n/a}
    note=""
    [ "${NBAD[$c]}" -eq 0 ] || note="  INVALID: ${NBAD[$c]} errors or answers without a signature"
    awk -v r="$r" -v t="$TARGET" 'BEGIN{exit !(r != "n/a" && r >= t)}' || met=no
    printf '%5d %12s %9s %9s %10s %8s %8s %8s %12s %9s %9s %9s%s\n' "$c" "${NRPS[$c]}" \
        "${NP50[$c]}" "${NP99[$c]}" "${RCEIL[$c]:-n/a}" "$r" \
        "$(ratio "${NRPS[$c]}" "$CEIL")" \
        "$(ratio "${NRPS[$c]}" "$CEIL1")" "${DRPS[$c]:-n/a}" "${DP50[$c]:-n/a}" \
        "$(ratio "${NRPS[$c]}" "${DRPS[$c]:-}")" "${SHARE[$c]}" "$note"
done
echo "columns: /ceil = the median of the rounds' nginx / ceiling on $NCPU cores" \
     "(the target's ratio); /max = nginx / the highest ceiling of the run;" \
     "/1-core = nginx / the one-core sequential ceiling; modexp CPU = the share" \
     "workers' CPU / all the CPU this bench's processes spent (nginx, combiner," \
     "share workers, redis, wrk), about the most of the ceiling a machine with" \
     "no other load could reach once its cores are saturated"
echo
best=$(for c in "${CONCS[@]}"; do echo "${RRATIO[$c]:-}"; done | sort -n | tail -1)
worst=$(for c in "${CONCS[@]}"; do echo "${RRATIO[$c]:-}"; done | sort -n | head -1)
echo "target: nginx >= $TARGET x the ceiling on $NCPU cores: ratios $worst to $best;" \
     "$( [ "$met" = yes ] && echo "met at every concurrency" \
         || echo "NOT met at every concurrency")"
echo "load average at end: $(loadavg)"
exit 0
