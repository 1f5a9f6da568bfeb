#!/bin/sh
# Install the Debian packages the project needs; quick when all are present.
set -eu

PACKAGES="build-essential nginx nginx-dev libssl-dev openssl libjansson-dev
libjwt-dev libhiredis-dev libfido2-dev libcbor-dev libqrencode-dev
redis-server redis-tools curl perl libjson-pp-perl
git clang llvm libclang-rt-14-dev valgrind
wrk libnginx-mod-http-lua lua-nginx-redis lua-cjson
libcrypt-openssl-rsa-perl python3-authlib python3-requests python3-cbor2
libpng-dev zbar-tools nodejs chromium fonts-dejavu-core systemd"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"
    then
        missing="$missing $p"
    fi
done

# Debian's nodejs comes without npm; NodeSource's nodejs has it built in
command -v npm >/dev/null 2>&1 || case "$missing" in
    *nodejs*) ;;
    *) missing="$missing npm" ;;
esac

[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
command -v npm >/dev/null 2>&1 \
    || $SUDO apt-get install -y -qq --no-install-recommends npm
