#!/usr/bin/perl

# Unit tests of ngx_http_hpki_csc_request.c: runs build/t/unit-csc (TAP),
# the CSC API v2 request bodies of credentials/list, credentials/info,
# credentials/authorize and signatures/signHash, each valid form and each
# refusal with the description a client gets.
#
# Build first: make -f t/unit/unit.mk module-unit (or make module-unit).

use strict;
use warnings;

use Test::More;
use FindBin;

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-csc";

-x $bin or BAIL_OUT("$bin missing: run make module-unit");

my ($plan, $n) = (undef, 0);

open(my $fh, '-|', $bin) or die "$bin: $!";

while (my $line = <$fh>) {
    chomp $line;

    if ($line =~ /^(not )?ok (\d+)(?: - (.*))?$/) {
        $n++;
        ok(!defined $1, $3 // "test $2");

    } elsif ($line =~ /^1\.\.(\d+)$/) {
        $plan = $1;

    } elsif ($line =~ /^#/) {
        diag($line);
    }
}

close($fh);
is($? >> 8, 0, 'unit-csc exit status');
ok(defined $plan && $plan == $n, "plan matches ($n tests)");

done_testing();
