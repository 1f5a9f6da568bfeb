#!/usr/bin/perl

# Unit tests of ngx_http_hpki_webauthn.c: t/unit/webauthn_cases.py makes
# WebAuthn inputs with the software authenticator of the module tests
# (good ones, and one of each defect), then build/t/unit-webauthn checks
# each verdict (TAP).
#
# Build first: make module-unit.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-webauthn";
my $py = '/usr/bin/python3';

if (system("$py -c 'import cbor2, cryptography' 2>/dev/null") != 0) {
    print "1..0 # SKIP python3-cbor2 and python3-cryptography are needed\n";
    exit 0;
}

-x $bin or die "$bin missing: run make module-unit\n";

my $dir = tempdir(CLEANUP => 1);
system($py, "$FindBin::Bin/webauthn_cases.py", "$dir/cases.json") == 0
    or die "webauthn_cases.py failed\n";

exec $bin, "$dir/cases.json";
