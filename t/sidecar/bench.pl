#!/usr/bin/perl
# Runs build/hpki-signd-bench against a private test stack (SigndTest.pm):
# one redis-server, hpki-signd with `workers 0` (pools sized to the CPUs),
# log_level warn, one RSA-2048 key and one token.  Not a test: run by
# hand, see docs/benchmarks.md.  With -v it also prints the CPU time each
# process of the stack spent per signature during the daemon run (from
# /proc/PID/stat, so it does not depend on what else the machine runs),
# and always how busy the machine was with other processes meanwhile
# (a run with other load is not a valid measurement).
#
# -r PRIO runs the whole stack and the bench tool (daemon run and ceiling
# alike) as SCHED_FIFO at PRIO, for a machine shared with other work:
# they then take the CPUs as if alone (less the kernel's 5 % RT reserve,
# which caps the daemon and the ceiling alike).  Say so with the figures.
#
#   perl t/sidecar/bench.pl [-c CONCURRENCY] [-d SECONDS] [-b BITS] [-p]
#                           [-a sha256|sha384|sha512] [-v] [-x CONF_LINE]
#                           [-r RT_PRIORITY]

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Getopt::Std;
use POSIX ();
use SigndTest;

my %o;
getopts('c:d:b:pa:vx:r:', \%o)
    or die "usage: $0 [-c N] [-d S] [-b BITS] [-p] [-a HASH] [-v] [-x LINE]\n";

my $t = SigndTest->new(workers => 0,
                       conf_extra => "log_level warn\n" . ($o{x} // ''));
$t->setup_user('bench1', bits => $o{b} // 2048);
my $tok = $t->token(sub => 'bench1', scope => 'sign');
SigndTest::write_file($t->dir . '/bench.tok', $tok);

my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());

sub cpu_ticks {
    my ($pid) = @_;
    my $s = eval { SigndTest::read_file("/proc/$pid/stat") } // return 0;
    $s =~ s/^.*\) //;
    my @f = split / /, $s;
    return $f[11] + $f[12];                 # utime + stime
}

sub machine_ticks {                         # (busy, total) of all CPUs
    my ($cpu) = SigndTest::read_file('/proc/stat') =~ /^cpu +(.*)$/m;
    my @f = split / /, $cpu;
    my $total = 0;
    $total += $_ for @f[0 .. 7];
    return ($total - $f[3] - $f[4], $total);
}

my $w = $t->worker_pids;
my %procs = (combiner => [ $t->signd_pid ], 'share-A workers' => $w->{a},
             'share-B workers' => $w->{b},
             'redis-server' => [ $t->{pids}{redis} ]);
my %before = map { $_ => [ map { cpu_ticks($_) } @{ $procs{$_} } ] }
             keys %procs;

my @cmd = ("$SigndTest::BUILD/hpki-signd-bench", '-s', $t->socket_path,
           '-u', 'bench1', '-t', $t->dir . '/bench.tok',
           '-c', $o{c} // 4, '-d', $o{d} // 10);
push @cmd, '-a', $o{a} if $o{a};
push @cmd, '-p' if $o{p};

if ($o{r}) {
    for my $pid (map { @$_ } values %procs) {
        system('chrt', '-f', '-p', $o{r}, $pid) == 0
            or die "chrt -f -p $o{r} $pid failed\n";
    }
    unshift @cmd, 'chrt', '-f', $o{r};
    print "sched:    SCHED_FIFO $o{r} for redis, hpki-signd and the bench\n";
}

my @m0 = machine_ticks();
my $bench = open my $out, '-|', @cmd or die "hpki-signd-bench: $!";
$procs{'bench client'} = [ $bench ];
$before{'bench client'} = [ 0 ];
my $text = '';
my %after;
while (my $line = <$out>) {
    print $line;
    $text .= $line;
    if ($line =~ /^ +[\d.]+ signatures\/s/ && $text =~ /: (\d+) signatures/)
    {
        # the daemon run is over: the ceiling runs next, in-process
        $text = $1;
        %after = map { $_ => [ map { cpu_ticks($_) } @{ $procs{$_} } ] }
                 keys %procs;
        my @m1 = machine_ticks();
        my $ours = 0;
        for my $name (keys %procs) {
            $ours += $after{$name}[$_] - $before{$name}[$_]
                for 0 .. $#{ $procs{$name} };
        }
        printf "machine:  other processes used %.0f%% of the CPUs during "
               . "the daemon run\n",
               100 * ($m1[0] - $m0[0] - $ours) / (($m1[1] - $m0[1]) || 1);
    }
}
close $out or die "hpki-signd-bench failed\n" . $t->signd_log;

if ($o{v} && %after && $text =~ /^(\d+)/) {
    my $n = $1 || 1;
    for my $name (sort keys %procs) {
        my $ticks = 0;
        $ticks += $after{$name}[$_] - $before{$name}[$_]
            for 0 .. $#{ $procs{$name} };
        printf "cpu:      %-16s %.3f ms per signature\n", $name,
               1e3 * $ticks / $hz / $n;
    }
}
