#!/usr/bin/perl
# A share worker killed under load: every request gets exactly one reply
# (a good signature or ERROR unavailable), none hangs, the worker is
# restarted and signing recovers.  SIGTERM drains in-flight requests.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep);
use SigndTest;

my $t = SigndTest->new(workers => 2);
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');
my @dg = map { sha256("load $_") } 1 .. 8;

# a guard against hangs (not a timing threshold: it only ends the test)
local $SIG{ALRM} = sub { die "hung waiting for a reply\n" };

sub load {
    my ($n) = @_;
    my @s = map { $t->connect } 1 .. $n;
    syswrite($_, SigndTest::sign_frame(user => 'doctor1', token => $token,
                                       digests => \@dg)) for @s;
    return @s;
}

sub collect {
    my (@s) = @_;
    my ($good, $unavail, $other) = (0, 0, 0);
    alarm 120;
    for my $s (@s) {
        my $r = SigndTest::read_reply($s);
        if (!$r) { $other++; next }
        if ($r->{type} == 0x81) {
            my $all = @{ $r->{fields}{SIGNATURE} } == @dg;
            for my $i (0 .. $#dg) {
                $all &&= $t->verify($pub, $dg[$i],
                                    $r->{fields}{SIGNATURE}[$i], 'sha256');
            }
            $all ? $good++ : $other++;
        } elsif ($r->{error} eq 'unavailable') {
            $unavail++;
        } else {
            $other++;
        }
    }
    alarm 0;
    return ($good, $unavail, $other);
}

sub recovers {
    for (1 .. 100) {
        my $r = $t->sign(user => 'doctor1', token => $token,
                         digests => [$dg[0]]);
        return 1 if $r->{type} == 0x81;
        sleep 0.1;
    }
    return 0;
}

my $before = $t->worker_pids;
is(scalar @{ $before->{a} }, 2, 'two share-A workers');
is(scalar @{ $before->{b} }, 2, 'two share-B workers');

for my $round (1 .. 3) {
    my @s = load(12);
    sleep 0.02;
    my $w = $t->worker_pids;
    my @victims = $round == 2 ? @{ $w->{b} } : @{ $w->{a} };
    kill 'KILL', @victims;
    my ($good, $unavail, $other) = collect(@s);
    is($good + $unavail, 12,
       "round $round: 12 replies ($good signed, $unavail unavailable)");
    is($other, 0, "round $round: no hung request, no bad signature");
    ok(recovers(), "round $round: signing recovers");
}

my $after = $t->worker_pids;
is(scalar @{ $after->{a} } + scalar @{ $after->{b} }, 4,
   'pools are back to full size');
my %old = map { $_ => 1 } @{ $before->{a} };
ok(!grep({ $old{$_} } @{ $after->{a} }), 'share-A workers were replaced');
like($t->signd_log, qr/share-a worker \d \(pid \d+\) is gone/,
     'worker death logged');
ok(waitpid($t->signd_pid, WNOHANG) == 0, 'combiner kept running');

# SIGTERM drains: requests already sent get their replies

my @s = load(6);
sleep 0.02;
kill 'TERM', $t->signd_pid;
my ($good, $unavail, $other) = collect(@s);
is($good + $unavail, 6, "SIGTERM: all 6 answered ($good signed)");
is($other, 0, 'SIGTERM: no bad or missing reply');

alarm 60;
my $pid = $t->signd_pid;
waitpid $pid, 0;
alarm 0;
delete $t->{pids}{signd};
is($?, 0, 'daemon exited 0 after draining');
ok(!-e $t->socket_path, 'socket removed');
ok(!-e $t->dir . '/signd.pid', 'pid file removed');
my @left = grep { kill 0, $_ } (@{ $after->{a} }, @{ $after->{b} });
is(scalar @left, 0, 'no worker left behind');

done_testing();
