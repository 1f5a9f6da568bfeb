#!/usr/bin/perl

# The CSC API v2 as a standard remote-signing client uses it: info,
# credentials/list and /info, credentials/authorize for a SAD, and
# signatures/signHash; signatures checked with openssl against the second
# certificate. Then every misuse of a SAD the issue names, and bad bodies.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256 sha384);
use Time::HiRes qw(sleep);

use Hpki::Test qw(b64 unb64);
use HpkiModule qw(gateway_conf);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor')
    ->enroll(id => 'demo-pharmacist', auth => 'pharmacist_auth',
             role => 'Pharmacist')
    ->write_nginx_conf(gateway_conf(server => <<'CONF'))
        location = /csc/v2/info {
            hpki_csc_info;
        }

        location /csc/v2/ {
            hpki_auth on;
            hpki_csc_pass hpki_signd;
        }

        # a short SAD lifetime, to see one expire
        location /short/csc/v2/ {
            hpki_auth on;
            hpki_csc_sad_lifetime 1s;
            hpki_csc_pass hpki_signd;
        }
CONF
    ->start_nginx;

plan tests => 60;

my $cert = $t->{enrolled}{'demo-doctor'}{cert};
my $doctor = $t->login('doctor_auth');
my $pharmacist = $t->login('pharmacist_auth');

# RSASSA-PSS-params: SHA-256, MGF1 with SHA-256, salt 32
my $pss_params = 'MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghk'
    . 'gBZQMEAgEFAKIDAgEg';

