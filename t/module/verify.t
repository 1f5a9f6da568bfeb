#!/usr/bin/perl

# POST /hpki/verify, the receiving side: a pharmacy holds a prescription's
# digest, its signature value and the signer's certificate, and asks whether
# a *doctor* signed it. The signature from POST /hpki/sign (two key shares in
# hpki-signd) verifies with the second certificate, chained to the trust
# configured here: the real MHLW root and MEDIS CAs (../shared/pki) beside
# the demo root. What must not pass: a tampered signature, the doctor's
# authentication certificate, a certificate without hcRole, an unknown CA,
# a revoked certificate (with a CRL), and every malformed body.
#
# Skipped as a whole while the module does not know "hpki_verify".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256 sha384);
use File::Temp ();

use Hpki::Test qw(b64 unb64);
use HpkiModule qw(gateway_conf);


my $t = Hpki::Test->new(need => [qw(module signd admin)]);

# the real HPKI CA certificates, if the shared data is there

my $shared = $t->root . '/../shared/pki';
my @real = map { "$shared/$_" }
    qw(mhlw_hpki_root_ca_v2.pem medis_sign_ca.pem medis_auth_ca.pem);
my $have_real = !grep { !-f } @real;


# --- is hpki_verify wired into the module yet? --------------------------------

$t->write_nginx_conf(<<'CONF');
%%TEST_GLOBALS%%
events { }
http {
    %%TEST_GLOBALS_HTTP%%
    server {
        listen 127.0.0.1:%%HTTPS_PORT%%;
        location = /hpki/verify {
            hpki_verify_trust %%PKI_ROOT_CA_CERT%%;
            hpki_verify;
        }
    }
}
CONF

my $probe = $t->nginx_test_conf;
if ($probe->{rc} != 0) {
    plan skip_all => 'the module has no hpki_verify yet: '
        . (($probe->{err} =~ /(unknown directive "hpki_verify\w*")/)[0]
           // $probe->{err});
}


# --- the stack ----------------------------------------------------------------

$t->start_redis
  ->start_signd
  ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
           role => 'Medical Doctor');

my $dir = $t->testdir;
my $pki = $t->pki;

sub run_ok {
    my (@cmd) = @_;
    my $out = `@cmd 2>&1`;
    die "@cmd: $out" if $? != 0;
    return $out;
}

# signing certificates from the demo signing CA: one without hcRole, one
# that is then revoked; keys made here so that the test can sign with them

for my $n (qw(norole revoked)) {
    run_ok("openssl req -newkey rsa:2048 -nodes -keyout $dir/$n.key"
        . " -out $dir/$n.csr -subj '/C=JP/O=Demo Clinic/CN=\U$n\E DOCTOR'");
    $t->issue_signing_cert("$dir/$n.csr", "$dir/$n.pem",
        $n eq 'norole' ? '-' : 'Medical Doctor');
}

{
    local $ENV{HPKI_CA_DIR} = "$pki/ca/sign";
    my $ca = "-config $pki/ca/sign/ca.cnf -cert " . $t->pki('sign_ca_cert')
        . ' -keyfile ' . $t->pki('sign_ca_key');
    run_ok("openssl ca -batch $ca -revoke $dir/revoked.pem"
        . ' -crl_reason keyCompromise');
    run_ok("openssl ca -batch $ca -gencrl -out $dir/sign-ca.crl");
}

my $trust = join ' ', ($have_real ? @real : ()), $t->pki('root_ca_cert'),
    $t->pki('sign_ca_cert'), $t->pki('auth_ca_cert');

my $root_crl = $t->pki('root_ca_crl');

$t->write_nginx_conf(gateway_conf(server => <<"SERVER"))->start_nginx;
        hpki_verify_trust $trust;

        location = /hpki/verify {
            client_body_buffer_size 64k;
            hpki_verify;
        }

        # the demo root only: the intermediate must come in the request
        location = /hpki/verify-root {
            client_body_buffer_size 64k;
            hpki_verify_trust %%PKI_ROOT_CA_CERT%%;
            hpki_verify;
        }

        # with CRLs: every CA below the root needs one (CRL_CHECK_ALL)
        location = /hpki/verify-crl {
            client_body_buffer_size 64k;
            hpki_verify_trust %%PKI_ROOT_CA_CERT%% %%PKI_SIGN_CA_CERT%%;
            hpki_verify_crl $dir/sign-ca.crl $root_crl;
            hpki_verify;
        }
