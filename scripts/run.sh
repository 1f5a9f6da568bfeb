#!/bin/bash
# Start the demo stack in the background on loopback (`make run`):
# redis-server, hpki-signd and nginx with the hpki module, a demo PKI, and
# the demo doctor and pharmacist with split second keys. Idempotent: what is
# already running is left alone. `make stop` (scripts/stop.sh) stops it.
#
# Environment:
#   HPKI_PORT_BASE  first port (default 18440): https = base, redis = base+1
#   HPKI_RUN_DIR    state directory (default <repo>/run)
#   HPKI_BUILD_DIR  binaries (default <repo>/build)
#   HPKI_WAIT       seconds to wait for each component (default 20)
#   HPKI_QUIET=1    do not print the quickstart
#
# Writes RUN/demo.env (shell variables for the quickstart) and
# RUN/quickstart.sh (the commands it prints). See docs/demo.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${HPKI_RUN_DIR:-$ROOT/run}
BUILD=${HPKI_BUILD_DIR:-$ROOT/build}
BASE=${HPKI_PORT_BASE:-18440}
WAIT=${HPKI_WAIT:-20}

HTTPS_PORT=$BASE
REDIS_PORT=$((BASE + 1))

MODULE=$BUILD/ngx_http_hpki_module.so
SIGND=$BUILD/hpki-signd
ADMIN=$BUILD/hpki-admin
NGINX=${HPKI_NGINX:-nginx}
REDIS_SERVER=${HPKI_REDIS_SERVER:-redis-server}

DOCTOR_ID=demo-doctor
PHARMACIST_ID=demo-pharmacist
TOKEN_KID=demo-1

say() { printf 'run: %s\n' "$*"; }

die() {
    printf 'run: error: %s\n' "$1" >&2
    if [ -n "${2:-}" ] && [ -e "$2" ]; then
        printf -- '--- last lines of %s\n' "$2" >&2
        tail -n 25 "$2" >&2
    fi
    printf 'run: `make stop` stops whatever did start\n' >&2
    exit 1
}

case $BASE in
'' | *[!0-9]*) die "HPKI_PORT_BASE must be a number" ;;
esac
if [ "$BASE" -lt 1024 ] || [ "$BASE" -gt 65000 ]; then
    die "HPKI_PORT_BASE must be between 1024 and 65000"
fi

for f in "$MODULE" "$SIGND" "$ADMIN"; do
    [ -e "$f" ] || die "${f#"$ROOT"/} is missing: run \`make\` first"
done
command -v "$NGINX" >/dev/null || die "nginx not found (make deps)"
command -v "$REDIS_SERVER" >/dev/null || die "redis-server not found (make deps)"
command -v redis-cli >/dev/null || die "redis-cli not found (make deps)"

mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
PKI=$RUN/pki
SECRETS=$RUN/secrets

