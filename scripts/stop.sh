#!/bin/bash
# Stop the demo stack that scripts/run.sh started (`make stop`): exactly the
# processes named by the pid files under the run directory, newest first
# (nginx, hpki-signd, redis-server). SIGTERM, a bounded wait, then SIGKILL.
# Keeps run/ (PKI, keys, Redis data); `make distclean` removes it.
#
# Environment: HPKI_RUN_DIR (default <repo>/run), HPKI_WAIT (default 10 s).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${HPKI_RUN_DIR:-$ROOT/run}
WAIT=${HPKI_WAIT:-10}

say() { printf 'stop: %s\n' "$*"; }

# stop NAME PIDFILE PATTERN
stop() {
    local name=$1 pidfile=$2 pattern=$3 pid i
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null)
    case $pid in '' | *[!0-9]*) rm -f "$pidfile"; return 0 ;; esac

    # only our process: the pid may have been reused since
    if ! kill -0 "$pid" 2>/dev/null ||
        ! tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
    then
        say "$name was not running"
        rm -f "$pidfile"
        return 0
    fi

    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < WAIT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) did not stop in ${WAIT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$pidfile"
    say "stopped $name (pid $pid)"
    stopped=1
}

[ -d "$RUN" ] || { say "nothing to stop (no ${RUN#"$ROOT"/})"; exit 0; }

stopped=0
stop nginx "$RUN/nginx/nginx.pid" nginx
stop hpki-signd "$RUN/signd/signd.pid" hpki-signd
stop redis "$RUN/redis/redis.pid" redis-server
rm -f "$RUN/signd/signd.sock"
[ $stopped = 1 ] || say "nothing was running"
exit 0
