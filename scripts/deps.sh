#!/bin/sh
# Install the Debian packages the project needs; quick when all are present.
set -eu

PACKAGES="build-essential nginx nginx-dev libssl-dev openssl libjansson-dev
libjwt-dev libhiredis-dev libfido2-dev libcbor-dev libqrencode-dev
redis-server redis-tools curl perl libjson-pp-perl
git clang llvm libclang-rt-14-dev valgrind
wrk libnginx-mod-http-lua lua-nginx-redis lua-cjson
libcrypt-openssl-rsa-perl python3-authlib python3-requests"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"
    then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
