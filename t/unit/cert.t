#!/usr/bin/perl

# Unit tests of ngx_http_hpki_cert.c: runs build/t/unit-cert (TAP), then
# checks certificates generated here with openssl(1) against openssl's own
# view of them (x5t#S256, serial, issuer) and the HPKI CA certificates.
#
# Build first: make -f t/unit/unit.mk module-unit (or make module-unit).

use strict;
use warnings;

use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64url);

use Hpki::Tap qw(run_tap);

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-cert";

-x $bin or BAIL_OUT("$bin missing: run make module-unit");

sub inspect {
    my ($file) = @_;
    my %r;

    open(my $fh, '-|', $bin, '--inspect', $file) or die "$bin: $!";

    while (<$fh>) {
        chomp;
        /^(\w+)=(.*)$/ and $r{$1} = $2;
    }

    close($fh);

    return $? == 0 ? \%r : undef;
}

sub openssl {
    my $out = `openssl @_ 2>&1`;
    $? == 0 or die "openssl @_: $out";
    chomp $out;
    return $out;
}

sub x5t {
    my ($file) = @_;
    open(my $fh, '-|', 'sh', '-c',
         "openssl x509 -in $file -outform DER | openssl dgst -sha256 -binary")
        or die;
    local $/;
    my $md = <$fh>;
    close($fh);
    return encode_base64url($md);
}

run_tap($bin);

# certificates made with openssl(1)

my $d = tempdir(CLEANUP => 1);

# DER TLV with a short length (enough here), hex in, hex out
sub tlv {
    my ($tag, $hex) = @_;
    my $len = length($hex) / 2;
    $len < 128 or die "tlv: too long";
    return sprintf('%02x%02x', $tag, $len) . $hex;
}

# HCActor "Medical Doctor" (HPKI.md vector 1), in the field's extra-SET shape:
# SEQUENCE { SEQUENCE { OID 1.0.17090.0.1, SET { SET { HCActor } } } }
my $actor = '3024a0223120a00c060a2a830886910f01060101a2100c0e4d65646963616c'
    . '20446f63746f72';
my $sda = tlv(0x30, tlv(0x30, '0606288185420001'
                                  . tlv(0x31, tlv(0x31, $actor))));

open(my $cnf, '>', "$d/ext.cnf") or die;
print $cnf <<"END";
[auth]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
certificatePolicies = 1.2.392.100495.1.5.1.2.0.1
subjectDirectoryAttributes = DER:$sda

[sign]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation
certificatePolicies = 1.2.392.100495.1.5.1.1.0.1
subjectDirectoryAttributes = DER:$sda
END
close($cnf);

openssl("req -x509 -newkey rsa:2048 -nodes -keyout $d/ca.key -out $d/ca.pem"
    . " -days 1 -subj '/C=JP/O=Test, Org/OU=HPKI Test/CN=HPKI-01-TestCA'"
    . " -config /dev/null -addext basicConstraints=critical,CA:TRUE"
    . " -addext keyUsage=critical,keyCertSign,cRLSign");

for my $kind (qw(auth sign)) {
    openssl("req -newkey rsa:2048 -nodes -keyout $d/$kind.key"
        . " -out $d/$kind.csr -subj '/C=JP/O=Clinic/CN=TARO YAMADA'");
    openssl("x509 -req -in $d/$kind.csr -CA $d/ca.pem -CAkey $d/ca.key"
        . " -set_serial 0x00C0FFEE1234 -days 1 -extfile $d/ext.cnf"
        . " -extensions $kind -out $d/$kind.pem");
}

my $auth = inspect("$d/auth.pem");
ok($auth, 'inspect the openssl-made authentication certificate');
is($auth->{kind}, 1, 'authentication certificate: AUTH');
is($auth->{role}, 'Medical Doctor', 'hcRole from a DER: extension');

my $sign = inspect("$d/sign.pem");
is($sign->{kind}, 2, 'signing certificate: SIGN');
is($sign->{role}, 'Medical Doctor', 'signing certificate hcRole');

for my $f ("$d/auth.pem", "$d/sign.pem", "$d/ca.pem") {
    my $r = inspect($f);
    my $name = $f =~ s{.*/}{}r;

    is($r->{x5t}, x5t($f), "$name: x5t#S256 equals openssl's digest");
    is('serial=' . $r->{serial}, openssl("x509 -in $f -noout -serial"),
       "$name: serial equals openssl's");
    is('issuer=' . $r->{issuer},
       openssl("x509 -in $f -noout -issuer -nameopt RFC2253"),
       "$name: issuer equals openssl's RFC 2253 form");
}

is(inspect("$d/ca.pem")->{kind}, 0, 'test CA: neither AUTH nor SIGN');
is(inspect("$d/ca.pem")->{role}, '-', 'test CA: no hcRole');

# the real HPKI CA certificates, if the shared data is there

SKIP: {
    my $pki = "$root/../shared/pki";
    skip "no $pki", 9 unless -f "$pki/medis_auth_ca.pem";

    for my $f (map { "$pki/$_" } qw(medis_auth_ca.pem medis_sign_ca.pem
                                    mhlw_hpki_root_ca_v2.pem))
    {
        my $r = inspect($f);
        my $name = $f =~ s{.*/}{}r;

        is($r->{kind}, 0, "$name: a CA is neither AUTH nor SIGN");
        is($r->{x5t}, x5t($f), "$name: x5t#S256");
        is('issuer=' . $r->{issuer},
           openssl("x509 -in $f -noout -issuer -nameopt RFC2253"),
           "$name: issuer");
    }
}

done_testing();
