# bench/lib.sh: what bench/sign.sh and bench/token.sh share. Sourced; the
# caller defines die(), and NGINX and D (its temporary directory) before
# calling nginx_t.

stop_pid() {            # TERM, a bounded wait, then KILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

watchdog() {            # watchdog SECONDS: TERM this shell then; sets WATCHDOG_PID
    (
        trap 'kill -TERM $sp 2>/dev/null; exit 0' TERM
        sleep "$1" & sp=$!
        wait "$sp" && kill -TERM $$ 2>/dev/null
    ) &
    WATCHDOG_PID=$!
}

free_ports() {          # N distinct free loopback ports
    perl -MIO::Socket::INET -e '
        my (%seen, @p);
        while (@p < $ARGV[0]) {
            my $s = IO::Socket::INET->new(Listen => 1,
                LocalAddr => "127.0.0.1", LocalPort => 0) or die "$!\n";
            push @p, $s->sockport unless $seen{$s->sockport}++;
        }
        print "@p\n";' "$1"
}

wait_until() {          # wait_until SECONDS PID LOG CMD...: until CMD succeeds
    local secs=$1 pid=$2 log=$3 i
    shift 3
    for i in $(seq $(( secs * 20 ))); do
        "$@" >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "--- $log" >&2; tail -20 "$log" >&2 || true
            die "process $pid exited while starting"
        fi
        sleep 0.05
    done
    echo "--- $log" >&2; tail -20 "$log" >&2 || true
    die "not ready within ${secs}s"
}

nginx_t() {
    "$NGINX" -t -q -p "$D/" -c "$D/nginx.conf" -e "$D/error.log" \
        >"$D/nginx-t.out" 2>&1
}
