#!/usr/bin/perl
# A corrupted share never yields a bad signature: one flipped bit in
# store A fails (GCM) with sign_failed; a share that decrypts but is wrong
# is caught by the combiner's s^e == EM check; an ALARM is logged.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use SigndTest;

my $t = SigndTest->new;
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');
my $dg = sha256('corrupt');

my $r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
ok($t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0], 'sha256'),
   'signs before corruption');

# Workers keep a decrypted share once read (share_cache_ttl), so the
# corruption goes into a version no worker has read yet: a refresh makes
# version 2, and every sign attempt below reads it from the store (a share
# that fails to open is never cached).  A share corrupted after it was
# cached: see the end of this file.

my ($rc, $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
is($rc, 0, 'refresh to version 2, not yet read by any worker') or diag $out;

# flip one bit of the ciphertext in store A, for several positions

(undef, my $len) = $t->redis('STRLEN', 'hpki:a:doctor1:2');
$len += 0;
ok($len > 200, "share A blob is $len bytes");

for my $pos (0, 5, 20, int($len / 2), $len - 1) {
    for my $bit (0, 7) {
        my (undef, $orig) = $t->redis('GETBIT', 'hpki:a:doctor1:2',
                                      8 * $pos + $bit);
        chomp $orig;
        $t->redis('SETBIT', 'hpki:a:doctor1:2', 8 * $pos + $bit, 1 - $orig);
        $r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
        is($r->{error}, 'sign_failed',
           "bit $bit of byte $pos flipped: sign_failed");
        ok(!$r->{fields}{SIGNATURE}, '... and no signature');
        $t->redis('SETBIT', 'hpki:a:doctor1:2', 8 * $pos + $bit, $orig);
    }
}

like($t->signd_log, qr/ALARM store-a: share for "doctor1" version 2 fails/,
     'ALARM logged by the share-A worker');

$r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
ok($t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0] // '', 'sha256'),
   'signs again once the bit is restored');

# a share moved to another user's key fails too (AAD binds the user)

$t->setup_user('doctor2');
my (undef, $b2) = $t->redis('--raw', 'DUMP', 'hpki:a:doctor2:1');
$t->redis('RENAME', 'hpki:a:doctor2:1', 'hpki:a:doctor2:1.saved');
$t->redis('COPY', 'hpki:a:doctor1:2', 'hpki:a:doctor2:1');
$r = $t->sign(user => 'doctor2', token => $t->token(sub => 'doctor2'),
              digests => [$dg]);
is($r->{error}, 'sign_failed', "doctor1's share under doctor2: sign_failed");
$t->redis('DEL', 'hpki:a:doctor2:1');
$t->redis('RENAME', 'hpki:a:doctor2:1.saved', 'hpki:a:doctor2:1');

# a tampered public record (another modulus): the workers refuse

my (undef, $n1) = $t->redis('--raw', 'HGET', 'hpki:key:doctor1', 'n');
my (undef, $n2) = $t->redis('--raw', 'HGET', 'hpki:key:doctor2', 'n');
chomp($n1, $n2);
$t->redis('HSET', 'hpki:key:doctor1', 'n', $n2);
$r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
is($r->{error}, 'sign_failed', 'record with a foreign modulus: sign_failed');
like($t->signd_log, qr/belongs to another modulus/, '... ALARM logged');
$t->redis('HSET', 'hpki:key:doctor1', 'n', $n1);

# a share that decrypts fine but is wrong (fault hook): the combined
# signature fails its check and is withheld

{
    local $ENV{HPKI_ADMIN_FAULT_WRONG_SHARE_A} = 1;
    ($rc, $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
    is($rc, 0, 'refresh with a wrong share A written') or diag $out;
}
$r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
is($r->{error}, 'sign_failed', 'wrong but authentic share: sign_failed');
ok(!$r->{fields}{SIGNATURE}, '... no signature released');
like($t->signd_log, qr/ALARM combined signature for "doctor1" .* does not verify; withheld/,
     'ALARM logged by the combiner');

my $audit = SigndTest::read_file($t->audit_log);
like($audit, qr/user=doctor1 .* result=sign_failed /, 'failure audited');

# one bit of store B too

$t->admin('key', 'refresh', '--user', 'doctor2');
$t->redis('SETBIT', 'hpki:b:doctor2:2', 100, 1);
$t->redis('SETBIT', 'hpki:b:doctor2:2', 101, 0);
my (undef, $same) = $t->redis('GETRANGE', 'hpki:b:doctor2:2', 12, 12);
$r = $t->sign(user => 'doctor2', token => $t->token(sub => 'doctor2'),
              digests => [$dg]);
ok($r->{error} eq 'sign_failed' || $r->{type} == 0x81
   && $t->verify($t->dir . '/doctor2.pub.pem', $dg,
                 $r->{fields}{SIGNATURE}[0], 'sha256'),
   'store B bit change: sign_failed, never a bad signature');

done_testing();