sub csc {
    my ($method, $token, $body, $prefix) = @_;
    return $t->http(POST => ($prefix // '') . "/csc/v2/$method",
        token => $token, json => $body);
}


# --- info --------------------------------------------------------------------

my $r = csc('info', undef, {});
is $r->{status}, 200, 'info: 200 without a token';
is $r->{json}{specs}, '2.0.0.0', 'info: specs 2.0.0.0';
is_deeply [ sort @{$r->{json}{methods}} ],
    [ sort qw(credentials/list credentials/info credentials/authorize
              signatures/signHash) ], 'info: the methods implemented';
ok scalar(grep { $_ eq '1.2.840.113549.1.1.11' }
    @{$r->{json}{signAlgorithms}{algos}}), 'info: sha256WithRSAEncryption';


# --- credentials ----------------------------------------------------------------

$r = csc('credentials/list', $doctor, { credentialInfo => JSON::PP::true,
    certificates => 'chain', certInfo => JSON::PP::true });
is $r->{status}, 200, 'credentials/list: 200';
is scalar @{$r->{json}{credentialIDs}}, 1, 'the doctor has one credential';
my $cred = $r->{json}{credentialIDs}[0];
my $info = $r->{json}{credentialInfos}[0];
is $info->{credentialID}, $cred, 'credentialInfos: the same id';
is "$info->{key}{status} $info->{key}{len}", 'enabled 2048', 'key: enabled, 2048';
is $info->{auth}{mode}, 'explicit', 'auth/mode explicit (the daily login)';
is $info->{multisign}, 32, 'multisign: hpki_sign_max_hashes';
like $info->{cert}{subjectDN}, qr/Taro Yamada/, 'cert: subjectDN';
like $info->{cert}{validTo}, qr/^\d{14}Z$/, 'cert: validTo as GeneralizedTime';
ok @{$info->{cert}{certificates}} >= 2, 'certificates "chain": leaf and CA';
my $der = `openssl x509 -in '$cert' -outform DER`;
is unb64($info->{cert}{certificates}[0]), $der,
    'the first certificate is the second certificate, DER';

$r = csc('credentials/list', $doctor, { userID => 'someone-else' });
is "$r->{status} $r->{json}{error_description}",
    '400 userID parameter MUST be null', 'list: userID refused';

$r = csc('credentials/info', $doctor, { credentialID => $cred,
    certificates => 'single' });
is "$r->{status} $r->{json}{key}{len}", '200 2048', 'credentials/info: 200';
is scalar @{$r->{json}{cert}{certificates}}, 1, 'certificates "single"';

$r = csc('credentials/info', $doctor, { credentialID => 'nope' });
is "$r->{status} $r->{json}{error_description}",
    '400 Invalid parameter credentialID', 'info: unknown credentialID';

$r = csc('credentials/info', $doctor, {});
like $r->{json}{error_description}, qr/parameter credentialID/,
    'info: credentialID missing';


# --- authorize and signHash, bound to two hashes ----------------------------------

my @d = map { sha256("prescription $_") } 1 .. 3;

$r = csc('credentials/authorize', $doctor, { credentialID => $cred,
    numSignatures => 2, hashes => [ b64($d[0]), b64($d[1]) ],
    hashAlgorithmOID => '2.16.840.1.101.3.4.2.1' });
is $r->{status}, 200, 'authorize: 200';
is $r->{json}{expiresIn}, 300, 'authorize: expiresIn 300 by default';
my $sad = $r->{json}{SAD};
ok $sad, 'a SAD';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $sad, hashes => [ b64($d[2]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
is "$r->{status} $r->{json}{error_description}",
    '400 Hash is not authorized by the SAD', 'SAD misuse: other hashes';

$r = csc('signatures/signHash', $doctor, { credentialID => 'nope',
    SAD => $sad, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
is "$r->{status} $r->{json}{error_description}",
    '400 Invalid parameter credentialID', 'SAD misuse: a wrong credential';

$r = csc('signatures/signHash', $pharmacist, { credentialID => $cred,
    SAD => $sad, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
is "$r->{status} $r->{json}{error_description}",
    '400 Invalid parameter SAD',
    "the pharmacist cannot use the doctor's SAD";

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $sad, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
is $r->{status}, 200, 'signHash: 200';
is_deeply [ keys %{$r->{json}} ], ['signatures'], 'signHash: signatures only';
ok $t->verify_signature(cert => $cert, digest => $d[0],
    signature => $r->{json}{signatures}[0]),
    'signHash (sha256WithRSAEncryption) verifies with openssl';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $sad, hashes => [ b64($d[1]) ],
    signAlgo => '1.2.840.113549.1.1.1',
    hashAlgorithmOID => '2.16.840.1.101.3.4.2.1' });
is $r->{status}, 200, 'signHash (rsaEncryption + hashAlgorithmOID): 200';
ok $t->verify_signature(cert => $cert, digest => $d[1],
    signature => $r->{json}{signatures}[0]), '... verifies';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $sad, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
is "$r->{status} $r->{json}{error_description}",
    '400 Invalid parameter SAD', 'SAD misuse: reuse beyond numSignatures';


# --- a SAD for a count, PSS, SHA-384 ------------------------------------------

$r = csc('credentials/authorize', $doctor, { credentialID => $cred,
    numSignatures => 3 });
my $count_sad = $r->{json}{SAD};

my $h384 = sha384('prescription');
$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $count_sad, hashes => [ b64($h384) ],
    signAlgo => '1.2.840.113549.1.1.12' });
is $r->{status}, 200, 'count-bound SAD, sha384WithRSAEncryption: 200';
ok $t->verify_signature(cert => $cert, digest => $h384, hash => 'sha384',
    signature => $r->{json}{signatures}[0]), '... verifies';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $count_sad, hashes => [ b64($d[2]) ],
    signAlgo => '1.2.840.113549.1.1.10', signAlgoParams => $pss_params });
is $r->{status}, 200, 'RSASSA-PSS with signAlgoParams: 200';
ok verify_pss($r->{json}{signatures}[0], $d[2]),
    '... verifies (PSS, MGF1-SHA256, salt 32)';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $count_sad, hashes => [ b64($d[0]), b64($d[1]) ],
    signAlgo => '1.2.840.113549.1.1.11' });
like $r->{json}{error_description}, qr/Invalid parameter SAD/,
    'SAD misuse: more signatures than are left';

$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $count_sad, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.10' });
is $r->{json}{error_description},
    'Missing (or invalid type) string parameter signAlgoParams',
    'PSS without signAlgoParams: refused';


# --- an expired SAD -------------------------------------------------------------

