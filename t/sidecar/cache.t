#!/usr/bin/perl
# The caches of hpki-signd (docs/sidecar.md, "Caches"): a verified token
# and a decrypted share are reused, yet a revoked or deleted key stops
# signing at the very next request, a refresh or a new key under the same
# user is picked up at once, a cached token is still checked against the
# user, its scope and its exp on every use (by the combiner and by each
# share worker: a worker with the token cached still refuses another
# user), and a share corrupted in the store after it was cached never
# yields a bad signature and is read again after share_cache_ttl.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use POSIX ();
use Socket;
use Time::HiRes qw(sleep time);
use SigndTest;

my $t = SigndTest->new(workers => 1, conf_extra => "share_cache_ttl 2\n");
my $pub = $t->setup_user('doctor1');
$t->setup_user('doctor2');
my $token = $t->token(sub => 'doctor1');
my $dg = sha256('cache');

sub sign1 {
    my (%o) = @_;
    return $t->sign(user => $o{user} // 'doctor1',
                    token => $o{token} // $token, digests => [$dg]);
}

sub good {
    my ($r, $pubkey) = @_;
    return $r->{type} == 0x81
        && $t->verify($pubkey // $pub, $dg, $r->{fields}{SIGNATURE}[0],
                      'sha256');
}

# warm: one worker per share, so every request below uses the same caches

my $r = sign1();
ok(good($r), 'signs (token and shares now cached)');
my $orig = $r->{fields}{SIGNATURE}[0];
ok(good(sign1()), 'signs again from the caches');

# the cached token is still checked against USER on every use

is(sign1(user => 'doctor2')->{error}, 'unauthorized',
   "cached doctor1 token for doctor2's key: unauthorized");

# revoke: the combiner's public-record check stops it at the next request

my ($rc, $out) = $t->admin('key', 'revoke', '--user', 'doctor1');
is($rc, 0, 'key revoke') or diag $out;
is(sign1()->{error}, 'no_key', 'revoked with warm caches: no_key at once');
$t->redis('HSET', 'hpki:key:doctor1', 'status', 'active');
ok(good(sign1()), 'status active again (by hand): signs');

# refresh: the new version is read, the signature is the same (PKCS#1 v1.5)

($rc, $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
is($rc, 0, 'key refresh') or diag $out;
$r = sign1();
is($r->{fields}{SIGNATURE}[0], $orig,
   'after a refresh with warm caches: the same signature');

# a share corrupted in the store after it was cached: still a correct
# signature (the cached copy), and sign_failed once it is read again

$t->redis('SETBIT', 'hpki:a:doctor1:2', 200,
          1 - (($t->redis('GETBIT', 'hpki:a:doctor1:2', 200))[1] + 0));
$r = sign1();
ok(!$r->{error} || $r->{error} eq 'sign_failed',
   'corrupted after caching: no wrong reply');
ok(good($r), '... a good signature from the cached share') if !$r->{error};
sleep 2.2;
$r = sign1();
is($r->{error}, 'sign_failed',
   'after share_cache_ttl the share is read again: sign_failed');
ok(!$r->{fields}{SIGNATURE}, '... no signature');
$t->redis('SETBIT', 'hpki:a:doctor1:2', 200,
          1 - (($t->redis('GETBIT', 'hpki:a:doctor1:2', 200))[1] + 0));
ok(good(sign1()), 'bit restored: signs');

# delete: no_key at once; a new key under the same user and version 1
# (another modulus) signs at once, the cached share of the old key unused

($rc, $out) = $t->admin('key', 'delete', '--user', 'doctor1');
is($rc, 0, 'key delete') or diag $out;
is(sign1()->{error}, 'no_key', 'deleted with warm caches: no_key at once');
rename $pub, $t->dir . '/doctor1-old.pub.pem';
$pub = $t->dir . '/doctor1-old.pub.pem';
my $pub2 = $t->setup_user('doctor1');
$r = sign1();
ok(good($r, $pub2), 'new key for the same user: signs with the new key');
ok(!good($r, $pub), '... not with the old one');

# a token past exp + leeway is refused even though it is cached

my $short = $t->token(sub => 'doctor1', exp => int(time) - 58);
ok(good(sign1(token => $short), $pub2), 'token 2 s before exp + leeway');
sleep 3;
is(sign1(token => $short)->{error}, 'unauthorized',
   'the same token, now past exp + leeway: unauthorized');

# a share worker by itself (as if the combiner were compromised): with
# doctor1's token cached it still refuses doctor2's key

sub partial_frame {
    my ($job, $user, $tok) = @_;
    my (undef, $nhex) = $t->redis('--raw', 'HGET', "hpki:key:$user", 'n');
    my (undef, $ver) = $t->redis('--raw', 'HGET', "hpki:key:$user",
                                 'version');
    chomp($nhex, $ver);
    my $n = pack('H*', (length($nhex) % 2 ? '0' : '') . $nhex);
    return SigndTest::frame(0x40, 0x30 => pack('N', $job),
                            USER => $user, 0x31 => pack('N', $ver),
                            TOKEN => $tok, 0x32 => $n,
                            0x33 => "\x02" x 16);
}

socketpair(my $cs, my $ws, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die $!;
my $pid = fork // die;
if ($pid == 0) {
    close $cs;
    POSIX::dup2(fileno($ws), 3) or POSIX::_exit(127);
    open STDERR, '>>', $t->dir . '/worker.log';
    exec "$SigndTest::BUILD/hpki-signd", '-c', $t->conf, '--worker', 'a';
    POSIX::_exit(127);
}
close $ws;

$r = $t->request($cs, partial_frame(1, 'doctor1', $token));
is($r->{type}, 0xC0, 'worker alone: PARTIAL for doctor1 with his token');
$r = $t->request($cs, partial_frame(2, 'doctor1', $token));
is($r->{type}, 0xC0, '... again, token and share cached');
$r = $t->request($cs, partial_frame(3, 'doctor2', $token));
is($r->{error}, 'unauthorized',
   "worker alone: doctor1's cached token for doctor2: unauthorized");
$r = $t->request($cs, partial_frame(4, 'doctor2',
                                    $t->token(sub => 'doctor2')));
is($r->{type}, 0xC0, "... doctor2's own token: PARTIAL_OK");

# SIGTERM: the worker wipes its caches and exits 0 at once

my $t0 = time;
kill 'TERM', $pid;
waitpid $pid, 0;
is($? >> 8, 0, 'worker exits 0 on SIGTERM');
ok(time - $t0 < 2, 'promptly');
close $cs;

is(SigndTest::exit_code($t->stop_signd), 0, 'daemon drains and exits 0');

done_testing();
