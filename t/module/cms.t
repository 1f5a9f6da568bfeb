#!/usr/bin/perl

# The gateway signs hashes, and a hash is all a CMS signer needs: this test
# makes a detached CMS SignedData (RFC 5652) around a signature from
# POST /hpki/sign, in pure Perl, and openssl cms -verify accepts it against
# the demo HPKI root. Issue 5: "A detached CMS signature assembled from a
# returned signature value, with the signed-attributes digest as the signed
# hash, verifies with openssl cms -verify".
#
#   content (an e-prescription)
#     -> messageDigest = SHA-256(content)
#     -> SignedAttributes = SET OF { contentType, messageDigest, signingTime }
#     -> SHA-256(DER of that SET)      <- the one hash the gateway signs (5.4)
#     -> SignerInfo { sid, sha256, signedAttrs [0], rsaEncryption, signature }
#     -> ContentInfo { signedData, SignedData { ..., certificates, signerInfos } }
#
# The DER and CMS helpers are in Cms.pm next to this file.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256);
use IPC::Open3 qw(open3);

use Hpki::Test qw(b64 unb64);
use HpkiModule qw(gateway_conf);
use Cms qw(pem_to_der);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor')
    ->write_nginx_conf(gateway_conf())
    ->start_nginx;

plan tests => 21;

my $dir = $t->testdir;
my $enrolled_cert = $t->{enrolled}{'demo-doctor'}{cert};

my $token = $t->login('doctor_auth');
like $token, qr/^ey/, 'the doctor logs in with the card and gets a token';


# --- the content and its signed attributes (RFC 5652 5.3, 5.4, 11) -------------

my $content = <<'XML';
<?xml version="1.0" encoding="UTF-8"?>
<Prescription xmlns="urn:example:e-prescription">
  <Patient id="P-0001"><Name>Hanako Suzuki</Name></Patient>
  <Prescriber hpki="HPKI-D-00000001"><Name>Taro Yamada</Name></Prescriber>
  <Item><Drug code="620004477">Amoxicillin capsules 250 mg</Drug>
    <Dose>3 capsules a day, after meals</Dose><Days>7</Days></Item>
</Prescription>
XML
write_file('content.xml', $content);

my $signing_time = time;
my $attrs = Cms::signed_attrs(digest => sha256($content),
    time => $signing_time);

# 5.4: "the message digest calculation process computes a message digest on
# the DER encoding of the SignedAttrs value", with the SET OF tag (0x31),
# not the [0] IMPLICIT tag it carries inside the SignerInfo.
my $tbs = sha256($attrs);


# --- the gateway signs that one hash ---------------------------------------------

my $r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($tbs) ] });

