#!/usr/bin/perl

# make stress: fault injection under load (docs/reliability.md).
#
# Starts redis-server, hpki-signd (2 workers per share pool) and nginx with
# the module (2 workers, hpki_token_cache on), runs the checking load
# generator (stress/lib/Stress/Load.pm) and wrk throughout, and injects in
# turn: Redis killed and restarted; Redis stopped (SIGSTOP) and resumed;
# nginx reloaded onto a fake Redis that answers in fragments, garbage, an
# unasked extra reply and closes mid-reply, then reloaded back; hpki-signd
# killed and restarted; one share worker killed; nginx -s reload. Between
# faults the service must recover fully.
#
# Then it asserts: no wrong answer ever (200 for a bad token, a signature
# that does not verify, a 200 without signatures); outside the faults every
# answer is the expected one; during a fault the only errors are 502/503;
# after each fault good-token checks and signing answer 200 again within
# STRESS_RECOVERY_MAX seconds; no nginx worker exited on a signal. Exits
# non-zero on any violation; the last line is "N passed, N failed".
#
# Environment:
#   STRESS_SECONDS       repeat the round of faults until this much time has
#                        gone (default 0: one round, about 2.5 minutes)
#   STRESS_CLIENTS       load generator clients (default 6)
#   STRESS_WRK           0: no wrk beside the load generator (default 1)
#   STRESS_STEADY        seconds of normal service after each recovery (6)
#   STRESS_RECOVERY_MAX  bound on recovery, seconds (30); errors up to 2 s
#                        after the probes saw the recovery still count as
#                        the fault's, any later one is a violation
#   STRESS_OUT           where the figures and logs go
#                        (default build/stress/stress-<time>)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256);
use Cwd qw(abs_path);
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(strftime WNOHANG);
use Time::Local qw(timegm);
use Time::HiRes qw(time sleep);

use Stress::Stack;
use Stress::Client;
use Stress::Load;
use Stress::Report qw(read_events per_second summarize);

$| = 1;

my $SECONDS  = $ENV{STRESS_SECONDS} // 0;
my $CLIENTS  = $ENV{STRESS_CLIENTS} || 6;
my $WRK      = $ENV{STRESS_WRK} // 1;
my $STEADY   = $ENV{STRESS_STEADY} || 6;
my $RECOVERY = $ENV{STRESS_RECOVERY_MAX} || 30;
my $GRACE    = 2;          # s after the probes' recovery still the fault's
my $OUT      = $ENV{STRESS_OUT}
    // "$Stress::Stack::ROOT/build/stress/stress-" . strftime('%Y%m%d-%H%M%S', localtime);
make_path($OUT);
$OUT = abs_path($OUT);

my $started = time;
print "# stress: figures and logs in $OUT\n";
print "# starting redis-server, hpki-signd, nginx (2 workers, token cache)\n";

my $s = Stress::Stack->new(out => $OUT);
my $fake = $s->start_fake(7200);
my $verifier = Stress::Verifier->new($s->cert);
my $probe_client = Stress::Client->new(port => $s->http_port, timeout => 15);

my $load = Stress::Load->new(clients => $CLIENTS, port => $s->http_port,
    dir => $s->dir, good => $s->good_token, bad => $s->bad_tokens,
    cert => $s->cert);

my @phases;                # { name, inject, clear, recovered, probe_s, strict }
my @notes;                 # findings made while running (orphans and such)


# --- the faults --------------------------------------------------------------------

my $round = 0;

