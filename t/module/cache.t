#!/usr/bin/perl

# hpki_token_cache: a verified token is answered from shared memory, without
# Redis, for "valid" after Redis last confirmed it. Redis stays the source of
# truth: a revocation there takes effect once the entry is stale, and every
# check the cache skips (signature, Redis) is still made for anything else.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Time::HiRes qw(sleep);

use Hpki::Test qw(jwt_claims);
use HpkiModule qw(gateway_conf link_card make_jwt);

my $t = Hpki::Test->new(need => ['module'])->start_redis;

$t->write_nginx_conf(gateway_conf(
    http => "    hpki_token_cache 64k valid=1s;\n",
    server => <<'CONF'))
        location = /prescribers {
            hpki_auth on;
            hpki_roles "Medical Doctor";
            hpki_whoami;
        }
CONF
    ->start_nginx;

plan tests => 2 * 10 + 3;

link_card($t, 'demo-doctor', 'doctor_auth');
link_card($t, 'demo-pharmacist', 'pharmacist_auth');

for my $pass (1, 2) {
    my $token = $t->login('doctor_auth');
    my $jti = jwt_claims($token)->{jti};

    is $t->http(GET => '/whoami', token => $token)->{status}, 200,
        "pass $pass: first check: 200";

    my $gets = redis_gets($t);
    my @again = map { $t->http(GET => '/whoami', token => $token) } 1 .. 5;
    is_deeply [ map { $_->{status} } @again ], [ (200) x 5 ],
        "pass $pass: checks within valid: 200";
    is $again[-1]{json}{sub}, 'demo-doctor',
        "pass $pass: ... with the cached subject";
    is $again[-1]{headers}{'x-role'}, 'Medical Doctor',
        "pass $pass: ... and role";
    ok redis_gets($t) - $gets < 5,
        "pass $pass: ... answered from the cache, not all from Redis";

    # what the cache must not skip
    is $t->http(GET => '/whoami', token => $token, cert => 'pharmacist_auth')
        ->{status}, 401, "pass $pass: cached bound token, another card: 401";

    my $ph = $t->login('pharmacist_auth');
    $t->http(GET => '/whoami', token => $ph);
    is $t->http(GET => '/prescribers', token => $ph)->{status}, 403,
        "pass $pass: cached token, role not allowed: 403";

    my ($h, $p, $s) = split /\./, $token;
    is $t->http(GET => '/whoami', token => "$h.$p." . reverse $s)->{status},
        401, "pass $pass: same claims, bad signature: 401";

    # revoked in Redis (by another gateway): refused once the entry is stale
    $t->redis('DEL', "hpki:tok:$jti");

    my $status;
    for (1 .. 50) {
        $status = $t->http(GET => '/whoami', token => $token)->{status};
        last if $status == 401;
        sleep 0.1;
    }
    is $status, 401, "pass $pass: revoked in Redis: 401 after valid";

    is $t->http(GET => '/whoami', token => $token)->{status}, 401,
        "pass $pass: and stays refused";
}

# a full zone drops the least recently used: every token still checks out
my @tokens = map { $t->login('doctor_auth') } 1 .. 300;
my @status = map { $t->http(GET => '/whoami', token => $_)->{status} } @tokens;
is scalar(grep { $_ == 200 } @status), 300, '300 tokens through a 64k zone';
is $t->http(GET => '/whoami', token => $tokens[0])->{status}, 200,
    'the first is still good (from Redis again)';
$t->error_log_unlike(qr/\[(alert|crit|emerg)\]/, 'no alert in the log');


sub redis_gets {
    my ($t) = @_;
    my $info = $t->redis('INFO', 'commandstats');
    return $info =~ /cmdstat_get:calls=(\d+)/ ? $1 : 0;
}