SERVER

plan tests => 83;


sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# a signature made here with a key file (openssl pkeyutl)

sub sign_with {
    my ($key, $digest, $hash, $pss) = @_;
    my $tmp = File::Temp->new(DIR => $dir);
    print $tmp $digest;
    close $tmp;
    my $opts = "-pkeyopt digest:$hash"
        . ($pss ? " -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:"
                  . length($digest) . " -pkeyopt rsa_mgf1_md:$hash" : '');
    my $sig = `openssl pkeyutl -sign -inkey $key $opts -in $tmp`;
    die "openssl pkeyutl -sign failed\n" if $? != 0;
    return b64($sig);
}

sub verify {
    my ($body, %o) = @_;
    return $t->http(POST => $o{path} // '/hpki/verify', json => $body);
}

sub reasons {
    my ($r) = @_;
    return join '; ', @{$r->{json}{reasons} // ['no reasons']};
}


# --- a signature from POST /hpki/sign verifies --------------------------------

my $token = $t->login('doctor_auth');
my $digest = sha256('prescription #1');

my $s = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($digest) ] });
is $s->{status}, 200, 'sign: 200';

my $second = $s->{json}{certificate};
my $sig = $s->{json}{signatures}[0];
my %good = (hash => b64($digest), hash_alg => 'sha256',
            signature => $sig, certificate => $second);

for my $round (1, 2) {
    my $r = verify(\%good);
    is $r->{status}, 200, "verify ($round): 200";
    is $r->{headers}{'content-type'}, 'application/json',
        "verify ($round): JSON";
    is $r->{json}{valid}, JSON::PP::true,
        "verify ($round): valid"
        . ($r->{json}{valid} ? '' : ': ' . reasons($r));
    is $r->{json}{role}, 'Medical Doctor', "verify ($round): the signer is "
        . 'a Medical Doctor';
    is $r->{json}{chain}, 'ok', "verify ($round): chain ok";
    is $r->{json}{kind}, 'signing', "verify ($round): a signing certificate";
    is_deeply $r->{json}{key_usage}, ['nonRepudiation'],
        "verify ($round): key_usage";
    is $r->{json}{revocation}, 'unknown', "verify ($round): no CRL: unknown";
    is_deeply $r->{json}{reasons}, [], "verify ($round): no reasons";
}

my $r = verify(\%good);
my $cert_file = $t->{enrolled}{'demo-doctor'}{cert};
my $serial = `openssl x509 -noout -serial -in $cert_file`;
$serial =~ s/^serial=//;
chomp $serial;
is $r->{json}{serial}, $serial, 'serial: the second certificate\'s';
like $r->{json}{subject}, qr/CN=Taro Yamada/i, 'subject: the doctor';
like $r->{json}{issuer}, qr/CN=Demo-HPKI-SignCA-forNonRepudiation/,
    'issuer: the demo signing CA';
like $r->{json}{not_after}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'not_after: ISO 8601 UTC';

my $der_b64 = `openssl x509 -in $cert_file -outform DER | base64 -w 76`;
$r = verify({ %good, certificate => $der_b64 });
is $r->{json}{valid}, JSON::PP::true, 'the certificate as base64 DER';

# SHA-384 and PSS through /hpki/sign

my $d384 = sha384('prescription #2');
$s = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($d384) ], hash_alg => 'sha384',
              sig_alg => 'rsa-pss' });
$r = verify({ hash => b64($d384), hash_alg => 'sha384', sig_alg => 'rsa-pss',
              signature => $s->{json}{signatures}[0],
              certificate => $second });
is $r->{json}{valid}, JSON::PP::true, 'sha384 rsa-pss from /hpki/sign: valid';

$r = verify({ hash => b64($d384), hash_alg => 'sha384',
              signature => $s->{json}{signatures}[0],
              certificate => $second });
is $r->{json}{valid}, JSON::PP::false, '... not as rsa-pkcs1';


# --- what must not be valid ---------------------------------------------------