my @faults = (
    { name => 'redis killed, restarted', hold => 3,
      inject => sub { $s->kill_redis },
      clear  => sub { $s->restart_redis } },
    { name => 'redis SIGSTOP, SIGCONT', hold => 3,
      inject => sub { kill 'STOP', $s->redis_pid },
      clear  => sub { kill 'CONT', $s->redis_pid } },
    { name => 'nginx reload onto fake redis', hold => 2,
      inject => sub { $s->write_conf($fake->addr); $s->reload },
      clear  => sub {} },
    { name => 'fake: fragments bytes', hold => 4, strict => 1,
      inject => sub { $fake->mode('fragments', 'bytes', '0.001') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'fake: fragments split', hold => 4, strict => 1,
      inject => sub { $fake->mode('fragments', 'split', '0.002') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'fake: garbage http', hold => 3,
      inject => sub { $fake->mode('garbage', 'http') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'fake: garbage binary', hold => 3,
      inject => sub { $fake->mode('garbage', 'binary') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'fake: unasked extra reply', hold => 3,
      inject => sub { $fake->mode('garbage', 'extra') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'fake: close mid-reply', hold => 3,
      inject => sub { $fake->mode('close', 'mid') },
      clear  => sub { $fake->mode('normal') } },
    { name => 'nginx reload back onto redis', hold => 0,
      inject => sub { $s->write_conf($s->t->redis_addr); $s->reload },
      clear  => sub {} },
    { name => 'hpki-signd killed, restarted', hold => 2,
      inject => sub { $s->kill_signd },
      clear  => sub {
          $s->restart_signd;
          sleep 0.5;
          my @o = $s->orphans;
          if (@o) {
              push @notes, "hpki-signd killed: its share workers "
                  . "@o outlived the combiner";
              kill 'KILL', @o;
          }
      } },
    { name => 'share worker killed', hold => 0,
      inject => sub {
          my $w = $s->signd_workers;
          my $pool = $round % 2 ? 'a' : 'b';
          my $pid = $w->{$pool}[0] or die "no share-$pool worker\n";
          kill 'KILL', $pid;
      },
      clear  => sub {} },
    { name => 'nginx -s reload', hold => 0,
      inject => sub { $s->reload },
      clear  => sub {} },
);


# --- run -----------------------------------------------------------------------------

# one probe round on a new connection: a good check and a verified signature
sub probe {
    $probe_client->close_conn;
    my $r = $probe_client->whoami($s->good_token);
    return 0 unless $r->{status} == 200;
    $probe_client->close_conn;
    my $d = sha256("probe " . time);
    $r = $probe_client->sign($s->good_token, $d);
    return 0 unless $r->{status} == 200;
    my $j = eval { decode_json($r->{body}) } or return 0;
    return $verifier->verify_b64($d, $j->{signatures}[0]);
}

# three good probe rounds in a row; seconds it took, undef past the bound
sub wait_recovered {
    my $t0 = time;
    my $good = 0;
    while (time - $t0 < $RECOVERY) {
        $good = probe() ? $good + 1 : 0;
        return time - $t0 if $good >= 3;
        sleep 0.1;
    }
    return undef;
}

die "the stack does not answer before the load starts\n"
    unless defined wait_recovered();

my $wrk_pid;
my $wrk_out = "$OUT/wrk.out";
my $load_t0 = time;
$load->start;
if ($WRK) {
    $wrk_pid = fork // die "fork: $!";
    if ($wrk_pid == 0) {
        open STDOUT, '>', $wrk_out or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT;
        $ENV{STRESS_TOKEN} = $s->good_token;
        {   no warnings 'exec';
            exec 'wrk', '-t', '1', '-c', '4', '-d', '7200s', '--timeout', '30s',
                '-s', "$FindBin::Bin/wrk.lua",
                'http://127.0.0.1:' . $s->http_port . '/whoami';
        }
        POSIX::_exit(127);
    }
}

print "# load: $CLIENTS clients", ($WRK ? ' + wrk (4 connections)' : ''),
      "; baseline\n";
push @phases, { name => 'baseline', inject => $load_t0, clear => $load_t0,
                strict => 1, probe_s => 0 };
sleep 8;

do {
    $round++;
    for my $f (@faults) {
        my $p = { name => $f->{name}, round => $round,
                  strict => $f->{strict} // 0 };
        printf "# %6.1fs  %s\n", time - $load_t0, $f->{name};
        $p->{inject} = time;
        $f->{inject}->();
        sleep $f->{hold};
        $p->{clear} = time;
        $f->{clear}->();
        $p->{probe_s} = wait_recovered();
        $p->{recovered} = defined $p->{probe_s} ? time : undef;
        push @phases, $p;
        sleep $STEADY;
    }
} while ($SECONDS && time - $started < $SECONDS);

my $load_t1 = time;
my $clients_ok = $load->stop;
my $wrk_line = '';
if ($wrk_pid) {
    kill 'INT', $wrk_pid;              # wrk prints its summary on SIGINT
    waitpid($wrk_pid, 0);
    open my $fh, '<', $wrk_out;
    ($wrk_line) = grep { /^WRK / } <$fh>;
    $wrk_line //= '';
    chomp $wrk_line;
}
$s->save_logs;
my $error_log = $s->error_log;
my $signd_log = $s->signd_log;
$s->stop;


# --- analysis ------------------------------------------------------------------------

my ($ev, $meta) = read_events($load->logs);

# each answer belongs to the phase in force when it came back
for my $i (0 .. $#phases) {
    $phases[$i]{until} = $i < $#phases ? $phases[$i + 1]{inject} : $load_t1;
}
my $phase_of = sub {
    my ($t) = @_;
    for my $p (reverse @phases) { return $p if $t >= $p->{inject} }
    # (answers after the load stopped belong to the last phase)
    return $phases[0];
};
push @{$phase_of->($_->{t1})->{events}}, $_ for @$ev;

per_second($ev, $load_t0, "$OUT/per-second.tsv",
    sub { my $p = $phase_of->($_[0]); $p->{name} =~ s/\s+/_/gr });

open my $errs, '>', "$OUT/unexpected.tsv" or die;
print $errs "time_s\tphase\tkind\tvariant\tstatus\tverdict\tnote\n";
for my $e (grep { $_->{verdict} ne 'ok' } @$ev) {
    printf $errs "%.3f\t%s\t%s\t%s\t%s\t%s\t%s\n", $e->{t1} - $load_t0,
        $phase_of->($e->{t1})->{name}, @$e{qw(kind variant status verdict note)};
}
close $errs;

my $c = Stress::Checks->new;
my $total = summarize($ev);

print "\n";
printf "%-32s %7s %6s %6s %5s %5s %-24s %9s %7s\n", 'phase', 'answers', 'ok',
    'err', 'late', 'wrong', 'error statuses', 'recovery', 'probe';
for my $p (@phases) {
    my $e = $p->{events} // [];
    my $sum = summarize($e);
    my @errs = grep { $_->{verdict} eq 'err' } @$e;
    my %by;
    $by{$_->{status}}++ for @errs;
    $p->{errs} = \@errs;
    $p->{sum} = $sum;
    # the fault's own errors: until GRACE after the probes saw it recover
    # (one nginx worker may reconnect to Redis a little after the other)
    $p->{settled} = ($p->{recovered} // $p->{until}) + $GRACE;
    $p->{settled} = $p->{inject} if $p->{name} eq 'baseline';
    my @own = grep { $_->{t1} <= $p->{settled} } @errs;
    # recovery: from the fault's end to the last error it caused
    my $last = @own ? $own[-1]{t1} : undef;
    $p->{last_err} = $last;
    $p->{recovery} = defined $last ? ($last > $p->{clear}
        ? $last - $p->{clear} : 0) : 0;
    printf "%-32s %7d %6d %6d %5d %5d %-24s %8.2fs %7s\n",
        ($p->{round} && $p->{round} > 1 ? "$p->{name} #$p->{round}" : $p->{name}),
        $sum->{n}, $sum->{ok}, $sum->{err}, @errs - @own, $sum->{wrong},
        join(' ', map { "$_:$by{$_}" } sort keys %by) || '-',
        $p->{recovery},
        defined $p->{probe_s} ? sprintf('%.2fs', $p->{probe_s}) : 'NEVER';
}
print "\n";
printf "answers: %d in %.0f s (%.0f/s); ok %d, err %d, wrong %d; "
    . "connections %d, retried on a closed keep-alive %d\n",
    $total->{n}, $load_t1 - $load_t0, $total->{n} / ($load_t1 - $load_t0),
    $total->{ok}, $total->{err}, $total->{wrong},
    $meta->{connects} // 0, $meta->{retries} // 0;
for my $k (sort keys %{$total->{lat}}) {
    my $l = $total->{lat}{$k};
    printf "  %-8s %7d answers, p50 %.1f ms, p99 %.1f ms, max %.0f ms\n",
        $k, $l->{n}, $l->{p50}, $l->{p99}, $l->{max};
}
print "  statuses: ", join(' ', map { "$_=$total->{status}{$_}" }
    sort keys %{$total->{status}}), "\n";
print "wrk: $wrk_line\n" if $WRK;
print "note: $_\n" for @notes;
print "\n";


# --- assertions ------------------------------------------------------------------------

my @wrong = grep { $_->{verdict} eq 'wrong' } @$ev;
$c->ok(!@wrong, 'no wrong answer: no 200 for a bad token, no invalid or '
    . 'missing signature', map { fmt($_) } @wrong[0 .. min(19, $#wrong)]);

my $bad200 = grep { $_->{kind} =~ /^bad/ && $_->{status} == 200 } @$ev;
my $signed = grep { $_->{kind} eq 'sign' && $_->{verdict} eq 'ok' } @$ev;
my $bad = grep { $_->{kind} =~ /^bad/ } @$ev;
$c->ok($bad > 0 && $signed > 0,
    "the load ran: $signed signing requests verified, $bad bad-token "
    . "requests ($bad200 answered 200)");

for my $p (@phases) {
    my $name = $p->{name} . ($p->{round} && $p->{round} > 1 ? " #$p->{round}" : '');
    my @errs = @{$p->{errs}};
    if ($p->{name} eq 'baseline') {
        $c->ok(!@errs, "$name: every answer as expected",
            map { fmt($_) } @errs[0 .. min(9, $#errs)]);
        next;
    }
    my @during = grep { $_->{t1} <= $p->{settled} } @errs;
    my @late = grep { $_->{t1} > $p->{settled} } @errs;
    if ($p->{strict}) {
        $c->ok(!@during, "$name: every answer as expected (not a fault: "
            . "the replies are right, only cut up)",
            map { fmt($_) } @during[0 .. min(9, $#during)]);
    } else {
        my @other = grep { $_->{status} != 502 && $_->{status} != 503 } @during;
        $c->ok(!@other, "$name: the only errors are 502/503",
            map { fmt($_) } @other[0 .. min(9, $#other)]);
    }
    $c->ok(defined $p->{probe_s},
        "$name: good token 200 and a verified signature again "
        . (defined $p->{probe_s} ? sprintf('%.2fs after the fault ended',
                                           $p->{probe_s})
                                 : "not within ${RECOVERY}s"));
    # then normal service until the next fault: no error at all
    my @after = grep { $_->{t1} > $p->{settled} } @{$p->{events} // []};
    my $good = grep { $_->{kind} eq 'good' && $_->{verdict} eq 'ok' } @after;
    my $sig = grep { $_->{kind} eq 'sign' && $_->{verdict} eq 'ok' } @after;
    $c->ok(!@late && $good > 0 && $sig > 0,
        sprintf("$name: normal service after recovery (%d good checks, %d "
            . "signatures, %d errors in the %.0fs before the next fault)",
            $good, $sig, scalar @late, $p->{until} - $p->{settled}),
        map { fmt($_) } @late[0 .. min(9, $#late)]);
}

my @crash = grep { /exited on signal|worker process .* exited with fatal/ }
    split /\n/, $error_log;
$c->ok(!@crash, 'no nginx worker exited on a signal', @crash[0 .. min(9, $#crash)]);

# hpki-signd's own errors must come from a fault that concerns it (Redis,
# hpki-signd): one a minute after a Redis restart, say, would be a request
# that failed while the service was supposed to be whole again. The log's
# times have whole seconds, hence the second of slack either side.
{
    my @windows = map { [ $_->{inject} - 1, $_->{settled} + 1 ] }
        grep { $_->{name} =~ /^(redis|hpki-signd|share worker)/ } @phases;
    my @stray;
    for my $l (split /\n/, $signd_log) {
        my ($Y, $M, $D, $h, $m, $sec) =
            $l =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z \[(?:error|crit|alert)\]/
            or next;
        my $t = timegm($sec, $m, $h, $D, $M - 1, $Y);
        next if $t < $load_t0 - 1 || $t > $load_t1 + 1;
        next if grep { $t >= int($_->[0]) && $t <= $_->[1] } @windows;
        push @stray, sprintf('%.0fs (during "%s"): %s', $t - $load_t0,
            $phase_of->($t)->{name}, $l);
    }
    $c->ok(!@stray, 'hpki-signd logged errors only during the faults that '
        . 'concern it (Redis, hpki-signd)', @stray[0 .. min(9, $#stray)]);
}

my @alarm = grep { /ALARM/ } split /\n/, $signd_log;
$c->ok(!@alarm, 'hpki-signd raised no ALARM (combined signature check)',
    @alarm[0 .. min(9, $#alarm)]);

$c->ok($clients_ok, 'every load client ended cleanly');
$c->ok(!@notes, 'nothing left behind by a killed hpki-signd', @notes);

if ($WRK) {
    my %st = $wrk_line =~ /status:(\d+)=(\d+)/g;
    my @other = grep { $_ != 200 && $_ != 502 && $_ != 503 } keys %st;
    $c->ok($wrk_line && !@other,
        'wrk (good token, no checks of its own): only 200, 502, 503',
        $wrk_line || 'no summary from wrk');
}

printf "# make stress: %.0f s wall clock; figures in %s\n", time - $started, $OUT;
exit $c->done;


sub min { $_[0] < $_[1] ? $_[0] : $_[1] }

sub fmt {
    my ($e) = @_;
    my $p = $phase_of->($e->{t1});
    return sprintf '%.3fs %s %s %s -> %s %s (%.1fs after "%s" began, '
        . 'latency %.0f ms)',
        $e->{t1} - $load_t0, $e->{kind}, $e->{variant}, $e->{verdict},
        $e->{status}, $e->{note}, $e->{t1} - $p->{inject}, $p->{name},
        1000 * ($e->{t1} - $e->{t0});
}
