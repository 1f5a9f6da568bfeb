#!/usr/bin/perl

# Unit tests of ngx_http_hpki_inspect.c: runs build/t/unit-inspect (TAP; its
# certificates are made in C, and the real MHLW root and MEDIS CAs from
# ../shared/pki are used when present), then checks certificates and a CRL
# made here with openssl(1) against openssl's own view of them, and feeds
# the body parser odd bytes.
#
# Build first: make -f t/unit/unit.mk module-unit (or make module-unit).

use strict;
use warnings;

use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Temp qw(tempdir);
use JSON::PP;

use Hpki::Tap qw(run_tap);

my $root = "$FindBin::Bin/../..";
my $bin = "$root/build/t/unit-inspect";
my $pki = "$root/../shared/pki";

-x $bin or BAIL_OUT("$bin missing: run make module-unit");

sub openssl {
    my $out = `openssl @_ 2>&1`;
    $? == 0 or die "openssl @_: $out";
    chomp $out;
    return $out;
}

sub inspect {
    my (@args) = @_;
    my $out = `'$bin' --inspect @args 2>/dev/null`;
    return $? == 0 ? decode_json($out) : undef;
}

sub parse {
    my ($body) = @_;
    my $d = tempdir(CLEANUP => 1);
    open(my $fh, '>:raw', "$d/body") or die;
    print $fh $body;
    close($fh);
    my $out = `'$bin' --parse $d/body`;
    chomp $out;
    return $out;
}

sub iso {
    # "Apr  1 00:00:00 2024 GMT" -> "2024-04-01T00:00:00Z"
    my ($s) = @_;
    my %m = (Jan => 1, Feb => 2, Mar => 3, Apr => 4, May => 5, Jun => 6,
             Jul => 7, Aug => 8, Sep => 9, Oct => 10, Nov => 11, Dec => 12);
    my ($mon, $day, $time, $year) = $s =~ /=(\w+)\s+(\d+) (\S+) (\d+) GMT/
        or die "date: $s";
    return sprintf('%04d-%02d-%02dT%sZ', $year, $m{$mon}, $day, $time);
}

run_tap($bin, -d $pki ? ('--pki', $pki) : ());

# --- certificates and a CRL made with openssl(1) -----------------------------

my $d = tempdir(CLEANUP => 1);

# DER TLV with a short length, hex in, hex out
sub tlv {
    my ($tag, $hex) = @_;
    my $len = length($hex) / 2;
    $len < 128 or die "tlv: too long";
    return sprintf('%02x%02x', $tag, $len) . $hex;
}

# hcRole "Medical Doctor" (HPKI.md vector 1), field shape (extra SET)
my $actor = '3024a0223120a00c060a2a830886910f01060101a2100c0e4d65646963616c'
    . '20446f63746f72';
my $sda = tlv(0x30, tlv(0x30, '0606288185420001'
                                  . tlv(0x31, tlv(0x31, $actor))));

open(my $cnf, '>', "$d/ext.cnf") or die;
print $cnf <<"END";
[sign]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation
certificatePolicies = critical, 1.2.392.100495.1.5.1.1.0.1
subjectDirectoryAttributes = DER:$sda

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
END
close($cnf);

openssl("req -x509 -newkey rsa:2048 -nodes -keyout $d/root.key"
    . " -out $d/root.pem -days 2 -subj '/C=JP/O=Test, Org/CN=Test Root'"
    . " -config /dev/null -addext basicConstraints=critical,CA:TRUE"
    . " -addext keyUsage=critical,keyCertSign,cRLSign");

openssl("req -newkey rsa:2048 -nodes -keyout $d/ca.key -out $d/ca.csr"
    . " -subj '/C=JP/O=Test/CN=Test-SignCA-forNonRepudiation'");
openssl("x509 -req -in $d/ca.csr -CA $d/root.pem -CAkey $d/root.key"
    . " -set_serial 2 -days 2 -extfile $d/ext.cnf -extensions ca"
    . " -out $d/ca.pem");

openssl("req -newkey rsa:2048 -nodes -keyout $d/sign.key -out $d/sign.csr"
    . " -subj '/C=JP/O=Clinic/CN=TARO YAMADA/serialNumber=HPKI-1'");

for my $n (1, 2) {
    openssl("x509 -req -in $d/sign.csr -CA $d/ca.pem -CAkey $d/ca.key"
        . " -set_serial 0x00C0FFEE000$n -days 1 -extfile $d/ext.cnf"
        . " -extensions sign -out $d/sign$n.pem");
}