# alive NAME PIDFILE PATTERN: the pid file names a live process running PATTERN
alive() {
    local pid
    [ -s "$2" ] || return 1
    pid=$(cat "$2" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$3"
}

# port_free PORT
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_until CHECK...: poll CHECK for up to $WAIT seconds
wait_until() {
    local i
    for ((i = 0; i < WAIT * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

secret() {
    (umask 077 && "$@")
}


# --- generated once --------------------------------------------------------

if [ ! -f "$PKI/.done" ]; then
    say "generating the demo PKI in ${PKI#"$ROOT"/}"
    "$ROOT/scripts/pki.sh" "$PKI"
fi

mkdir -p "$SECRETS"
chmod 700 "$SECRETS"
for s in a b; do
    [ -s "$SECRETS/kek-$s" ] ||
        secret head -c 32 /dev/urandom > "$SECRETS/kek-$s"
    chmod 600 "$SECRETS/kek-$s"
done
if [ ! -s "$SECRETS/token.key" ]; then
    secret openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$SECRETS/token.key" 2>/dev/null
    openssl pkey -in "$SECRETS/token.key" -pubout -out "$SECRETS/token.pub.pem"
fi
chmod 600 "$SECRETS/token.key"
[ -s "$SECRETS/oidc-client.secret" ] ||
    secret sh -c "openssl rand -hex 24 | tr -d '\n' > '$SECRETS/oidc-client.secret'"
chmod 600 "$SECRETS/oidc-client.secret"
for u in share-a share-b; do
    [ -s "$SECRETS/redis-$u.pass" ] ||
        secret sh -c "openssl rand -hex 24 | tr -d '\n' > '$SECRETS/redis-$u.pass'"
    chmod 600 "$SECRETS/redis-$u.pass"
done


# --- configuration (rewritten on every start: ports may have moved) ----------

mkdir -p "$RUN/redis" "$RUN/signd" "$RUN/nginx"
ISSUER=https://127.0.0.1:$HTTPS_PORT
SOCKET=$RUN/signd/signd.sock

cat > "$RUN/redis/users.acl.new" <<EOF
user default on nopass resetkeys ~hpki:tok:* ~hpki:cert:* ~hpki:jpki:* ~hpki:user:* ~hpki:key:* ~hpki:sad:* ~hpki:rate:* ~hpki:fail:* ~hpki:code:* ~hpki:rt:* ~hpki:sid:* ~hpki:jti:* ~hpki:enroll:* ~hpki:fido:* ~hpki:fidouser:* ~hpki:chal:* ~hpki:authz:* &* +@all
user share-a on >$(cat "$SECRETS/redis-share-a.pass") resetkeys ~hpki:a:* resetchannels -@all +@read +@write +@keyspace +@transaction +@connection -@dangerous
user share-b on >$(cat "$SECRETS/redis-share-b.pass") resetkeys ~hpki:b:* resetchannels -@all +@read +@write +@keyspace +@transaction +@connection -@dangerous
EOF
chmod 600 "$RUN/redis/users.acl.new"
mv -f "$RUN/redis/users.acl.new" "$RUN/redis/users.acl"

cat > "$RUN/redis/redis.conf" <<EOF
# written by scripts/run.sh
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $RUN/redis/redis.pid
logfile $RUN/redis/redis.log
dir $RUN/redis
save ""
appendonly yes
appendfsync everysec
aclfile $RUN/redis/users.acl
EOF

cat > "$RUN/signd/hpki-signd.conf" <<EOF
# written by scripts/run.sh
listen               $SOCKET
socket_mode          0660
allow_uid            $(id -u)
pid_file             $RUN/signd/signd.pid
workers              2
redis                127.0.0.1:$REDIS_PORT
store_a_redis        127.0.0.1:$REDIS_PORT
store_a_user         share-a
store_a_password_file $SECRETS/redis-share-a.pass
store_a_kek          $SECRETS/kek-a
store_b_redis        127.0.0.1:$REDIS_PORT
store_b_user         share-b
store_b_password_file $SECRETS/redis-share-b.pass
store_b_kek          $SECRETS/kek-b
token_public_key     $SECRETS/token.pub.pem
token_issuer         $ISSUER
token_audience       hpki
audit_log            $RUN/signd/audit.log
log_level            info
EOF

# the demo OpenID Connect client: a confidential EHR, HPKI card login; its
# redirect URI on loopback is not served (read the Location header)
OIDC_CLIENT_ID=demo-ehr
OIDC_REDIRECT_URI="http://127.0.0.1:$((BASE + 2))/callback"
cat > "$RUN/nginx/oidc-clients.json.new" <<EOF
{
  "clients": [
    {
      "client_id": "$OIDC_CLIENT_ID",
      "client_secret": "$(cat "$SECRETS/oidc-client.secret")",
      "token_endpoint_auth_method": "client_secret_basic",
      "redirect_uris": ["$OIDC_REDIRECT_URI"],
      "post_logout_redirect_uris": ["http://127.0.0.1:$((BASE + 2))/"],
      "login": "hpki_card",
      "scopes": ["openid", "sign"]
    }
  ]
}
EOF
chmod 600 "$RUN/nginx/oidc-clients.json.new"
mv -f "$RUN/nginx/oidc-clients.json.new" "$RUN/nginx/oidc-clients.json"

globals="pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log info;
load_module $MODULE;"
[ "$(id -u)" -eq 0 ] && globals="$globals
user root;"
globals_http="access_log $RUN/nginx/access.log;
client_body_temp_path $RUN/nginx/client_body_temp;
proxy_temp_path $RUN/nginx/proxy_temp;
fastcgi_temp_path $RUN/nginx/fastcgi_temp;
uwsgi_temp_path $RUN/nginx/uwsgi_temp;
scgi_temp_path $RUN/nginx/scgi_temp;"

# the same placeholders as t/lib/Hpki/Test.pm
T_TEST_GLOBALS=$globals T_TEST_GLOBALS_HTTP=$globals_http \
T_REDIS_ADDR=127.0.0.1:$REDIS_PORT T_TOKEN_KEY=$SECRETS/token.key \
T_TOKEN_KID=$TOKEN_KID T_TOKEN_ISSUER=$ISSUER T_TOKEN_AUDIENCE=hpki \
T_SIGND_SOCKET=$SOCKET T_HTTPS_PORT=$HTTPS_PORT \
T_SERVER_CERT=$PKI/server.pem T_SERVER_KEY=$PKI/server.key \
T_CLIENT_CA=$PKI/client-ca-bundle.pem T_CLIENT_CRL=$PKI/client-crl-bundle.pem \
T_CONF=$ROOT/conf T_OIDC_CLIENTS=$RUN/nginx/oidc-clients.json \
    perl -pe 's{%%([A-Z0-9_]+)%%}{
        exists $ENV{"T_$1"} ? $ENV{"T_$1"} : die "unknown placeholder %%$1%%\n"
    }ge' "$ROOT/conf/demo/nginx.conf.in" > "$RUN/nginx/nginx.conf.new"
mv -f "$RUN/nginx/nginx.conf.new" "$RUN/nginx/nginx.conf"


# --- start what is not running -----------------------------------------------

started=""
already=""

redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

if alive redis "$RUN/redis/redis.pid" redis-server; then
    already="$already redis"
else
    port_free "$REDIS_PORT" ||
        die "port $REDIS_PORT (redis) is in use: set HPKI_PORT_BASE"
    "$REDIS_SERVER" "$RUN/redis/redis.conf" ||
        die "redis-server did not start" "$RUN/redis/redis.log"
    wait_until redis_ping ||
        die "redis-server is not answering on port $REDIS_PORT" \
            "$RUN/redis/redis.log"
    started="$started redis"
fi

# one PING frame (docs/protocol.md): length 2, version 1, type 0x02 -> 0x82
signd_ping() {
    perl -MIO::Socket::UNIX -e '
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1;
        print $s pack("N C C", 2, 1, 2);
        my $got = "";
        alarm 2;
        while (length $got < 6) { sysread($s, $got, 6 - length $got, length $got) or last }
        exit($got eq pack("N C C", 2, 1, 0x82) ? 0 : 1);' "$SOCKET" 2>/dev/null
}

signd_up() {
    kill -0 "$1" 2>/dev/null || return 2
    signd_ping
}

if alive signd "$RUN/signd/signd.pid" hpki-signd; then
    already="$already hpki-signd"
else
    rm -f "$SOCKET"
    setsid "$SIGND" -c "$RUN/signd/hpki-signd.conf" \
        >> "$RUN/signd/signd.log" 2>&1 < /dev/null &
    pid=$!
    for ((i = 0; i < WAIT * 10; i++)); do
        rc=0
        signd_up "$pid" || rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 2 ] && die "hpki-signd exited while starting" \
            "$RUN/signd/signd.log"
        sleep 0.1
    done
    [ "$rc" -eq 0 ] || die "hpki-signd is not answering on $SOCKET" \
        "$RUN/signd/signd.log"
    # hpki-signd writes its pid_file itself; make sure stop.sh finds it
    [ -s "$RUN/signd/signd.pid" ] || echo "$pid" > "$RUN/signd/signd.pid"
    started="$started hpki-signd"
fi


# --- demo users (once) ---------------------------------------------------------

ADMIN_CMD="$ADMIN -c $RUN/signd/hpki-signd.conf"

admin() {
    local out
    out=$($ADMIN_CMD "$@" 2>&1) || {
        printf '%s\n' "$out" > "$RUN/admin.err"
        die "hpki-admin $*: failed" "$RUN/admin.err"
    }
}

# enroll ID AUTH_CERT ROLE: user record, split second key, second certificate
enroll() {
    local id=$1 cert=$2 role=$3 subject
    [ -e "$RUN/.enrolled-$id" ] && return 0
    say "enrolling $id ($role): user record, split key, second certificate"
    admin user add --id "$id" --cert "$cert"
    subject=$(openssl x509 -in "$cert" -noout -subject -nameopt compat)
    subject=${subject#subject=}
    subject=${subject# }
    admin key generate --user "$id" --subject "$subject" \
        --csr-out "$RUN/$id-second.csr"
    "$ROOT/scripts/pki.sh" "$PKI" sign-csr "$RUN/$id-second.csr" \
        "$RUN/$id-second.pem" "$role"
    admin cert install --user "$id" --cert "$RUN/$id-second.pem" \
        --chain "$PKI/sign-chain.pem"
    touch "$RUN/.enrolled-$id"
}

enroll "$DOCTOR_ID" "$PKI/doctor-auth.pem" "Medical Doctor"
enroll "$PHARMACIST_ID" "$PKI/pharmacist-auth.pem" "Pharmacist"


# --- nginx ---------------------------------------------------------------------

nginx_up() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        --cacert "$PKI/server-ca.pem" "https://127.0.0.1:$HTTPS_PORT/")" = 200 ]
}

NGINX_ARGS=(-p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/error.log")

if alive nginx "$RUN/nginx/nginx.pid" nginx; then
    already="$already nginx"
    # pick up a changed configuration
    "$NGINX" "${NGINX_ARGS[@]}" -t -q 2>> "$RUN/nginx/error.log" &&
        "$NGINX" "${NGINX_ARGS[@]}" -s reload 2>> "$RUN/nginx/error.log" || true
else
    port_free "$HTTPS_PORT" ||
        die "port $HTTPS_PORT (https) is in use: set HPKI_PORT_BASE"
    "$NGINX" "${NGINX_ARGS[@]}" -t -q 2>> "$RUN/nginx/error.log" ||
        die "the nginx configuration does not load" "$RUN/nginx/error.log"
    "$NGINX" "${NGINX_ARGS[@]}" 2>> "$RUN/nginx/error.log" ||
        die "nginx did not start" "$RUN/nginx/error.log"
    started="$started nginx"
fi
wait_until nginx_up ||
    die "nginx is not answering on https://127.0.0.1:$HTTPS_PORT/" \
        "$RUN/nginx/error.log"


# --- demo.env and the quickstart -------------------------------------------------

cat > "$RUN/demo.env" <<EOF
# HPKI demo stack (scripts/run.sh): source this file. See docs/demo.md.
HPKI_URL='https://127.0.0.1:$HTTPS_PORT'
HPKI_SERVER_CA='$PKI/server-ca.pem'
HPKI_DOCTOR_CERT='$PKI/doctor-auth.pem'
HPKI_DOCTOR_KEY='$PKI/doctor-auth.key'
HPKI_DOCTOR_ID='$DOCTOR_ID'
HPKI_PHARMACIST_CERT='$PKI/pharmacist-auth.pem'
HPKI_PHARMACIST_KEY='$PKI/pharmacist-auth.key'
HPKI_PHARMACIST_ID='$PHARMACIST_ID'
HPKI_SIGN_CA_CERT='$PKI/sign-ca.pem'
HPKI_SIGN_CA_KEY='$PKI/sign-ca.key'
HPKI_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
HPKI_WHOAMI_URL='https://127.0.0.1:$HTTPS_PORT/demo/whoami'
HPKI_ADMIN='$ADMIN_CMD'
HPKI_OIDC_CLIENT_ID='$OIDC_CLIENT_ID'
HPKI_OIDC_CLIENT_SECRET='$(cat "$SECRETS/oidc-client.secret")'
HPKI_OIDC_REDIRECT_URI='$OIDC_REDIRECT_URI'
HPKI_FIDO_RP_ID='localhost'
HPKI_FIDO_ORIGIN='https://localhost:$HTTPS_PORT'
HPKI_FIDO_ENROLL_URL='https://localhost:$HTTPS_PORT/hpki/fido/'
export HPKI_URL HPKI_SERVER_CA HPKI_DOCTOR_CERT HPKI_DOCTOR_KEY HPKI_DOCTOR_ID
export HPKI_PHARMACIST_CERT HPKI_PHARMACIST_KEY HPKI_PHARMACIST_ID
export HPKI_SIGN_CA_CERT HPKI_SIGN_CA_KEY HPKI_REDIS_URL HPKI_WHOAMI_URL
export HPKI_ADMIN HPKI_OIDC_CLIENT_ID HPKI_OIDC_CLIENT_SECRET
export HPKI_OIDC_REDIRECT_URI HPKI_FIDO_RP_ID HPKI_FIDO_ORIGIN
export HPKI_FIDO_ENROLL_URL
EOF

cat > "$RUN/quickstart.sh" <<EOF
. '$RUN/demo.env'
cd "\$(mktemp -d)"

# 1. log in with the doctor's HPKI card certificate (TLS client auth): a token
TOKEN=\$(curl -s --cacert "\$HPKI_SERVER_CA" \\
    --cert "\$HPKI_DOCTOR_CERT" --key "\$HPKI_DOCTOR_KEY" \\
    -X POST "\$HPKI_URL/hpki/login/card" |
    perl -MJSON::PP -0ne 'print decode_json(\$_)->{access_token}')

# 2. who the token says you are
curl -s --cacert "\$HPKI_SERVER_CA" -H "Authorization: Bearer \$TOKEN" \\
    "\$HPKI_WHOAMI_URL"

# 3. sign the SHA-256 digest of a document with the doctor's second key
printf 'demo prescription\\n' > rx.txt
openssl dgst -sha256 -binary rx.txt > rx.sha256
curl -s --cacert "\$HPKI_SERVER_CA" -H "Authorization: Bearer \$TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d "{\\"hashes\\":[\\"\$(base64 -w0 rx.sha256)\\"]}" \\
    "\$HPKI_URL/hpki/sign" > sign.json

# 4. the signature and the second certificate, and openssl checks them
perl -MJSON::PP -0ne 'print decode_json(\$_)->{signatures}[0]' sign.json |
    base64 -d > rx.sig
perl -MJSON::PP -0ne 'print decode_json(\$_)->{certificate}' sign.json > signer.pem
openssl x509 -in signer.pem -noout -subject -issuer
openssl x509 -in signer.pem -noout -pubkey > signer.pub
openssl pkeyutl -verify -pubin -inkey signer.pub -pkeyopt digest:sha256 \\
    -in rx.sha256 -sigfile rx.sig
EOF

if [ -z "$started" ]; then
    say "already running:$already"
else
    say "started:$started${already:+ (already running:$already)}"
fi
say "gateway https://127.0.0.1:$HTTPS_PORT/  redis 127.0.0.1:$REDIS_PORT  signd $SOCKET"
say "environment: ${RUN}/demo.env; stop with \`make stop\`"

if [ -z "${HPKI_QUIET:-}" ]; then
    printf '\nQuickstart (copy and paste; also in %s):\n\n' "$RUN/quickstart.sh"
    sed 's/^/    /' "$RUN/quickstart.sh"
    printf '\n'
fi
