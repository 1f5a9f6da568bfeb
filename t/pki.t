#!/usr/bin/perl

# The demo PKI (scripts/pki.sh) mirrors HPKI: shared/domain/HPKI.md section 2.
# Above all, hcRole is encoded exactly as HPKI certificates in the field
# encode it, extra SET level included, and its bytes equal the test vectors.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use MIME::Base64 qw(decode_base64);
use Test::More;

use Hpki::Test;

my $ROOT = $Hpki::Test::ROOT;
my $PKI_SH = "$ROOT/scripts/pki.sh";

# Test vectors of a bare HCActor, from HPKI.md section 2
my $HCACTOR_DOCTOR = decode_base64(
    'MCSgIjEgoAwGCiqDCIaRDwEGAQGiEAwOTWVkaWNhbCBEb2N0b3I=');
my $HCACTOR_PHARMACIST = decode_base64(
    'MCegJTEjoAwGCiqDCIaRDwEGAQGhBRIDMTIzogwMClBoYXJtYWNpc3Q=');

my $tmp = tempdir('hpki-pki-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $pki = "$tmp/pki";


# --- generation --------------------------------------------------------------

is run($PKI_SH, $pki, '--jpki')->{rc}, 0, 'pki.sh generates a PKI';
ok -e "$pki/.done", 'and marks it done';

my %m = manifest("$pki/manifest");
my @missing = grep { !-s "$pki/$m{$_}" } sort keys %m;
is "@missing", '', 'every manifest entry exists';

my @loose = grep { /_key$/ && (stat "$pki/$m{$_}")[2] & 07777 != 0600 }
    sort keys %m;
is "@loose", '', 'private keys are mode 0600';

my $before = (stat "$pki/doctor-auth.pem")[9];
sleep 1;
is run($PKI_SH, $pki)->{rc}, 0, 'a second run succeeds';
is((stat "$pki/doctor-auth.pem")[9], $before, 'and changes nothing');

my @tmpdirs = glob "$pki.tmp.*";
is "@tmpdirs", '', 'no temporary directory is left behind';


# --- hcRole: the test vectors ------------------------------------------------

is hcactor("$pki/doctor-auth.pem", 'field'), $HCACTOR_DOCTOR,
    'doctor: HCActor equals the "Medical Doctor" test vector';
is hcactor("$pki/pharmacist-auth.pem", 'field'), $HCACTOR_PHARMACIST,
    'pharmacist: HCActor equals the "Pharmacist" test vector';
is hcactor("$pki/doctor-auth-std.pem", 'standard'), $HCACTOR_DOCTOR,
    'standard shape: the same HCActor, one SET level less';
is hcactor("$pki/doctor-second.pem", 'field'), $HCACTOR_DOCTOR,
    'the whole second key certificate carries hcRole too';

like sda_tree("$pki/doctor-auth.pem"), qr{
    ^0:SEQUENCE\n                  # SEQUENCE OF Attribute
    1:SEQUENCE\n                   # Attribute
    2:OBJECT:1\.0\.17090\.0\.1\n   # type: hcRole
    2:SET\n                        # values
    3:SET\n                        # the extra SET level of the field
    4:SEQUENCE\n                   # HCActor
}x, 'field shape: SEQUENCE { OID 1.0.17090.0.1, SET { SET { HCActor } } }';

like sda_tree("$pki/doctor-auth-std.pem"), qr{
    ^0:SEQUENCE\n1:SEQUENCE\n2:OBJECT:1\.0\.17090\.0\.1\n2:SET\n3:SEQUENCE\n
}x, 'standard shape: SEQUENCE { OID 1.0.17090.0.1, SET { HCActor } }';

is ext_hex("$pki/doctor-auth-norole.pem", 'X509v3 Subject Directory Attributes'),
    undef, 'the no-role certificate has no subjectDirectoryAttributes';

unlike text("$pki/doctor-auth.pem"), qr/1\.2\.392\.100495\.1\.6\.1\.1:/,
    'no *extension* named by the coding scheme OID';


# --- the doctor's authentication certificate ---------------------------------

my $doc = text("$pki/doctor-auth.pem");
like $doc, qr/Signature Algorithm: sha256WithRSAEncryption/, 'sha256WithRSA';
like $doc, qr/Public-Key: \(2048 bit\)/, 'RSA-2048';
like subject("$pki/doctor-auth.pem"),
    qr{^/C=JP/O=Demo Clinic/CN=Taro Yamada/serialNumber=HPKI-D-\d+$},
    'subject C, O, CN, serialNumber';
like $doc, qr/Key Usage: critical\n\s+Digital Signature\n/,
    'keyUsage critical digitalSignature only';
like $doc, qr/Extended Key Usage: \n\s+TLS Web Client Authentication\n/,
    'extendedKeyUsage clientAuth';
like $doc, qr/Policies: critical\n\s+Policy: 1\.2\.392\.100495\.1\.5\.1\.2\.0\.1\n/,
    'authentication policy 1.2.392.100495.1.5.1.2.0.1';
like san_dirname("$pki/doctor-auth.pem"), qr{^/O=デモクリニック/CN=山田 太郎$},
    'kanji name and institution in a subjectAltName directoryName';
unlike $doc, qr/Non Repudiation/, 'not a signing certificate';

like text("$pki/doctor-sign.pem"),
    qr/Key Usage: critical\n\s+Non Repudiation\n/,
    'the card signing certificate: nonRepudiation only';


# --- chains -------------------------------------------------------------------

ok verify("$pki/doctor-auth.pem", "$pki/client-ca-bundle.pem"),
    'doctor verifies against the client CA bundle (root + auth CA)';
ok verify("$pki/pharmacist-auth.pem", "$pki/client-ca-bundle.pem"),
    'pharmacist too';
ok !verify("$pki/doctor-sign.pem", "$pki/client-ca-bundle.pem"),
    'a signing certificate does not chain to the client CA bundle';
ok verify("$pki/doctor-sign.pem", "$pki/sign-chain.pem"),
    'it chains to the signing CA';
ok !verify("$pki/doctor-auth-expired.pem", "$pki/client-ca-bundle.pem"),
    'the expired certificate does not verify';
ok verify("$pki/doctor-auth-revoked.pem", "$pki/client-ca-bundle.pem"),
    'the revoked certificate verifies without a CRL';
ok !verify("$pki/doctor-auth-revoked.pem", "$pki/client-ca-bundle.pem",
    '-crl_check', '-CRLfile', "$pki/auth-ca.crl"), 'but not with the CRL';
ok verify("$pki/doctor-auth.pem", "$pki/client-ca-bundle.pem",
    '-crl_check', '-CRLfile', "$pki/auth-ca.crl"), 'the doctor passes it';
ok !verify("$pki/rogue-auth.pem", "$pki/client-ca-bundle.pem"),
    'the rogue certificate does not verify';

ok verify("$pki/server.pem", "$pki/server-ca.pem", '-purpose', 'sslserver'),
    'server certificate verifies for TLS server use';
like text("$pki/server.pem"),
    qr/Subject Alternative Name: \n\s+IP Address:127\.0\.0\.1, DNS:localhost/,
    'server certificate names 127.0.0.1 and localhost';

is modulus("$pki/doctor-second.pem"), modulus("$pki/doctor-second.key"),
    'doctor-second.key matches its certificate';


# --- issuing a second certificate from a CSR ---------------------------------

run('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
    'rsa_keygen_bits:2048', '-out', "$tmp/second.key");
run('openssl', 'req', '-new', '-key', "$tmp/second.key", '-subj',
    '/C=JP/O=Demo Clinic/CN=Taro Yamada/serialNumber=HPKI-D-00000001',
    '-out', "$tmp/second.csr");

is run($PKI_SH, $pki, 'sign-csr', "$tmp/second.csr", "$tmp/second.pem",
    'Medical Doctor')->{rc}, 0, 'sign-csr issues a certificate';

my $second = text("$tmp/second.pem");
like $second, qr/Key Usage: critical\n\s+Non Repudiation\n/,
    'keyUsage critical nonRepudiation only';
like $second, qr/Policies: critical\n\s+Policy: 1\.2\.392\.100495\.1\.5\.1\.1\.0\.1\n/,
    'signing policy 1.2.392.100495.1.5.1.1.0.1';
unlike $second, qr/Extended Key Usage/, 'no extendedKeyUsage';
is hcactor("$tmp/second.pem", 'field'), $HCACTOR_DOCTOR,
    'hcRole "Medical Doctor", field shape';
is subject("$tmp/second.pem"),
    '/C=JP/O=Demo Clinic/CN=Taro Yamada/serialNumber=HPKI-D-00000001',
    'subject from the CSR';
like text("$tmp/second.pem"), qr/Issuer: .*CN = Demo-HPKI-SignCA/,
    'issued by the signing CA';
ok verify("$tmp/second.pem", "$pki/sign-chain.pem"), 'and chains to it';

is run($PKI_SH, $pki, 'sign-csr', "$tmp/second.csr", "$tmp/pharm.pem",
    'Pharmacist')->{rc}, 0, 'another role';
like ext_hex("$tmp/pharm.pem", "X509v3 Subject Directory Attributes"),
    qr/A20C0C0A${\ uc unpack "H*", "Pharmacist"}$/, "is in the certificate";

isnt run($PKI_SH, $pki, 'sign-csr', "$tmp/second.csr", "$tmp/bad.pem",
    'Doctor $HOME # x')->{rc}, 0, 'a role with config metacharacters is refused';

is run($PKI_SH, $pki, 'auth-csr', "$tmp/second.csr", "$tmp/auth2.pem",
    '-')->{rc}, 0, 'auth-csr without a role';
like text("$tmp/auth2.pem"), qr/Key Usage: critical\n\s+Digital Signature\n/,
    'an authentication certificate';


# --- JPKI (--jpki) ------------------------------------------------------------

like text("$pki/jpki-auth.pem"), qr/Policy: 1\.2\.392\.200149\.8\.5\.1\.3\n/,
    'JPKI user authentication policy';
unlike text("$pki/jpki-auth.pem"), qr/Alternative Name/,
    'JPKI authentication certificate: no name, no address';
like utf8_text("$pki/jpki-sign.pem"),
    qr/othername: 1\.2\.392\.200149\.8\.5\.5\.5::東京都/,
    'JPKI signing certificate: home address in an otherName';

done_testing;


# --- helpers ------------------------------------------------------------------

sub run {
    my @cmd = @_;
    return Hpki::Test::_capture(@cmd);
}

sub manifest {
    my ($file) = @_;
    return %{ Hpki::Test::_read_manifest($file) };
}

sub text {
    return run('openssl', 'x509', '-in', $_[0], '-noout', '-text')->{out};
}

sub utf8_text {
    my $out = run('openssl', 'x509', '-in', $_[0], '-noout', '-text',
        '-nameopt', 'utf8,sep_comma_plus_space,esc_ctrl,space_eq')->{out};
    utf8::decode($out);
    return $out;
}

# openssl prints a DirName with \xNN escapes: undo them, decode UTF-8
sub san_dirname {
    my ($t) = text($_[0]) =~ /DirName:(\S.*)\n/ or return '';
    $t =~ s/\\x([0-9A-F]{2})/chr hex $1/ge;
    utf8::decode($t);
    return $t;
}

sub subject {
    my $s = run('openssl', 'x509', '-in', $_[0], '-noout', '-subject',
        '-nameopt', 'compat')->{out};
    $s =~ s/^subject=\s*//;
    chomp $s;
    return $s;
}

sub modulus {
    my ($file) = @_;
    my @cmd = $file =~ /\.key$/
        ? ('openssl', 'rsa', '-in', $file, '-noout', '-modulus')
        : ('openssl', 'x509', '-in', $file, '-noout', '-modulus');
    return run(@cmd)->{out};
}

sub verify {
    my ($cert, $ca, @opts) = @_;
    my $r = run('openssl', 'verify', '-CAfile', $ca, @opts, $cert);
    return $r->{rc} == 0;
}

# ext_hex(CERT, NAME): the extension's value (OCTET STRING) as hex, from
# `openssl asn1parse`: the OBJECT line naming it, then the OCTET STRING
# (a "BOOLEAN" critical flag may sit in between).
sub ext_hex {
    my ($cert, $name) = @_;
    my @lines = split /\n/, run('openssl', 'asn1parse', '-in', $cert)->{out};
    for my $i (0 .. $#lines) {
        next unless $lines[$i] =~ /prim: OBJECT\s+:\Q$name\E$/;
        for my $j ($i + 1 .. $i + 2) {
            return $1 if ($lines[$j] // '') =~ /OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]+)/;
        }
    }
    return undef;
}

# asn1parse over the subjectDirectoryAttributes DER: [offset, depth, hl, len, what]
sub sda_parse {
    my ($cert) = @_;
    my $hex = ext_hex($cert, 'X509v3 Subject Directory Attributes')
        // return;
    my $der = pack 'H*', $hex;
    my $f = "$tmp/sda.der";
    open my $fh, '>:raw', $f or die $!;
    print $fh $der;
    close $fh;
    my @nodes;
    for (split /\n/, run('openssl', 'asn1parse', '-inform', 'DER', '-in',
        $f)->{out})
    {
        /^\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)\s+(?:cons|prim):\s+(.*?)\s*$/
            or next;
        push @nodes, [$1, $2, $3, $4, $5];
    }
    return ($der, @nodes);
}

# the shape as "depth:TYPE[:value]" lines
sub sda_tree {
    my (undef, @nodes) = sda_parse($_[0]);
    return join '', map {
        my ($type, $val) = split /\s*:/, $_->[4], 2;
        "$_->[1]:$type" . ($type eq 'OBJECT' ? ":$val" : '') . "\n"
    } @nodes;
}

# the bytes of the first HCActor: the SEQUENCE inside values (field shape:
# inside the extra SET)
sub hcactor {
    my ($cert, $shape) = @_;
    my ($der, @nodes) = sda_parse($cert);
    return undef unless defined $der;
    my $depth = $shape eq 'field' ? 4 : 3;
    for my $n (@nodes) {
        next unless $n->[1] == $depth && $n->[4] eq 'SEQUENCE';
        return substr $der, $n->[0], $n->[2] + $n->[3];
    }
    return undef;
}
