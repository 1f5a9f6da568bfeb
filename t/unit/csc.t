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
use lib "$FindBin::Bin/../lib";

use Hpki::Tap qw(run_tap);

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-csc";

-x $bin or BAIL_OUT("$bin missing: run make module-unit");

run_tap($bin);

done_testing();
