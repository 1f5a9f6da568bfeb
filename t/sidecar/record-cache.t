#!/usr/bin/perl
# The combiner's cache of public key records (docs/sidecar.md, "The record
# and the partials"): while Redis tracks the records it reads, a record is
# read once and reused until Redis reports a change or record_cache_ttl
# passes. A revocation, a hand edit, a deletion and a new certificate all
# act at the very next request; a lost tracking connection, an ACL that
# refuses tracking and record_cache_ttl 0 all mean a read per request.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use Time::HiRes qw(sleep);
use SigndTest;

my $dg = sha256('record cache');

# HGETALLs Redis has served so far (what an operator sees in INFO)
sub reads {
    my ($t) = @_;
    my (undef, $out) = $t->redis('INFO', 'commandstats');
    return $out =~ /cmdstat_hgetall:calls=(\d+)/ ? $1 : 0;
}

sub signs {
    my ($t, $pub, $r) = @_;
    return $r->{type} == 0x81
        && $t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0], 'sha256');
}

my $t = SigndTest->new(workers => 1);
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');

sub sign1 { $t->sign(user => 'doctor1', token => $token, digests => [$dg]) }

ok(signs($t, $pub, sign1()), 'signs (the record is read and kept)');
my $before = reads($t);
ok(signs($t, $pub, sign1()), 'signs again') for 1 .. 5;
is(reads($t) - $before, 0, 'five more signatures: no record read');
unlike($t->signd_log, qr/no tracking/, 'no warning about tracking');

# every change Redis reports acts at the next request, whoever made it

my ($rc, $out) = $t->admin('key', 'revoke', '--user', 'doctor1');
is($rc, 0, 'key revoke') or diag $out;
is(sign1()->{error}, 'no_key', 'revoked: no_key at the next request');

$t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');
ok(signs($t, $pub, sign1()), 'status set active by hand (redis-cli): signs');

my $d = $t->dir;
$t->issue_cert("$d/doctor1.csr", "$d/doctor1-2.crt");
($rc, $out) = $t->admin('cert', 'install', '--user', 'doctor1', '--cert',
                        "$d/doctor1-2.crt", '--chain', "$d/ca.pem");
is($rc, 0, 'a new certificate for the same key') or diag $out;
my $r = sign1();
ok(signs($t, $pub, $r), 'signs');
is($r->{fields}{CERT}[0], SigndTest::read_file("$d/doctor1-2.crt"),
   '... and the reply carries the new certificate');

$t->redis('RENAME', 'hpki:key:doctor1', 'hpki:key:doctor1-away');
is(sign1()->{error}, 'no_key', 'record renamed away: no_key at once');
$t->redis('RENAME', 'hpki:key:doctor1-away', 'hpki:key:doctor1');
ok(signs($t, $pub, sign1()), 'renamed back: signs');

# the tracking connection lost: nothing cached is trusted, and a change
# made right after is seen

ok(signs($t, $pub, sign1()), 'cached again');
$t->redis('CLIENT', 'KILL', 'TYPE', 'pubsub');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'revoked');
is(sign1()->{error}, 'no_key',
   'tracking connection killed, then revoked: no_key');
like($t->signd_log, qr/tracking connection failed/, '... logged');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');
ok(signs($t, $pub, sign1()), 'active again: signs (tracking made anew)');
$before = reads($t);
ok(signs($t, $pub, sign1()), 'signs') for 1 .. 3;
is(reads($t) - $before, 0, '... from the cache again');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'revoked');
is(sign1()->{error}, 'no_key', 'and a revocation still acts at once');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');

# record_cache_ttl bounds the reuse

$t->stop_signd;
$t->write_conf("record_cache_ttl 1\n");
$t->start_signd;
ok(signs($t, $pub, sign1()), 'record_cache_ttl 1: signs');
$before = reads($t);
sign1();
is(reads($t) - $before, 0, '... within the second: no read');
sleep 1.1;
ok(signs($t, $pub, sign1()), 'after it: signs');
is(reads($t) - $before, 1, '... with one read');

# record_cache_ttl 0: a read per request, as before the cache

$t->stop_signd;
$t->write_conf("record_cache_ttl 0\n");
$t->start_signd;
sign1();
$before = reads($t);
ok(signs($t, $pub, sign1()), 'record_cache_ttl 0: signs') for 1 .. 3;
is(reads($t) - $before, 3, '... three requests, three reads');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'revoked');
is(sign1()->{error}, 'no_key', '... revoked: no_key');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');

# a Redis user that may not subscribe: a warning, then a read per request

$t->stop_signd;
$t->redis('ACL', 'SETUSER', 'public', 'on', '>public-pass', '~hpki:key:*',
          '~hpki:user:*', '~hpki:cert:*', '+@all', '-subscribe');
SigndTest::write_file("$d/public.pass", "public-pass\n", 0600);
$t->write_conf("redis_user public\nredis_password_file $d/public.pass\n");
$t->start_signd;
ok(signs($t, $pub, sign1()), 'a user without SUBSCRIBE: signs');
like($t->signd_log, qr/no tracking of key records .*NOPERM/,
     '... with a warning that names the refusal');
$before = reads($t);
ok(signs($t, $pub, sign1()), 'signs') for 1 .. 2;
is(reads($t) - $before, 2, '... a read per request');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'revoked');
is(sign1()->{error}, 'no_key', '... revoked: no_key');

done_testing;