my $bad = unb64($sig);
substr($bad, 100, 1) = chr(ord(substr($bad, 100, 1)) ^ 1);
$r = verify({ %good, signature => b64($bad) });
is $r->{status}, 200, 'tampered signature: 200 (an answer, not an error)';
is $r->{json}{valid}, JSON::PP::false, 'tampered signature: not valid';
like reasons($r), qr/signature does not verify/, '... because of the signature';
is $r->{json}{chain}, 'ok', '... while the chain is ok';

$r = verify({ %good, hash => b64(sha256('prescription #1 (changed)')) });
is $r->{json}{valid}, JSON::PP::false, 'another digest: not valid';

# the doctor's authentication certificate, with a signature by its key

my $auth_sig = sign_with($t->pki('doctor_auth_key'), $digest, 'sha256');
$r = verify({ %good, signature => $auth_sig,
              certificate => slurp($t->pki('doctor_auth_cert')) });
is $r->{json}{valid}, JSON::PP::false,
    'the authentication certificate: not valid';
is $r->{json}{kind}, 'authentication', '... kind authentication';
is $r->{json}{role}, 'Medical Doctor', '... although it has the role';
is $r->{json}{chain}, 'ok', '... and chains to the demo root';
like reasons($r), qr/not an HPKI signing certificate/,
    '... because it is not a signing certificate';
unlike reasons($r), qr/signature/, '... the signature itself verifies';

# hcRole without the extra SET level (an authentication certificate)

$r = verify({ %good, signature => sign_with($t->pki('std_auth_key'),
                                            $digest, 'sha256'),
              certificate => slurp($t->pki('std_auth_cert')) });
is $r->{json}{role}, 'Medical Doctor',
    'hcRole in the standard shape is read too';

# a signing certificate without hcRole

$r = verify({ %good, signature => sign_with("$dir/norole.key", $digest,
                                            'sha256'),
              certificate => slurp("$dir/norole.pem") });
is $r->{json}{valid}, JSON::PP::false, 'no hcRole: not valid';
is $r->{json}{role}, undef, '... role null';
is $r->{json}{kind}, 'signing', '... although a signing certificate';
is reasons($r), 'the certificate has no hcRole', '... the only reason';

# a CA the gateway does not trust

$r = verify({ %good, signature => sign_with($t->pki('rogue_auth_key'),
                                            $digest, 'sha256'),
              certificate => slurp($t->pki('rogue_auth_cert')) });
is $r->{json}{valid}, JSON::PP::false, 'rogue CA: not valid';
is $r->{json}{chain}, 'unable to get local issuer certificate',
    '... the chain does not verify';

# the real MEDIS signing CA against the real MHLW root

SKIP: {
    skip "no $shared", 4 unless $have_real;

    $r = verify({ %good, certificate => slurp($real[1]) });
    is $r->{json}{chain}, 'ok', 'MEDIS signing CA: chains to the MHLW root';
    like $r->{json}{subject}, qr/HPKI-01-MedisSignCA2-forNonRepudiation/,
        '... its subject';
    is $r->{json}{kind}, 'other', '... a CA, not a signer';
    is $r->{json}{valid}, JSON::PP::false, '... so not valid';
}


# --- the intermediate sent with the request -----------------------------------

$r = verify(\%good, path => '/hpki/verify-root');
is $r->{json}{chain}, 'unable to get local issuer certificate',
    'demo root only: the intermediate is missing';

$r = verify({ %good, chain => $s->{json}{chain} }, path => '/hpki/verify-root');
is $r->{json}{chain}, 'ok', '... sent as "chain" (from /hpki/sign): ok';
is $r->{json}{valid}, JSON::PP::true, '... valid';

$r = verify({ %good, certificate => $second . join('', @{$s->{json}{chain}}) },
    path => '/hpki/verify-root');
is $r->{json}{valid}, JSON::PP::true,
    '... or after the certificate in one PEM';


# --- revocation ---------------------------------------------------------------

$r = verify(\%good, path => '/hpki/verify-crl');
is $r->{json}{revocation}, 'good', 'CRL: the second certificate is good';
is $r->{json}{valid}, JSON::PP::true, '... and valid';

