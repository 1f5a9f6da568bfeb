#!/usr/bin/perl

# make soak: mixed load without faults for SOAK_SECONDS (default 600), the
# same stack as make stress (docs/reliability.md). After a warm-up it
# samples every nginx and hpki-signd process (VmRSS, open fds) with the
# load paused for a moment, again every minute, and at the end; then
# asserts: RSS of each nginx worker and each hpki-signd process grew by
# less than 5%, no process has more fds than at the start, the processes
# are the same ones (nothing crashed and was restarted), every good request
# got its 2xx with a verified signature, every bad token its 401.
#
# Environment:
#   SOAK_SECONDS   length of the load after the warm-up (default 600)
#   SOAK_WARMUP    warm-up before the first sample (default 30)
#   SOAK_CLIENTS   load generator clients (default 6)
#   SOAK_WRK       0: no wrk beside the load generator (default 1)
#   SOAK_RSS_MAX   allowed RSS growth, percent (default 5)
#   SOAK_OUT       where the figures and logs go (default build/stress/soak-<time>)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Cwd qw(abs_path);
use File::Path qw(make_path);
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

use Stress::Stack;
use Stress::Load;
use Stress::Report qw(read_events per_second summarize);

$| = 1;

my $SECONDS = $ENV{SOAK_SECONDS} // 600;
my $WARMUP  = $ENV{SOAK_WARMUP} // 30;
my $CLIENTS = $ENV{SOAK_CLIENTS} || 6;
my $WRK     = $ENV{SOAK_WRK} // 1;
my $RSS_MAX = $ENV{SOAK_RSS_MAX} // 5;
my $OUT     = $ENV{SOAK_OUT}
    // "$Stress::Stack::ROOT/build/stress/soak-" . strftime('%Y%m%d-%H%M%S', localtime);
make_path($OUT);
$OUT = abs_path($OUT);

my $started = time;
print "# soak: ${WARMUP}s warm-up, then ${SECONDS}s of mixed load; "
    . "figures and logs in $OUT\n";

my $s = Stress::Stack->new(out => $OUT);
my $load = Stress::Load->new(clients => $CLIENTS, port => $s->http_port,
    dir => $s->dir, good => $s->good_token, bad => $s->bad_tokens,
    cert => $s->cert);

my $load_t0 = time;
$load->start;
my $wrk_pid;
if ($WRK) {
    $wrk_pid = fork // die "fork: $!";
    if ($wrk_pid == 0) {
        open STDOUT, '>', "$OUT/wrk.out" or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT;
        $ENV{STRESS_TOKEN} = $s->good_token;
        $ENV{STRESS_WRK_DELAY_MS} //= 2;
        {   no warnings 'exec';
            exec 'wrk', '-t', '1', '-c', '4', '-d', ($SECONDS + $WARMUP + 120) . 's',
                '--timeout', '30s', '-s', "$FindBin::Bin/wrk.lua",
                'http://127.0.0.1:' . $s->http_port . '/whoami';
        }
        POSIX::_exit(127);
    }
}

# every nginx worker and hpki-signd process, with the load generator paused
# for a moment (the answers in flight come back first); wrk goes on, on its
# own 4 persistent connections
sub sample {
    my ($label) = @_;
    $load->pause;
    sleep 1.5;
    my %p;
    $p{"nginx master"} = $s->nginx_master;
    my $i = 0;
    $p{"nginx worker " . $i++} = $_ for $s->nginx_workers;
    $p{"signd combiner"} = $s->signd_pid;
    my $w = $s->signd_workers;
    for my $pool (qw(a b)) {
        my $j = 0;
        $p{"signd share-$pool " . $j++} = $_ for @{$w->{$pool}};
    }
    my %fig = map { $_ => Stress::Stack::proc_figures($p{$_}) } keys %p;
    $load->resume;
    printf "# %6.0fs  %s: %s\n", time - $load_t0, $label, join ', ',
        map { sprintf '%s %d kB/%d fds', $_, $fig{$_}{rss_kb}, $fig{$_}{fds} }
        grep { $fig{$_} } sort keys %fig;
    return \%fig;
}

sleep $WARMUP;
my $first = sample('start');
my @series = ([0, $first]);
my $t_first = time;
while (time - $t_first < $SECONDS) {
    my $left = $SECONDS - (time - $t_first);
    sleep($left < 60 ? $left : 60);
    last if time - $t_first >= $SECONDS - 0.5;
    push @series, [time - $t_first, sample('minute')];
}
my $last = sample('end');
push @series, [time - $t_first, $last];

my $load_t1 = time;
my $clients_ok = $load->stop;
my $wrk_line = '';
if ($wrk_pid) {
    kill 'INT', $wrk_pid;
    waitpid($wrk_pid, 0);
    open my $fh, '<', "$OUT/wrk.out";
    ($wrk_line) = grep { /^WRK / } <$fh>;
    $wrk_line //= '';
    chomp $wrk_line;
}
$s->save_logs;
my $error_log = $s->error_log;
$s->stop;


# --- figures ------------------------------------------------------------------------

my ($ev, $meta) = read_events($load->logs);
per_second($ev, $load_t0, "$OUT/per-second.tsv");
my $sum = summarize($ev);

