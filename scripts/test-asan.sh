#!/usr/bin/env bash
# make test-asan: the whole test suite against an ASan + UBSan build.
#
#   1. copies the tracked (and new, not ignored) files of the working tree
#      to build/asan/src, keeping mtimes so that the build there is
#      incremental;
#   2. builds everything there with
#      EXTRA_CFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer
#      -g -O1' (module, hpki-signd, hpki-admin, unit tests);
#   3. runs prove in that copy (so that every path the tests compute from
#      the repository root, t/unit/*.t included, names the sanitized
#      binaries), with HPKI_BUILD set to its build/ and HPKI_NGINX set to
#      a wrapper that starts Debian's nginx with gcc's ASan and UBSan
#      runtimes preloaded;
#   4. fails if prove fails or if any sanitizer wrote a report: reports go
#      to build/asan/logs/{asan,ubsan}.<pid> (log_path) and are printed.
#
# Environment: ASAN_PROVE_ARGS (default "-r t/"), HPKI_TEST_TIMEOUT
# (default 40 here), ASAN_SKIP_BUILD=1 (reuse the last build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASAN=$ROOT/build/asan
SRC=$ASAN/src
LOGS=$ASAN/logs
SAN_CFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1'
SAN_LDFLAGS='-fsanitize=address,undefined'
CC=${CC:-gcc}

say() { printf 'test-asan: %s\n' "$*"; }

# --- 1. a copy of the tree ---------------------------------------------------

sync_tree() {
    local list old
    mkdir -p "$SRC"
    list=$(mktemp)
    old=$(mktemp)
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [ -f "$f" ] && printf '%s\0' "$f"
        done) > "$list"

    # copy only what changed, so that make's timestamps stay meaningful
    (cd "$ROOT" && xargs -0 -r sh -c '
        for f; do
            if ! cmp -s "$f" "$0/$f"; then
                mkdir -p "$0/$(dirname "$f")" && cp -p "$f" "$0/$f"
            fi
        done' "$SRC" < "$list")

    # files that are gone from the tree (build/ and the logs stay)
    (cd "$SRC" && find . -path ./build -prune -o -type f -print0 |
        sed -z 's|^\./||') > "$old"
    sort -z "$list" -o "$list"
    sort -z "$old" -o "$old"
    comm -z -13 "$list" "$old" | (cd "$SRC" && xargs -0 -r rm -f --)
    rm -f "$list" "$old"

    # tests that read ../shared beside the checkout find it beside the copy
    if [ -d "$ROOT/../shared" ] && [ ! -e "$ASAN/shared" ]; then
        ln -s "$ROOT/../shared" "$ASAN/shared"
    fi
}

# --- 2. the sanitized build --------------------------------------------------

build() {
    local goals=(all) u
    # every C unit test the tree has, also those not (yet) in a .mk list
    for u in "$SRC"/t/unit/signd_*.c; do
        [ -e "$u" ] || continue
        goals+=("build/t/$(basename "$u" .c)")
    done
    # a change of flags must rebuild everything: remember them
    if [ "$(cat "$SRC/build/.asan-flags" 2>/dev/null)" != "$CC $SAN_CFLAGS" ]
    then
        rm -rf "$SRC/build"
    fi
    mkdir -p "$SRC/build"
    echo "$CC $SAN_CFLAGS" > "$SRC/build/.asan-flags"
    make -C "$SRC" -s CC="$CC" EXTRA_CFLAGS="$SAN_CFLAGS" \
        EXTRA_LDFLAGS="$SAN_LDFLAGS" "${goals[@]}"
}

# --- 3. the nginx wrapper ----------------------------------------------------

nginx_wrapper() {
    local asan ubsan
    asan=$($CC -print-file-name=libasan.so)
    ubsan=$($CC -print-file-name=libubsan.so)
    [ -e "$asan" ] && [ -e "$ubsan" ] || {
        say "no $asan or $ubsan (gcc's sanitizer runtimes)"; exit 1; }
    cat > "$ASAN/nginx" <<EOF
#!/bin/sh
# Debian's nginx (not instrumented) loading the sanitized module: the
# runtimes must be loaded first.  nginx's own allocations are never freed
# at exit (the cycle pool), so leak detection is off for nginx only.
LD_PRELOAD="$asan $ubsan\${LD_PRELOAD:+ \$LD_PRELOAD}"
ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0"
export LD_PRELOAD ASAN_OPTIONS
exec ${HPKI_REAL_NGINX:-nginx} "\$@"
EOF
    chmod +x "$ASAN/nginx"
}

# --- 4. run and scan ---------------------------------------------------------

run_tests() {
    local rc=0 f n=0
    rm -rf "$LOGS"
    mkdir -p "$LOGS"

    export HPKI_BUILD=$SRC/build
    export HPKI_NGINX=$ASAN/nginx
    export HPKI_TEST_TIMEOUT=${HPKI_TEST_TIMEOUT:-40}
    export ASAN_OPTIONS="log_path=$LOGS/asan:halt_on_error=1:detect_leaks=1:\
abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:\
check_initialization_order=1:print_summary=1"
    export UBSAN_OPTIONS="log_path=$LOGS/ubsan:print_stacktrace=1:\
halt_on_error=0:print_summary=1"
    export LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0"

    say "prove ${ASAN_PROVE_ARGS:--r t/} (binaries: $HPKI_BUILD)"
    (cd "$SRC" && prove ${ASAN_PROVE_ARGS:--r t/}) || rc=$?

    for f in "$LOGS"/*; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        echo "=================== $f"
        cat "$f"
    done

    if [ "$n" -gt 0 ]; then
        say "FAIL: $n sanitizer report(s) in $LOGS"
        return 1
    fi
    if [ "$rc" -ne 0 ]; then
        say "FAIL: prove exited with $rc"
        return "$rc"
    fi
    say "PASS: no sanitizer reports"
}

if [ -z "${ASAN_SKIP_BUILD:-}" ]; then
    say "syncing the tree to $SRC"
    sync_tree
    say "building with $SAN_CFLAGS"
    build
fi
nginx_wrapper
run_tests
