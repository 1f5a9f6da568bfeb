#!/usr/bin/perl
# hpki-signd end to end: a generated split key, a certificate from a test
# CA, PKCS#1 v1.5 / PSS signatures over the socket checked with openssl,
# the reply fields, and the hash-chained audit log.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256 sha384 sha512);
use SigndTest;

my $t = SigndTest->new;
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');

# PING, twice on one connection

my $s = $t->connect;
for my $round (1, 2) {
    my $r = $t->request($s, SigndTest::frame(2));
    is($r->{type}, 0x82, "PING -> PONG (round $round)");
}

# one digest, PKCS#1 v1.5 SHA-256

my $dg = sha256("prescription 1");
my $r = $t->sign(socket => $s, user => 'doctor1', token => $token,
                 digests => [$dg], request_id => 'req-abc');
is($r->{type}, 0x81, 'SIGN -> SIGN_OK') or diag explain $r;
my $sig = $r->{fields}{SIGNATURE}[0];
is(length $sig, 256, 'signature is left-padded to 256 bytes');
ok($t->verify($pub, $dg, $sig, 'sha256'),
   'openssl pkeyutl -verify accepts the split-key signature');
like($r->{fields}{CERT}[0], qr/^-----BEGIN CERTIFICATE-----/, 'CERT');
is($r->{fields}{CERT}[0], SigndTest::read_file($t->dir . '/doctor1.crt'),
   'CERT is the installed second certificate');
like($r->{fields}{KEY_ID}[0], qr/^[0-9a-f]{32}$/, 'KEY_ID');
is(scalar @{ $r->{fields}{CHAIN} }, 1, 'one CHAIN certificate');
is($r->{fields}{CHAIN}[0], SigndTest::read_file($t->dir . '/ca.pem'),
   'CHAIN is the CA');

# several digests in one request, in order

my @dgs = map { sha256("doc $_") } 1 .. 5;
$r = $t->sign(socket => $s, user => 'doctor1', token => $token,
              digests => \@dgs);
is($r->{type}, 0x81, 'five digests signed');
is(scalar @{ $r->{fields}{SIGNATURE} }, 5, 'five signatures');
my $all = 1;
for my $i (0 .. 4) {
    $all &&= $t->verify($pub, $dgs[$i], $r->{fields}{SIGNATURE}[$i],
                        'sha256');
}
ok($all, 'each signature verifies against its own digest, in order');

# the same digest twice: PKCS#1 v1.5 is deterministic despite blinding

my $r2 = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
is($r2->{fields}{SIGNATURE}[0], $sig, 'PKCS#1 v1.5 is deterministic');

# SHA-384, SHA-512, PSS

for my $case ([2, 'sha384', \&sha384], [3, 'sha512', \&sha512],
              [1, 'sha256', \&sha256])
{
    my ($h, $md, $fn) = @$case;
    my $d = $fn->("pss $md");
    for my $pss (0, 1) {
        my $x = $t->sign(user => 'doctor1', token => $token, hash => $h,
                         sig => $pss ? 2 : 1, digests => [$d]);
        is($x->{type}, 0x81, "$md " . ($pss ? 'PSS' : 'PKCS#1') . ' signed')
            or diag explain $x;
        ok($t->verify($pub, $d, $x->{fields}{SIGNATURE}[0] // '', $md,
                      $pss),
           "$md " . ($pss ? 'PSS' : 'PKCS#1 v1.5') . ' verifies');
    }
}

my $p1 = $t->sign(user => 'doctor1', token => $token, sig => 2,
                  digests => [$dg]);
my $p2 = $t->sign(user => 'doctor1', token => $token, sig => 2,
                  digests => [$dg]);
isnt($p1->{fields}{SIGNATURE}[0], $p2->{fields}{SIGNATURE}[0],
     'PSS salts differ between requests');

# 64 digests is the maximum; 65 is refused

my @many = map { sha256("many $_") } 1 .. 64;
$r = $t->sign(user => 'doctor1', token => $token, digests => \@many);
is(scalar @{ $r->{fields}{SIGNATURE} // [] }, 64, '64 digests signed');
$r = $t->sign(user => 'doctor1', token => $token,
              digests => [@many, sha256('one more')]);
is($r->{error}, 'bad_request', '65 digests: bad_request');

# audit log

my $audit = SigndTest::read_file($t->audit_log);
my @lines = split /\n/, $audit;
like($lines[0], qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z user=doctor1 /,
     'audit line starts with time and user');
like($lines[0], qr/ kid=[0-9a-f]{32} ver=1 jti=jti-[0-9a-f]+ req=req-abc /,
     'audit line: key id, version, token id, request id');
like($lines[0], qr/ alg=sha256-pkcs1 digest=\Q@{[unpack 'H*', $dg]}\E /,
     'audit line: algorithm and digest');
like($lines[0], qr/ result=ok prev=0{64}$/, 'first line: prev is zeros');
ok((grep { / alg=sha384-pss / } @lines), 'PSS with SHA-384 audited');
unlike($t->signd_log, qr/\Q@{[unpack 'H*', $dg]}\E/,
       'the error log never carries digests');
unlike($t->signd_log, qr/\Q$token\E/, 'the error log never carries tokens');

my ($rc, $out) = $t->admin('audit', 'verify');
is($rc, 0, 'audit verify: chain ok');
like($out, qr/audit: \d+ lines, chain ok/, 'audit verify output');

# tamper with one line in the middle: the chain breaks there

my $n = int(@lines / 2);
(my $forged = $lines[$n]) =~ s/result=ok/result=ko/;
my @copy = @lines;
$copy[$n] = $forged;
SigndTest::write_file($t->dir . '/forged.log', join("\n", @copy) . "\n");
($rc, $out) = $t->admin('audit', 'verify', '--file', $t->dir . '/forged.log');
isnt($rc, 0, 'audit verify fails on a modified line');
like($out, qr/chain broken at line @{[$n + 2]}\b/,
     'reported at the line after the modified one');

splice @copy, $n, 1;
$copy[$n - 1] = $lines[$n - 1];
SigndTest::write_file($t->dir . '/cut.log', join("\n", @copy) . "\n");
($rc, $out) = $t->admin('audit', 'verify', '--file', $t->dir . '/cut.log');
isnt($rc, 0, 'audit verify fails on a deleted line');

# the chain continues across a restart

$t->stop_signd;
$t->start_signd;
$r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
is($r->{type}, 0x81, 'signs after a restart');
($rc, $out) = $t->admin('audit', 'verify');
is($rc, 0, 'chain still ok after a restart') or diag $out;

is((stat $t->audit_log)[2] & 07777, 0600, 'audit log is mode 0600');

done_testing();
