#!/usr/bin/perl

# The module fails closed when Redis is down or hangs, and recovers when it
# comes back. A bad configuration is refused at start, not at request time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Time::HiRes qw(sleep time);

use Hpki::Test;
use HpkiModule qw(gateway_conf link_card);

my $t = Hpki::Test->new(need => ['module'])
    ->start_redis
    ->write_nginx_conf(gateway_conf())
    ->start_nginx;

plan tests => 19;

link_card($t, 'demo-doctor', 'doctor_auth');
my $token = $t->login('doctor_auth');

is $t->http(GET => '/whoami', token => $token)->{status}, 200,
    'Redis up: 200';


# --- Redis killed: 503 at once, never a pass --------------------------------

$t->stop('redis');

my $r = $t->http(GET => '/whoami', token => $token);
is $r->{status}, 503, 'Redis down: token check 503';
is $r->{json}{error}, 'temporarily_unavailable', 'Redis down: JSON error';

$r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 503, 'Redis down: login 503';
is $r->{json}{error}, 'temporarily_unavailable', 'Redis down: login JSON';

$t->error_log_like(qr/hpki: redis .* (not connected|connection lost)/,
    'Redis down: the log says so');

# the AOF brings the token state back with Redis; the worker reconnects
$t->start_redis;

my $status = wait_status($t, $token, 200);
is $status, 200, 'Redis back: the same token passes again';
$t->error_log_like(qr/hpki: redis .*: connected/, 'the log shows it');


# --- Redis hangs (SIGSTOP): 503 when hpki_redis_timeout fires ---------------

kill 'STOP', $t->pid('redis');

my @hung = map { $t->http(GET => '/whoami', token => $token) } 1 .. 2;
is_deeply [ map { $_->{status} } @hung ], [503, 503],
    'Redis hung: every request gets 503';
is $hung[0]{json}{error}, 'temporarily_unavailable', 'Redis hung: JSON';
$t->error_log_like(qr/hpki: redis .* timed out/, 'Redis hung: timeout logged');

kill 'CONT', $t->pid('redis');

is wait_status($t, $token, 200), 200, 'Redis resumed: 200 again';

# the worker is alive and answering: nothing hung behind the stalled reply
is $t->http(GET => '/whoami')->{status}, 401,
    'no token still 401 (never a pass) after the faults';


# --- configuration errors ----------------------------------------------------

my $c = Hpki::Test->new(need => ['module']);

$c->write_nginx_conf(gateway_conf() =~ s/^\s*hpki_token_key .*$//mr);
my $rc = $c->nginx_test_conf;
isnt $rc->{rc}, 0, 'hpki_auth without hpki_token_key: nginx -t fails';
like $rc->{err} . $c->error_log, qr/hpki_token_key/, '... and names it';

$c->write_nginx_conf(gateway_conf(sign => 'hpki_sign_pass hpki_signd;')
    =~ s/hpki_auth on;\s*(hpki_sign_pass)/$1/r);
$rc = $c->nginx_test_conf;
isnt $rc->{rc}, 0, 'hpki_sign_pass without hpki_auth: nginx -t fails';
like $rc->{err} . $c->error_log, qr/need "hpki_auth on"/, '... and says so';

$c->write_nginx_conf(gateway_conf(
    http => "    hpki_token_key %%PKI%%/server.pem kid=bad;\n"));
$rc = $c->nginx_test_conf;
isnt $rc->{rc}, 0, 'a certificate as token key: nginx -t fails';
like $rc->{err} . $c->error_log, qr/cannot load token key/, '... and says so';


# poll (bounded) until the status comes back; no timing is asserted

sub wait_status {
    my ($t, $token, $want) = @_;
    my $status;
    for (1 .. 100) {
        $status = $t->http(GET => '/whoami', token => $token)->{status};
        last if $status == $want;
        sleep 0.1;
    }
    return $status;
}