$r = csc('credentials/authorize', $doctor, { credentialID => $cred,
    numSignatures => 1 }, '/short');
is $r->{json}{expiresIn}, 1, 'a SAD of 1s';
my $short = $r->{json}{SAD};
sleep 2.1;
$r = csc('signatures/signHash', $doctor, { credentialID => $cred,
    SAD => $short, hashes => [ b64($d[0]) ],
    signAlgo => '1.2.840.113549.1.1.11' }, '/short');
is "$r->{status} $r->{json}{error_description}", '400 SAD expired',
    'SAD misuse: expired';


# --- the pharmacist and the doctor's key ---------------------------------------

$r = csc('credentials/authorize', $pharmacist, { credentialID => $cred,
    numSignatures => 1 });
is "$r->{status} $r->{json}{error_description}",
    '400 Invalid parameter credentialID',
    "the pharmacist cannot authorize the doctor's credential";


# --- bad bodies: CSC's 400s, in JSON ----------------------------------------------

my @bad = (
    [ 'not JSON', 'nope', qr/not a JSON object/ ],
    [ 'authorize without numSignatures', { credentialID => $cred },
      qr/integer parameter numSignatures/ ],
    [ 'numSignatures 0', { credentialID => $cred, numSignatures => 0 },
      qr/Invalid value for parameter numSignatures/ ],
    [ 'numSignatures 33', { credentialID => $cred, numSignatures => 33 },
      qr/Numbers of signatures is too high/ ],
);
for my $case (@bad) {
    my ($name, $body, $why) = @$case;
    my $res = $t->http(POST => '/csc/v2/credentials/authorize',
        token => $doctor, ref $body ? (json => $body) : (body => $body));
    is $res->{status}, 400, "$name: 400";
    like $res->{json}{error_description}, $why, "$name: says why";
}

my %sign = (credentialID => $cred, SAD => $count_sad,
    signAlgo => '1.2.840.113549.1.1.11');
for my $case (
    [ 'unknown signAlgo', { %sign, hashes => [ b64($d[0]) ],
      signAlgo => '1.2.3.4' }, qr/Invalid parameter signAlgo/ ],
    [ 'digest of the wrong length', { %sign, hashes => [ b64('short') ] },
      qr/Invalid digest value length/ ],
    [ 'empty hashes', { %sign, hashes => [] }, qr/Empty hash array/ ],
    [ 'no SAD', { %sign, SAD => undef, hashes => [ b64($d[0]) ] },
      qr/string parameter SAD/ ],
    # 513 bytes once overflowed a 512-byte buffer (fuzz/regressions/csc/)
    [ 'signAlgoParams of 684 characters', { %sign, hashes => [ b64($d[0]) ],
      signAlgo => '1.2.840.113549.1.1.10', signAlgoParams => 'A' x 684 },
      qr/^Invalid parameter signAlgoParams: RSASSA-PSS needs/ ],
) {
    my ($name, $body, $why) = @$case;
    delete $body->{SAD} unless defined $body->{SAD};
    my $res = csc('signatures/signHash', $doctor, $body);
    like "$res->{status} $res->{json}{error_description}", qr/^400 /,
        "$name: 400";
    like $res->{json}{error_description}, $why, "$name: says why";
}

is csc('credentials/nothing', $doctor, {})->{status}, 404,
    'an unknown method: 404';
is csc('credentials/list', undef, {})->{status}, 401, 'no token: 401';


sub verify_pss {
    my ($sig, $digest) = @_;
    my $d = $t->testdir;
    system("openssl x509 -in '$cert' -pubkey -noout > '$d/pss.pub'") == 0
        or return 0;
    open my $fh, '>:raw', "$d/pss.dgst" or die;
    print $fh $digest;
    close $fh;
    open $fh, '>:raw', "$d/pss.sig" or die;
    print $fh unb64($sig);
    close $fh;
    my $out = `openssl pkeyutl -verify -pubin -inkey '$d/pss.pub' -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in '$d/pss.dgst' -sigfile '$d/pss.sig' 2>&1`;
    return $out =~ /Verified Successfully/;
}
