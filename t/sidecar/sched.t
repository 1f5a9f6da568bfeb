#!/usr/bin/perl
# Where hpki-signd's work runs (docs/sidecar.md, "Process model" and
# "Caches"): share workers are SCHED_BATCH, and with
# `worker_cpu_affinity auto` each sits on one CPU, slot i of pool A on
# another CPU than slot i of pool B; the combiner's blinder thread is
# SCHED_IDLE.  Signatures stay right while the blinder restocks, when a
# request takes more blinding pairs than the stock holds, and when a key
# is replaced between two requests (the partials start with the user's
# last record and start again with the new one).

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use SigndTest;

my $ncpu = `nproc` + 0 || 1;

sub cpus {          # Cpus_allowed_list of a pid, as a list
    my ($pid) = @_;
    my ($list) = SigndTest::read_file("/proc/$pid/status")
        =~ /^Cpus_allowed_list:\s*(\S+)/m;
    my @c;
    for (split /,/, $list // '') {
        my ($a, $b) = split /-/;
        push @c, $a .. ($b // $a);
    }
    return @c;
}

sub policy {        # scheduling policy of a task: 0 normal, 3 batch, 5 idle
    my ($path) = @_;
    my ($p) = (eval { SigndTest::read_file("$path/sched") } // '')
        =~ /^policy\s*:\s*(\d+)/m;
    return $p // -1;
}

# --- worker_cpu_affinity auto ------------------------------------------------

my $t = SigndTest->new(workers => 2,
                       conf_extra => "worker_cpu_affinity auto\n");
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');

my $w = $t->worker_pids;
my @a = sort { $a <=> $b } @{ $w->{a} };
my @b = sort { $a <=> $b } @{ $w->{b} };
is(scalar @a, 2, 'two share-A workers');
is(scalar @b, 2, 'two share-B workers');

for my $pid (@a, @b) {
    my @c = cpus($pid);
    is(scalar @c, 1, "worker $pid: on one CPU (@c)");
    is(policy("/proc/$pid"), 3, "worker $pid: SCHED_BATCH");
}

SKIP: {
    skip 'one CPU only', 2 if $ncpu < 2;
    for my $i (0, 1) {
        isnt((cpus($a[$i]))[0], (cpus($b[$i]))[0],
             "slot $i: share A and share B on different CPUs");
    }
}

my @tasks = glob('/proc/' . $t->signd_pid . '/task/*');
is(scalar @tasks, 2, 'the combiner: main thread and blinder');
is(scalar(grep { policy($_) == 5 } @tasks), 1, '... the blinder SCHED_IDLE');
is(scalar(grep { policy($_) == 0 } @tasks), 1,
   '... the main thread SCHED_OTHER');

# more requests than the stock holds, one by one: the blinder restocks

my $bad = 0;
for my $i (1 .. 80) {
    my $dg = sha256("blinder $i");
    my $r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
    $bad++ unless $r->{type} == 0x81
        && $t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0], 'sha256');
}
is($bad, 0, '80 requests in a row: every signature verifies');

# two requests of 64 digests: more pairs than the stock, made inline

for my $round (1, 2) {
    my @many = map { sha256("many $round $_") } 1 .. 64;
    my $r = $t->sign(user => 'doctor1', token => $token, digests => \@many);
    my @sig = @{ $r->{fields}{SIGNATURE} // [] };
    my $ok = grep { $t->verify($pub, $many[$_], $sig[$_], 'sha256') }
             0 .. $#sig;
    is($ok, 64, "64 digests at once ($round): all verify");
}

# a new key between two requests: the partials start with the last
# record's key, the record read meanwhile says otherwise, they start again

my ($rc, $out) = $t->admin('key', 'delete', '--user', 'doctor1');
is($rc, 0, 'key delete') or diag $out;
rename $pub, $t->dir . '/doctor1-old.pub.pem';
my $old = $t->dir . '/doctor1-old.pub.pem';
my $new = $t->setup_user('doctor1');

my $dg = sha256('after the new key');
my $r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
ok($r->{type} == 0x81
   && $t->verify($new, $dg, $r->{fields}{SIGNATURE}[0], 'sha256'),
   'new key, no request in between: signed with the new key');
ok(!$t->verify($old, $dg, $r->{fields}{SIGNATURE}[0] // '', 'sha256'),
   '... not with the old one');
like($t->signd_log, qr/the key record of "doctor1" changed \(version 1\): partials again/,
     '... the log says the partials started again');
my (undef, $kid) = $t->redis('--raw', 'HGET', 'hpki:key:doctor1', 'kid');
chomp $kid;
my @lines = split /\n/, SigndTest::read_file($t->audit_log);
like($lines[-1], qr/ kid=\Q$kid\E ver=1 .* result=ok /,
     '... and audited with the new key id');

# revoked between two requests: refused, though the partials had started

($rc, $out) = $t->admin('key', 'revoke', '--user', 'doctor1');
is($rc, 0, 'key revoke') or diag $out;
$r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
is($r->{error}, 'no_key', 'revoked, no request in between: no_key');
ok(!$r->{fields}{SIGNATURE}, '... no signature');
like((split /\n/, SigndTest::read_file($t->audit_log))[-1],
     qr/ user=doctor1 .* result=no_key /, '... audited as no_key');

$t->cleanup;

# --- worker_cpu_affinity off (the default) -----------------------------------

$t = SigndTest->new(workers => 1);
$w = $t->worker_pids;
for my $pid (@{ $w->{a} }, @{ $w->{b} }) {
    is(scalar(my @c = cpus($pid)), $ncpu, "off: worker $pid on every CPU");
}

# a bad value is refused by the configuration check

SigndTest::write_file($t->dir . '/bad.conf',
    SigndTest::read_file($t->conf) . "worker_cpu_affinity sometimes\n");
($rc, $out) = SigndTest::run_cmd("$SigndTest::BUILD/hpki-signd", '-t', '-c',
                                 $t->dir . '/bad.conf');
isnt($rc, 0, 'worker_cpu_affinity sometimes: hpki-signd -t refuses it');
like($out, qr/worker_cpu_affinity/, '... naming the directive');

$t->cleanup;
done_testing;
