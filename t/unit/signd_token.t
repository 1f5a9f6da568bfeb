#!/usr/bin/perl
# Runs the C unit test build/t/signd_token (built by "make sidecar-unit").
use strict;
use warnings;
use File::Basename qw(dirname);
my $bin = dirname(__FILE__) . '/../../build/t/signd_token';
if (!-x $bin) {
    print "1..0 # SKIP $bin not built (make sidecar-unit)\n";
    exit 0;
}
exec $bin or die "exec $bin: $!";