is $r->{status}, 200, 'POST /hpki/sign with the signed-attributes digest: 200';
my $sig = unb64($r->{json}{signatures}[0] // '');
is length $sig, 256, 'one RSA-2048 signature value';

my $cert_der = pem_to_der($r->{json}{certificate} // '');
is b64($cert_der), b64(pem_to_der(slurp($enrolled_cert))),
    'the certificate that comes with it is the one the sign CA issued';

my @chain = @{$r->{json}{chain} // []};
ok @chain >= 1, 'and the chain up to the root comes with it';

# The signature value alone is PKCS#1 v1.5 over the attributes digest.
ok $t->verify_signature(cert => $r->{json}{certificate}, digest => $tbs,
    signature => $r->{json}{signatures}[0]),
    'openssl pkeyutl -verify: the value signs SHA-256(SignedAttributes)';


# --- the detached SignedData, and openssl cms -verify ----------------------------

my $cms = Cms::signed_data(cert => $cert_der, attrs => $attrs,
    signature => $sig);
write_file('sig.der', $cms);

# Trust: the demo HPKI root and the demo signing CA (scripts/pki.sh's
# sign-chain.pem, sign CA + root) as the -CAfile. openssl cms -verify
# (3.0) does not take intermediates from -certfile when verifying, so an
# untrusted sign CA must travel in the CMS itself: see "root only" below.
# -purpose any: see the default-purpose case below.
write_file('trust.pem', slurp($t->pki('root_ca_cert'))
    . slurp($t->pki('sign_chain')));
my @trust = ('-CAfile', "$dir/trust.pem");

my $v = cms_verify('sig.der', 'content.xml', @trust, '-purpose', 'any');
is $v->{rc}, 0, 'openssl cms -verify: exit 0' or diag $v->{out};
like $v->{out}, qr/Verification successful/, '... "Verification successful"';

my $print = openssl('cms', '-cmsout', '-print', '-inform', 'DER',
    '-in', "$dir/sig.der");
like $print->{out}, qr/signingTime.*messageDigest|messageDigest.*signingTime/s,
    'openssl reads back the signed attributes we wrote';
like $print->{out}, qr/eContent: <ABSENT>/,
    '... and eContent is absent: detached';

# DER, not just BER: openssl's own re-encoding is byte for byte the same
my $again = openssl('cms', '-cmsout', '-inform', 'DER', '-outform', 'DER',
    '-in', "$dir/sig.der", '-out', "$dir/sig-again.der");
ok $again->{rc} == 0 && slurp("$dir/sig-again.der") eq $cms,
    'openssl re-encodes it to the same bytes (sorted SETs, minimal lengths)';

# Without -purpose, openssl checks the signer for S/MIME signing
# (smimesign): the HPKI signing certificate has no extendedKeyUsage and
# keyUsage nonRepudiation only, which that purpose accepts too.
$v = cms_verify('sig.der', 'content.xml', @trust);
is $v->{rc}, 0, 'the default purpose (smimesign) accepts the HPKI certificate'
    or diag $v->{out};

# signatureAlgorithm: rsaEncryption is the usual value (RFC 3370 3.2) and
# what the test uses above; OpenSSL accepts sha256WithRSAEncryption too.
write_file('sig-sha256rsa.der', Cms::signed_data(cert => $cert_der,
    attrs => $attrs, signature => $sig,
    sig_alg => 'sha256WithRSAEncryption'));
$v = cms_verify('sig-sha256rsa.der', 'content.xml', @trust, '-purpose', 'any');
is $v->{rc}, 0, 'signatureAlgorithm sha256WithRSAEncryption verifies as well'
    or diag $v->{out};


# Root only: a verifier that trusts nothing but the HPKI root needs the
# sign CA in the SignedData's certificates; the gateway's "chain" has it.
my @intermediates = map { pem_to_der($_) }
    grep { !is_self_signed($_) } @chain;
write_file('root.pem', slurp($t->pki('root_ca_cert')));
write_file('sig-chain.der', Cms::signed_data(cert => $cert_der,
    extra_certs => \@intermediates, attrs => $attrs, signature => $sig));
$v = cms_verify('sig-chain.der', 'content.xml', '-CAfile', "$dir/root.pem",
    '-purpose', 'any');
is $v->{rc}, 0, 'root only as anchor, sign CA from "chain" inside the CMS:'
    . ' verifies' or diag $v->{out};
$v = cms_verify('sig.der', 'content.xml', '-CAfile', "$dir/root.pem",
    '-purpose', 'any');
like $v->{out}, qr/unable to get local issuer certificate/,
    '... and without it inside, the path to the root is missing';


# --- what must fail ------------------------------------------------------------

# another anchor: the chain check is real
write_file('other-root.pem', slurp($t->pki('jpki_ca_cert')));
$v = cms_verify('sig.der', 'content.xml', '-CAfile', "$dir/other-root.pem",
    '-purpose', 'any');
isnt $v->{rc}, 0, 'trusting another root: verification fails';
like $v->{out}, qr/certificate verify error|unable to get/i,
    '... at the certificate chain';

# the content changed after signing: messageDigest no longer matches
(my $altered = $content) =~ s/3 capsules a day/6 capsules a day/;
write_file('altered.xml', $altered);
$v = cms_verify('sig.der', 'altered.xml', @trust, '-purpose', 'any');
isnt $v->{rc}, 0, 'altered content: verification fails';
like $v->{out}, qr/content verify error|digest failure/i,
    '... with a message digest mismatch';

# the signed attributes changed after signing (signingTime an hour earlier):
# the content digest still matches, the signature over the attributes not
my $moved = Cms::signed_attrs(digest => sha256($content),
    time => $signing_time - 3600);
write_file('moved.der', Cms::signed_data(cert => $cert_der, attrs => $moved,
    signature => $sig));
$v = cms_verify('moved.der', 'content.xml', @trust, '-purpose', 'any');
isnt $v->{rc}, 0, 'signingTime changed after signing: verification fails';
like $v->{out}, qr/bad signature|verification failure/i,
    '... with a bad signature';


# --- helpers ---------------------------------------------------------------------

sub cms_verify {
    my ($sig, $data, @flags) = @_;
    return openssl('cms', '-verify', '-inform', 'DER', '-in', "$dir/$sig",
        '-content', "$dir/$data", '-binary', '-out', '/dev/null', @flags);
}

# openssl ARGS, stdout and stderr together: { rc, out }
sub openssl {
    my (@args) = @_;
    my $pid = open3(my $in, my $out, undef, 'openssl', @args);
    close $in;
    local $/;
    my $text = <$out> // '';
    waitpid $pid, 0;
    return { rc => $? >> 8, out => $text };
}

sub is_self_signed {
    my ($pem) = @_;
    write_file('is-self-signed.pem', $pem);
    my $r = openssl('x509', '-in', "$dir/is-self-signed.pem", '-noout',
        '-subject', '-issuer', '-nameopt', 'RFC2253');
    my ($s) = $r->{out} =~ /^subject=(.*)$/m;
    my ($i) = $r->{out} =~ /^issuer=(.*)$/m;
    return defined $s && defined $i && $s eq $i;
}

sub write_file {
    my ($name, $data) = @_;
    open my $fh, '>:raw', "$dir/$name" or die "$name: $!";
    print $fh $data;
    close $fh or die "$name: $!";
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}