# a CRL of the signing CA revoking sign2, with `openssl ca`
mkdir("$d/db") or die;
open(my $fh, '>', "$d/db/index.txt") or die;
close($fh);
open($fh, '>', "$d/db/crlnumber") or die;
print $fh "01\n";
close($fh);
open($fh, '>', "$d/ca.cnf") or die;
print $fh <<"END";
[ca]
default_ca = x
[x]
database = $d/db/index.txt
crlnumber = $d/db/crlnumber
default_md = sha256
default_crl_days = 7
END
close($fh);
openssl("ca -config $d/ca.cnf -cert $d/ca.pem -keyfile $d/ca.key"
    . " -revoke $d/sign2.pem");
openssl("ca -config $d/ca.cnf -cert $d/ca.pem -keyfile $d/ca.key"
    . " -gencrl -out $d/ca.crl");
openssl("ca -config $d/ca.cnf -cert $d/root.pem -keyfile $d/root.key"
    . " -gencrl -out $d/root.crl");
openssl("crl -in $d/ca.crl -outform DER -out $d/ca.crl.der");
openssl("x509 -in $d/sign1.pem -outform DER -out $d/sign1.der");

my $r = inspect("$d/sign1.pem", '--ca', "$d/root.pem", '--ca', "$d/ca.pem");
ok($r, 'inspect an openssl-made signing certificate');
is($r->{role}, 'Medical Doctor', 'hcRole from a DER: extension');
is($r->{kind}, 'signing', 'kind signing');
is($r->{chain}, 'ok', 'chain ok with root and intermediate as --ca');
is($r->{revocation}, 'unknown', 'no CRL: unknown');
is_deeply($r->{key_usage}, ['nonRepudiation'], 'key_usage');
is('subject=' . $r->{subject},
   openssl("x509 -in $d/sign1.pem -noout -subject -nameopt RFC2253"),
   "subject equals openssl's RFC 2253 form");
is('issuer=' . $r->{issuer},
   openssl("x509 -in $d/sign1.pem -noout -issuer -nameopt RFC2253"),
   "issuer equals openssl's RFC 2253 form");
is('serial=' . $r->{serial}, openssl("x509 -in $d/sign1.pem -noout -serial"),
   "serial equals openssl's");
is($r->{not_before},
   iso(openssl("x509 -in $d/sign1.pem -noout -startdate")),
   'not_before equals openssl\'s, in ISO 8601');
is($r->{not_after}, iso(openssl("x509 -in $d/sign1.pem -noout -enddate")),
   'not_after equals openssl\'s, in ISO 8601');

$r = inspect("$d/sign1.der", '--ca', "$d/root.pem", '--ca', "$d/ca.pem");
is($r && $r->{role}, 'Medical Doctor', 'a DER certificate file');

$r = inspect("$d/sign1.pem", '--ca', "$d/root.pem");
is($r->{chain}, 'unable to get local issuer certificate',
   'without the intermediate: unable to get local issuer certificate');

$r = inspect("$d/sign1.pem");
is($r->{chain}, 'unable to get local issuer certificate', 'no --ca at all');

$r = inspect("$d/sign1.pem", '--ca', "$d/root.pem", '--ca', "$d/ca.pem",
             '--crl', "$d/ca.crl.der", '--crl', "$d/root.crl");
is("$r->{chain} $r->{revocation}", 'ok good',
   'openssl ca CRLs (one DER): not revoked');

$r = inspect("$d/sign2.pem", '--ca', "$d/root.pem", '--ca', "$d/ca.pem",
             '--crl', "$d/ca.crl", '--crl', "$d/root.crl");
is("$r->{chain} $r->{revocation}", 'certificate revoked revoked',
   'openssl ca CRL: revoked');

is(inspect("$d/sign1.pem", '--ca', "$d/sign1.pem"), undef,
   'an end entity as --ca is refused');

# --- the body parser on odd input --------------------------------------------

my $b64 = 'A' x 43 . '=';
like(parse(''), qr/^error -1: the body is not a JSON object/, 'empty body');
like(parse("{\"hash\":\"$b64\"\0}"), qr/^error -1: the body is not a JSON/,
     'a NUL byte');
like(parse('{"hash":"\u0000"}'), qr/^error -1: the body is not a JSON/,
     'an escaped NUL (jansson refuses it)');
like(parse('{"hash":' . ('[' x 5000) . (']' x 5000) . '}'),
     qr/^error -1:/, 'deep nesting');
like(parse("\xef\xbb\xbf{}"), qr/^error -1:/, 'a BOM');
like(parse('{"hash":"' . $b64 . '","signature":"AAAA","certificate":"'
           . ('-----BEGIN CERTIFICATE-----\n' x 3) . '"}'),
     qr/^error -1: "certificate" is not a PEM/, 'PEM headers only');

done_testing();
