#!/usr/bin/env bash
# make test-valgrind: prove t/module/ with nginx (and so the module) under
# valgrind memcheck.  HPKI_NGINX points the harness at a wrapper; with
# master_process on, the workers are forks of the master and are checked
# too.  Each process writes build/valgrind/logs/vg.<pid>.
#
# Fails if prove fails, or if any log holds an error that the suppressions
# (mk/valgrind.supp: nginx's and OpenSSL's own at-exit noise) leave:
# every invalid access, use of uninitialised memory or bad free counts,
# wherever it is; a "definitely lost" leak counts when our code
# (ngx_http_hpki_*) is on its allocation stack (nginx itself never frees
# its cycle at exit, which is not a leak of ours).
#
# Environment: VALGRIND_PROVE_ARGS (default t/module/), HPKI_TEST_TIMEOUT
# (default 60 here).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VG=$ROOT/build/valgrind
LOGS=$VG/logs

rm -rf "$LOGS" "$VG/bin"
mkdir -p "$LOGS" "$VG/bin"

# a snapshot of the binaries: a rebuild during the run ("cp" over the .so
# that nginx has mapped) would crash the workers
cp -p "$ROOT/build/ngx_http_hpki_module.so" "$ROOT/build/hpki-signd" \
    "$ROOT/build/hpki-admin" "$VG/bin/"
ln -s "$ROOT/build/t-pki" "$VG/bin/t-pki"
export HPKI_BUILD=$VG/bin

# Under valgrind a worker is 20-50 times slower, and the tests' default
# hpki_redis_timeout (1s) then expires while the worker is busy with TLS
# handshakes: the wrapper runs a copy of the configuration with
# "hpki_redis_timeout ${VALGRIND_REDIS_TIMEOUT:-10s}" added after
# hpki_redis, unless the test sets a timeout itself.
cat > "$VG/nginx" <<EOW
#!/usr/bin/perl
use strict;
use warnings;
my @args = @ARGV;
for my \$i (0 .. \$#args - 1) {
    next unless \$args[\$i] eq '-c';
    my \$conf = \$args[\$i + 1];
    open my \$in, '<', \$conf or last;
    local \$/;
    my \$text = <\$in>;
    close \$in;
    last if \$text =~ /hpki_redis_timeout/;
    \$text =~ s/^(\\s*hpki_redis\\s[^;]*;)/\$1 hpki_redis_timeout ${VALGRIND_REDIS_TIMEOUT:-10s};/m
        or last;
    open my \$out, '>', "\$conf.valgrind" or last;
    print \$out \$text;
    close \$out;
    \$args[\$i + 1] = "\$conf.valgrind";
}
exec 'valgrind', '--tool=memcheck', '--quiet', '--trace-children=yes',
    '--child-silent-after-fork=no', '--num-callers=40',
    '--leak-check=full', '--show-leak-kinds=definite', '--keep-debuginfo=yes',
    '--errors-for-leak-kinds=definite',
    '--suppressions=$ROOT/mk/valgrind.supp', '--gen-suppressions=all',
    '--log-file=$LOGS/vg.%p', '${HPKI_REAL_NGINX:-nginx}', @args;
EOW
chmod +x "$VG/nginx"

export HPKI_NGINX=$VG/nginx
export HPKI_TEST_TIMEOUT=${HPKI_TEST_TIMEOUT:-60}

rc=0
prove_rc=0
(cd "$ROOT" && prove ${VALGRIND_PROVE_ARGS:-t/module/}) || prove_rc=$?
if [ "$prove_rc" -ne 0 ]; then
    echo "test-valgrind: prove failed ($prove_rc) under valgrind"
    [ -n "${VALGRIND_STRICT:-}" ] && rc=$prove_rc
fi

# the errors memcheck left after the suppressions
perl -e '
    my ($bad, $noise) = (0, 0);
    my %crashed;
    for my $f (@ARGV) {
        open my $c, "<", $f or next;
        $crashed{$f} = grep { /Process terminating with default action/ } <$c>;
    }
    for my $f (@ARGV) {
        open my $fh, "<", $f or next;
        my $text = do { local $/; <$fh> };
        # one error per block: blocks end with a bare "==PID==" line, and
        # the generated suppressions ({ ... }) are not errors
        $text =~ s/^\{\n.*?^\}\n//msg;
        for my $block (split /^==\d+==\s*\n/m, $text) {
            next unless $block =~ /^==\d+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination|Argument|\S.* definitely lost)/m;
            my $leak = $block =~ /definitely lost/;
            # leaks of a process killed by a signal say nothing
            next if $leak && $crashed{$f};
            my $ours = $block =~ /ngx_http_hpki_/;
            if (!$leak || $ours) {
                $bad++;
                print "=================== $f\n$block\n";
            } else {
                $noise++;
            }
        }
    }
    print "test-valgrind: $noise leak(s) outside our code (nginx, OpenSSL) ignored\n" if $noise;
    if ($bad) {
        print "test-valgrind: FAIL: $bad error(s) from memcheck\n";
        exit 1;
    }
    print "test-valgrind: no memcheck errors from our code\n";
' "$LOGS"/vg.* || rc=1

exit $rc