open my $ser, '>', "$OUT/samples.tsv" or die;
print $ser join("\t", 'seconds', 'process', 'pid', 'rss_kb', 'fds', 'sockets'), "\n";
for my $row (@series) {
    my ($t, $fig) = @$row;
    for my $k (sort keys %$fig) {
        my $f = $fig->{$k} or next;
        printf $ser "%.0f\t%s\t%d\t%d\t%d\t%d\n", $t, $k, $f->{pid},
            $f->{rss_kb}, $f->{fds}, $f->{sockets};
    }
}
close $ser;

print "\n";
printf "%-18s %7s %10s %10s %8s %6s %6s\n", 'process', 'pid', 'RSS start',
    'RSS end', 'growth', 'fds', 'fds';
my (@rss_bad, @fd_bad, @gone);
for my $k (sort keys %$first) {
    my ($a, $b) = ($first->{$k}, $last->{$k});
    if (!$a || !$b || $a->{pid} != $b->{pid}) {
        push @gone, "$k: pid " . ($a ? $a->{pid} : '-') . ' at the start, '
            . ($b ? $b->{pid} : 'none') . ' at the end';
        next;
    }
    my $g = $a->{rss_kb} ? 100 * ($b->{rss_kb} - $a->{rss_kb}) / $a->{rss_kb} : 0;
    printf "%-18s %7d %7d kB %7d kB %+7.2f%% %6d %6d\n", $k, $a->{pid},
        $a->{rss_kb}, $b->{rss_kb}, $g, $a->{fds}, $b->{fds};
    push @rss_bad, sprintf('%s: %d kB -> %d kB (%+.2f%%)', $k, $a->{rss_kb},
        $b->{rss_kb}, $g) if $g >= $RSS_MAX && $k ne 'nginx master';
    if ($b->{fds} > $a->{fds}) {
        my %old = map { $_ => 1 } @{$a->{files}};
        push @fd_bad, "$k: $a->{fds} -> $b->{fds} fds; new: "
            . join(', ', grep { !$old{$_} } @{$b->{files}});
    }
}
print "\n";
printf "answers: %d in %.0f s (%.0f/s); ok %d, err %d, wrong %d; "
    . "connections %d, retried %d\n", $sum->{n}, $load_t1 - $load_t0,
    $sum->{n} / ($load_t1 - $load_t0), $sum->{ok}, $sum->{err},
    $sum->{wrong}, $meta->{connects} // 0, $meta->{retries} // 0;
for my $k (sort keys %{$sum->{lat}}) {
    my $l = $sum->{lat}{$k};
    printf "  %-8s %8d answers, p50 %.1f ms, p99 %.1f ms, max %.0f ms\n",
        $k, $l->{n}, $l->{p50}, $l->{p99}, $l->{max};
}
print "  statuses: ", join(' ', map { "$_=$sum->{status}{$_}" }
    sort keys %{$sum->{status}}), "\n";
print "wrk: $wrk_line\n" if $WRK;
print "\n";


# --- assertions -----------------------------------------------------------------------

my $c = Stress::Checks->new;

my @wrong = grep { $_->{verdict} eq 'wrong' } @$ev;
my @err = grep { $_->{verdict} eq 'err' } @$ev;
my $fmt = sub {
    my ($e) = @_;
    sprintf '%.3fs %s %s -> %s %s', $e->{t1} - $load_t0, $e->{kind},
        $e->{variant}, $e->{status}, $e->{note};
};
my $signed = grep { $_->{kind} eq 'sign' && $_->{verdict} eq 'ok' } @$ev;
$c->ok($signed > 0 && $sum->{n} > 0,
    "the load ran: $sum->{n} answers, $signed verified signing requests");
$c->ok(!@wrong, 'no wrong answer (200 for a bad token, a bad or missing '
    . 'signature)', map { $fmt->($_) } @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]);
$c->ok(!@err, 'every good request got 2xx, every bad token 401 (no other '
    . 'status, no missing answer)',
    map { $fmt->($_) } @err[0 .. ($#err < 9 ? $#err : 9)]);
$c->ok(!@gone, 'the same nginx and hpki-signd processes at the end '
    . '(nothing crashed or was restarted)', @gone);
$c->ok(!@rss_bad, "RSS of each nginx worker and hpki-signd process grew "
    . "less than $RSS_MAX%", @rss_bad);
$c->ok(!@fd_bad, 'no process holds more file descriptors than at the start',
    @fd_bad);
my @crash = grep { /exited on signal/ } split /\n/, $error_log;
$c->ok(!@crash, 'no nginx worker exited on a signal', @crash);
$c->ok($clients_ok, 'every load client ended cleanly');
if ($WRK) {
    my %st = $wrk_line =~ /status:(\d+)=(\d+)/g;
    my @other = grep { $_ != 200 } keys %st;
    $c->ok($wrk_line && !@other && $wrk_line =~ m{errors=0/0/0/0},
        'wrk (good token): only 200, no socket errors', $wrk_line || 'no summary');
}

printf "# make soak: %.0f s wall clock; figures in %s\n", time - $started, $OUT;
exit $c->done;