my $rev_sig = sign_with("$dir/revoked.key", $digest, 'sha256');
$r = verify({ %good, signature => $rev_sig,
              certificate => slurp("$dir/revoked.pem") },
    path => '/hpki/verify-crl');
is $r->{json}{revocation}, 'revoked', 'CRL: the revoked certificate: revoked';
is $r->{json}{valid}, JSON::PP::false, '... not valid';
is $r->{json}{chain}, 'certificate revoked', '... chain says so too';
like reasons($r), qr/revoked/, '... and the reasons';

$r = verify({ %good, signature => $rev_sig,
              certificate => slurp("$dir/revoked.pem") });
is $r->{json}{revocation}, 'unknown',
    'without CRLs the same certificate is unknown';
is $r->{json}{valid}, JSON::PP::true, '... and passes (configure CRLs)';


# --- malformed bodies: 400 with a JSON error ----------------------------------

my @malformed = (
    [ 'not JSON', 'hello' ],
    [ 'a JSON array', '[]' ],
    [ 'no hash', { %good, hash => undef } ],
    [ 'hash not base64', { %good, hash => '!' x 44 } ],
    [ 'hash base64url', { %good, hash => b64($digest) =~ tr{+/}{-_}r
                                         =~ s/=+$//r } ],
    [ 'wrong digest length', { %good, hash => b64('short') } ],
    [ 'SHA-256 digest called sha512', { %good, hash_alg => 'sha512' } ],
    [ 'unknown hash_alg', { %good, hash_alg => 'md5' } ],
    [ 'unknown sig_alg', { %good, sig_alg => 'ecdsa' } ],
    [ 'signature not base64', { %good, signature => '%%%%' } ],
    [ 'no certificate', { %good, certificate => undef } ],
    [ 'certificate garbage', { %good, certificate => 'not a certificate' } ],
    [ 'certificate over 16 KiB', { %good, certificate => 'A' x 17000 } ],
);

for my $case (@malformed) {
    my ($name, $body) = @$case;
    if (ref $body) {
        $body = { %$body };
        delete @$body{ grep { !defined $body->{$_} } keys %$body };
    }
    my $res = $t->http(POST => '/hpki/verify',
        ref $body ? (json => $body) : (body => $body));
    is $res->{status} . ' ' . ($res->{json}{error} // 'no JSON'),
        '400 invalid_request', "$name: 400 with a JSON error"
        . ($res->{json}{error_description}
           ? " ($res->{json}{error_description})" : '');
}

$r = $t->http(POST => '/hpki/verify',
    body => '{"hash":"' . ('A' x 70000) . '"}');
is $r->{status}, 413, 'a body over 64 KiB: 413';
is $r->{json}{error}, 'invalid_request', '... with a JSON error';

$r = $t->http(GET => '/hpki/verify');
is $r->{status}, 405, 'GET: 405';
is $r->{json}{error}, 'invalid_request', '... with a JSON error';

$r = verify(\%good);
is $r->{json}{valid}, JSON::PP::true, 'still answering after all that';


# --- hpki-admin cert inspect says the same, without a signature ---------------

SKIP: {
    my $a = $t->admin('cert', 'inspect', $cert_file, '--ca',
        $t->pki('root_ca_cert'), '--ca', $t->pki('sign_ca_cert'));
    skip 'hpki-admin has no "cert inspect" yet', 3 if $a->{rc} == 2;

    is $a->{rc}, 0, 'hpki-admin cert inspect: exit 0';
    my $j = eval { JSON::PP->new->decode($a->{out}) } // {};
    my $v = verify(\%good)->{json};
    delete @$v{qw(valid reasons)};
    is_deeply $j, $v, '... the same JSON as /hpki/verify, but valid/reasons';

    $a = $t->admin('cert', 'inspect', $t->pki('doctor_sign_cert'));
    like $a->{out}, qr/"chain": "unable to get local issuer certificate"/,
        '... without --ca nothing chains';
}


# --- logs ---------------------------------------------------------------------

$t->error_log_like(
    qr/hpki: verify valid=true role="Medical Doctor" serial=\Q$serial\E /,
    'the log says who signed');
my $b64d = b64($digest);
$t->error_log_unlike(qr/\Q$b64d\E/, 'the digest is not logged');
