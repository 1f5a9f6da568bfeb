#!/usr/bin/perl

# After Redis restarts, hpki-signd's processes find their connections dead:
# the first request must still be served (one retry on a new connection),
# not answered 503 once per process.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256);
use Time::HiRes qw(sleep);

use Hpki::Test qw(b64);
use HpkiModule qw(gateway_conf);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd(conf => "share_cache_ttl 1\n")
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor')
    ->write_nginx_conf(gateway_conf())
    ->start_nginx;

plan tests => 4;

my $token = $t->login('doctor_auth');
my $cert = $t->{enrolled}{'demo-doctor'}{cert};

sub sign {
    my ($d) = @_;
    return $t->http(POST => '/hpki/sign', token => $token,
        json => { hashes => [ b64($d) ] });
}

is sign(sha256('before'))->{status}, 200, 'signing before the restart';

$t->stop('redis');
$t->start_redis;

# the gateway's own connection comes back with backoff: wait for it
for (1 .. 100) {
    last if $t->http(GET => '/whoami', token => $token)->{status} == 200;
    sleep 0.1;
}
is $t->http(GET => '/whoami', token => $token)->{status}, 200,
    'the gateway is back';

# past the workers' share cache, so they read the store again
sleep 1.2;

my $d = sha256('after');
my $r = sign($d);
is $r->{status}, 200, 'the first sign after the restart: 200, not 503';
ok $t->verify_signature(cert => $cert, digest => $d,
    signature => $r->{json}{signatures}[0]), '... and it verifies';
