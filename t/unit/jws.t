#!/usr/bin/perl

# Unit tests of ngx_http_hpki_jws.c: runs build/t/unit-jws (TAP), then checks
# interoperability with openssl(1): tokens we sign verify with
# "openssl dgst -sha256 -verify" over the signing input, tokens signed by
# openssl verify with us, an HS256 token keyed with the RSA public key is
# refused, and kid/JWKS values match openssl's view of the keys.
#
# Build first: make -f t/unit/unit.mk module-unit (or make module-unit).

use strict;
use warnings;

use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Temp qw(tempdir);
use JSON::PP;
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url decode_base64url);

use Hpki::Tap qw(run_tap);

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-jws";

-x $bin or BAIL_OUT("$bin missing: run make module-unit");

sub run {
    my (@cmd) = @_;
    open(my $fh, '-|', @cmd) or die "@cmd: $!";
    local $/;
    my $out = <$fh> // '';
    close($fh);
    return wantarray ? ($out, $? >> 8) : $out;
}

sub openssl {
    my $out = `openssl @_ 2>&1`;
    $? == 0 or die "openssl @_: $out";
    return $out;
}

sub spew {
    my ($file, $data) = @_;
    open(my $fh, '>:raw', $file) or die "$file: $!";
    print $fh $data;
    close($fh);
}

sub slurp {
    my ($file) = @_;
    open(my $fh, '<:raw', $file) or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# ECDSA signature: raw r||s <-> DER SEQUENCE { INTEGER r, INTEGER s }

sub der_int {
    my ($v) = @_;
    $v =~ s/^\x00+//;
    $v = "\x00" if $v eq '';
    $v = "\x00$v" if ord($v) & 0x80;
    return "\x02" . chr(length $v) . $v;
}

sub raw_to_der {
    my ($raw) = @_;
    my $body = der_int(substr($raw, 0, 32)) . der_int(substr($raw, 32, 32));
    return "\x30" . chr(length $body) . $body;
}

sub der_to_raw {
    my ($der) = @_;
    my ($rl) = unpack('x3 C', $der);
    my $r = substr($der, 4, $rl);
    my ($sl) = unpack('C', substr($der, 5 + $rl, 1));
    my $s = substr($der, 6 + $rl, $sl);
    s/^\x00+// for $r, $s;
    return ("\x00" x (32 - length $r)) . $r . ("\x00" x (32 - length $s)) . $s;
}

run_tap($bin);

my $d = tempdir(CLEANUP => 1);

openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $d/rsa.pem");
openssl("pkey -in $d/rsa.pem -pubout -out $d/rsa.pub");
openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
    . " -out $d/ec.pem");
openssl("pkey -in $d/ec.pem -pubout -out $d/ec.pub");

for my $k (['RS256', 'rsa'], ['ES256', 'ec']) {
    my ($alg, $name) = @$k;

    # ours -> openssl

    my $token = run($bin, '--sign', "$d/$name.pem");
    chomp $token;
    my ($h, $p, $s) = split(/\./, $token, -1);

    ok(defined $s && $s ne '', "$alg: token has three parts");

    my $header = decode_json(decode_base64url($h));
    is($header->{alg}, $alg, "$alg: header alg");
    is($header->{kid}, 'interop', "$alg: header kid");

    my $sig = decode_base64url($s);
    is(length $sig, $alg eq 'ES256' ? 64 : 256, "$alg: signature length");
    $sig = raw_to_der($sig) if $alg eq 'ES256';

    spew("$d/input", "$h.$p");
    spew("$d/sig", $sig);

    my ($out, $rc) = run('sh', '-c', "openssl dgst -sha256 -verify $d/$name.pub"
                         . " -signature $d/sig $d/input 2>&1");
    like($out, qr/^Verified OK/,
         "$alg: openssl dgst -verify accepts our token");

    spew("$d/input", "$h.${p}x");
    ($out, $rc) = run('sh', '-c', "openssl dgst -sha256 -verify $d/$name.pub"
                      . " -signature $d/sig $d/input 2>&1");
    isnt($rc, 0, "$alg: openssl refuses a changed signing input");

    # openssl -> ours

    $h = encode_base64url(qq({"alg":"$alg","typ":"JWT"}));
    $p = encode_base64url(encode_json({ sub => 'user-2', iss => 'x' }));
    spew("$d/input", "$h.$p");
    openssl("dgst -sha256 -sign $d/$name.pem -out $d/sig $d/input");
    $sig = slurp("$d/sig");
    $sig = der_to_raw($sig) if $alg eq 'ES256';
    $token = "$h.$p." . encode_base64url($sig);

    ($out, $rc) = run($bin, '--verify', "$d/$name.pub", $token);
    is($rc, 0, "$alg: openssl-signed token verifies");
    like($out, qr/"sub":"user-2"/, "$alg: claims returned");

    ($out, $rc) = run($bin, '--verify', "$d/$name.pub", $token . 'A');
    like($out, qr/^error: bad signature/, "$alg: changed signature refused");

    ($out, $rc) = run($bin, '--verify', "$d/$name.pub",
                      "$h." . encode_base64url('{"sub":"admin"}') . '.'
                      . encode_base64url($sig));
    like($out, qr/^error: bad signature/, "$alg: changed payload refused");
}

