#!/usr/bin/perl
# An imported key, split into two shares: the daemon's PKCS#1 v1.5
# signature equals `openssl pkeyutl -sign` with the whole key, byte for
# byte, for RSA 2048/3072/4096 and SHA-256/384/512; PSS verifies.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256 sha384 sha512);
use SigndTest;

my $t = SigndTest->new;
my $d = $t->dir;

my %fn = (sha256 => \&sha256, sha384 => \&sha384, sha512 => \&sha512);
my %id = (sha256 => 1, sha384 => 2, sha512 => 3);

for my $bits (2048, 3072, 4096) {
    my $user = "imp$bits";
    my $key = "$d/$user.key";

    # 2048 as traditional "RSA PRIVATE KEY", the others as PKCS#8
    my ($rc, $out) = SigndTest::run_cmd('openssl', 'genpkey', '-algorithm',
                                        'RSA', '-pkeyopt',
                                        "rsa_keygen_bits:$bits", '-out',
                                        $key);
    die $out if $rc;
    if ($bits == 2048) {
        ($rc, $out) = SigndTest::run_cmd('openssl', 'rsa', '-in', $key,
                                         '-traditional', '-out', "$key.rsa");
        die $out if $rc;
        $key = "$key.rsa";
    }
    my $before = SigndTest::read_file($key);

    my $pub = $t->setup_user($user, import => $key);
    is(SigndTest::read_file($key), $before,
       "RSA-$bits: import leaves the key file as it was");

    my $token = $t->token(sub => $user);

    for my $md ('sha256', 'sha384', 'sha512') {
        my $dg = $fn{$md}->("import $bits $md");
        my $r = $t->sign(user => $user, token => $token, hash => $id{$md},
                         digests => [$dg]);
        my $sig = $r->{fields}{SIGNATURE}[0] // '';

        SigndTest::write_file("$d/in.dgst", $dg);
        ($rc, $out) = SigndTest::run_cmd('openssl', 'pkeyutl', '-sign',
                                         '-inkey', $key, '-in', "$d/in.dgst",
                                         '-out', "$d/whole.sig", '-pkeyopt',
                                         "digest:$md");
        die $out if $rc;
        my $whole = SigndTest::read_file("$d/whole.sig");

        is(length $sig, $bits / 8, "RSA-$bits $md: modulus-length output");
        ok($sig eq $whole,
           "RSA-$bits $md: split signature == openssl pkeyutl -sign");

        $r = $t->sign(user => $user, token => $token, hash => $id{$md},
                      sig => 2, digests => [$dg]);
        ok($t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0] // '', $md, 1),
           "RSA-$bits $md: PSS verifies with openssl pkeyutl -verify");
    }

    ($rc, $out) = $t->admin('key', 'show', '--user', $user);
    like($out, qr/"bits": $bits/, "RSA-$bits: key show bits");
}

# an encrypted key is refused, not prompted for

my ($rc, $out) = SigndTest::run_cmd('openssl', 'genpkey', '-algorithm', 'RSA',
                                    '-pkeyopt', 'rsa_keygen_bits:2048',
                                    '-aes256', '-pass', 'pass:secret',
                                    '-out', "$d/enc.key");
die $out if $rc;
($rc, $out) = $t->admin('key', 'import', '--user', 'enc', '--key',
                        "$d/enc.key");
isnt($rc, 0, 'encrypted key refused');

# generated keys of 3072 and 4096 bits sign too

for my $bits (3072, 4096) {
    my $pub = $t->setup_user("gen$bits", bits => $bits);
    my $dg = sha256("gen $bits");
    my $r = $t->sign(user => "gen$bits", token => $t->token(sub => "gen$bits"),
                     digests => [$dg]);
    ok($t->verify($pub, $dg, $r->{fields}{SIGNATURE}[0] // '', 'sha256'),
       "generated RSA-$bits signs");
}

($rc, $out) = $t->admin('key', 'generate', '--user', 'odd', '--bits', '1024');
isnt($rc, 0, '1024-bit keys refused');

done_testing();
