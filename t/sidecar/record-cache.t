#!/usr/bin/perl
# The combiner's cache of public key records (docs/sidecar.md, "The record
# and the partials"): while Redis tracks the records it reads, a record is
# read once and reused until Redis reports a change or record_cache_ttl
# passes. A revocation, a hand edit, a rename, a flush and a new
# certificate all act at the very next request; a lost tracking
# connection, an ACL that refuses tracking and record_cache_ttl 0 all mean
# a read per request.

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

# record reads over n good signatures
sub reads_over {
    my ($n, $label) = @_;
    my $before = reads($t);
    ok(signs($t, $pub, sign1()), $label) for 1 .. $n;
    return reads($t) - $before;
}

# a revocation by hand acts at the next request; then active again
sub revocation_acts {
    my ($label) = @_;
    $t->redis('HSET', 'hpki:key:doctor1', 'status', 'revoked');
    is(sign1()->{error}, 'no_key', $label);
    $t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');
}

sub restart_with {
    my ($conf) = @_;
    $t->stop_signd;
    $t->write_conf($conf);
    $t->start_signd;
}

ok(signs($t, $pub, sign1()), 'signs (the record is read and kept)');
is(reads_over(5, 'signs again'), 0, 'five more signatures: no record read');
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

ok(signs($t, $pub, sign1()), 'signs from the cache');
$t->redis('-n', '1', 'FLUSHDB');
is(reads_over(1, 'signs'), 1,
   'a flush (even of another database): the next request reads');

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
is(reads_over(3, 'signs'), 0, '... from the cache again');
revocation_acts('and a revocation still acts at once');

# record_cache_ttl bounds the reuse

restart_with("record_cache_ttl 1\n");
ok(signs($t, $pub, sign1()), 'record_cache_ttl 1: signs');
is(reads_over(1, 'signs'), 0, '... within the second: no read');
sleep 1.1;
is(reads_over(1, 'after it: signs'), 1, '... with one read');

# record_cache_ttl 0: a read per request, as before the cache

restart_with("record_cache_ttl 0\n");
sign1();
is(reads_over(3, 'record_cache_ttl 0: signs'), 3,
   '... three requests, three reads');
revocation_acts('... revoked: no_key');

# a Redis user that may not subscribe: a warning, then a read per request

$t->redis('ACL', 'SETUSER', 'public', 'on', '>public-pass', '~hpki:key:*',
          '~hpki:user:*', '~hpki:cert:*', '+@all', '-subscribe');
SigndTest::write_file("$d/public.pass", "public-pass\n", 0600);
restart_with("redis_user public\nredis_password_file $d/public.pass\n");
ok(signs($t, $pub, sign1()), 'a user without SUBSCRIBE: signs');
like($t->signd_log, qr/no tracking of key records .*NOPERM/,
     '... with a warning that names the refusal');
is(reads_over(2, 'signs'), 2, '... a read per request');
revocation_acts('... revoked: no_key');

done_testing;