# HS256 keyed with the RSA public key PEM, made by openssl: refused

{
    my $pem = slurp("$d/rsa.pub");
    my $h = encode_base64url('{"alg":"HS256","typ":"JWT"}');
    my $p = encode_base64url('{"sub":"admin"}');
    spew("$d/input", "$h.$p");
    openssl("dgst -sha256 -mac HMAC -macopt hexkey:" . unpack('H*', $pem)
        . " -binary -out $d/sig $d/input");
    my $token = "$h.$p." . encode_base64url(slurp("$d/sig"));

    my ($out, $rc) = run($bin, '--verify', "$d/rsa.pub", $token);
    like($out, qr/^error: alg not allowed/,
         'HS256 with the RSA public key as secret: refused');

    $h = encode_base64url('{"alg":"none"}');
    ($out, $rc) = run($bin, '--verify', "$d/rsa.pub", "$h.$p.");
    like($out, qr/^error: /, 'alg none: refused');
}

# kid (RFC 7638 thumbprint) and JWKS against openssl's view of the keys

my ($n_hex) = openssl("rsa -pubin -in $d/rsa.pub -noout -modulus")
    =~ /Modulus=([0-9A-F]+)/;
my $n = encode_base64url(pack('H*', $n_hex));
my $spki = openssl("pkey -pubin -in $d/ec.pub -outform DER");
my $point = substr($spki, -65);
my ($x, $y) = map { encode_base64url($_) }
    (substr($point, 1, 32), substr($point, 33, 32));

is(ord($point), 4, 'EC point uncompressed');

my $tp_rsa = encode_base64url(sha256(qq({"e":"AQAB","kty":"RSA","n":"$n"})));
my $tp_ec = encode_base64url(
    sha256(qq({"crv":"P-256","kty":"EC","x":"$x","y":"$y"})));

my $kid = run($bin, '--kid', "$d/rsa.pub");
chomp $kid;
is($kid, $tp_rsa, 'RSA default kid equals RFC 7638 thumbprint');

$kid = run($bin, '--kid', "$d/ec.pem");
chomp $kid;
is($kid, $tp_ec, 'EC default kid equals RFC 7638 thumbprint');

my $jwks = decode_json(run($bin, '--jwks', "$d/rsa.pem", "$d/ec.pub"));
my ($jr, $je) = @{$jwks->{keys}};

is_deeply($jr, { kty => 'RSA', use => 'sig', alg => 'RS256', kid => $tp_rsa,
                 n => $n, e => 'AQAB' }, 'JWKS RSA key');
is_deeply($je, { kty => 'EC', use => 'sig', alg => 'ES256', kid => $tp_ec,
                 crv => 'P-256', x => $x, y => $y }, 'JWKS EC key');

done_testing();
