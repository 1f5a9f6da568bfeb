package Hpki::Tap;

# Runs a C unit test program (TAP on its stdout) as one subtest: each of
# its lines becomes a test here ("ok N # skip REASON" a skipped one), "#"
# lines are shown, and its exit status and plan are checked too.

use strict;
use warnings;

use Exporter qw(import);
use Test::More;

our @EXPORT_OK = qw(run_tap);

sub run_tap {
    my ($prog, @args) = @_;

    subtest "$prog @args" => sub {
        my ($plan, $n) = (undef, 0);

        open(my $fh, '-|', $prog, @args) or die "$prog: $!";

        while (my $line = <$fh>) {
            chomp $line;

            if ($line =~ /^ok (\d+) # skip\b ?(.*)$/i) {
                $n++;
              SKIP: { skip($2 || "test $1", 1); }

            } elsif ($line =~ /^(not )?ok (\d+)(?: - (.*))?$/) {
                $n++;
                ok(!defined $1, $3 // "test $2");

            } elsif ($line =~ /^1\.\.(\d+)$/) {
                $plan = $1;

            } elsif ($line =~ /^#/) {
                diag($line);
            }
        }

        close($fh);
        is($? >> 8, 0, "$prog exit status");
        ok(defined $plan && $plan == $n, "plan matches ($n tests)");
    };
}

1;
