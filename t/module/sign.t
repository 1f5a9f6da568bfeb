#!/usr/bin/perl

# The spine, end to end with real parts: a doctor logs in with the HPKI card
# over TLS, gets a token, and POST /hpki/sign returns a signature that
# hpki-signd made from two key shares; openssl verifies it against the
# second certificate. Then what goes wrong: bad input, a missing key, a
# missing scope, a dead sidecar.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256 sha384 sha512);

use Hpki::Test qw(b64 unb64 jwt_claims);
use HpkiModule qw(gateway_conf make_jwt);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor')
    ->enroll(id => 'demo-pharmacist', auth => 'pharmacist_auth', key => 0)
    ->write_nginx_conf(gateway_conf(server => <<'CONF'))
        location = /hpki/sign-limited {
            hpki_auth on;
            hpki_sign_rate 3r/m;
            hpki_sign_pass hpki_signd;
        }
CONF
    ->start_nginx;

plan tests => 51;

my $cert = $t->{enrolled}{'demo-doctor'}{cert};
my $token = $t->login('doctor_auth');


# --- one digest, PKCS#1 v1.5 with SHA-256 ------------------------------------

my $digest = sha256('prescription #1');

my $r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($digest) ] });

is $r->{status}, 200, 'sign: 200';
is $r->{headers}{'content-type'}, 'application/json', 'sign: JSON';
is scalar @{$r->{json}{signatures} // []}, 1, 'one signature';
like $r->{json}{certificate}, qr/^-----BEGIN CERTIFICATE-----/,
    'the second certificate comes with it';
is length(unb64($r->{json}{signatures}[0])), 256,
    'left-padded to the 2048-bit modulus';
ok $t->verify_signature(cert => $r->{json}{certificate}, digest => $digest,
    signature => $r->{json}{signatures}[0]),
    'openssl pkeyutl -verify accepts it with the second certificate';
ok $t->verify_signature(cert => $cert, digest => $digest,
    signature => $r->{json}{signatures}[0]),
    '... which is the certificate the CA issued';
ok !$t->verify_signature(cert => $cert, digest => sha256('prescription #2'),
    signature => $r->{json}{signatures}[0]),
    '... and it does not verify for another digest';
ok ref $r->{json}{chain} eq 'ARRAY', 'chain is a list';


# --- several digests, in request order ---------------------------------------

my @digests = map { sha256("prescription #$_") } 1 .. 3;
$r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ map { b64($_) } @digests ] });
is $r->{status}, 200, 'three hashes: 200';
is scalar @{$r->{json}{signatures}}, 3, 'three signatures';
is scalar(grep {
        $t->verify_signature(cert => $cert, digest => $digests[$_],
            signature => $r->{json}{signatures}[$_])
    } 0 .. 2), 3, 'each verifies for its own digest, in order';


# --- other hashes and PSS -----------------------------------------------------

for my $case ([sha384 => \&sha384], [sha512 => \&sha512]) {
    my ($alg, $fn) = @$case;
    my $d = $fn->('prescription');
    $r = $t->http(POST => '/hpki/sign', token => $token,
        json => { hashes => [ b64($d) ], hash_alg => $alg });
    is $r->{status}, 200, "$alg: 200";
    ok $t->verify_signature(cert => $cert, digest => $d, hash => $alg,
        signature => $r->{json}{signatures}[0]), "$alg: verifies";
}

$r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($digest) ], sig_alg => 'rsa-pss' });
is $r->{status}, 200, 'rsa-pss: 200';
ok verify_pss($t, $cert, $digest, $r->{json}{signatures}[0]),
    'rsa-pss: openssl verifies (PSS, MGF1-SHA256, salt = digest length)';


# --- bad input: a clear 4xx in JSON, and the service carries on ---------------

my @bad = (
    [ 'not JSON', 'hello', 400 ],
    [ 'a JSON array', '[]', 400 ],
    [ 'no hashes', {}, 400 ],
    [ 'empty hashes', { hashes => [] }, 400 ],
    [ 'hashes not a list', { hashes => b64($digest) }, 400 ],
    [ 'a hash that is not base64', { hashes => [ '!' x 44 ] }, 400 ],
    [ 'a digest of the wrong length', { hashes => [ b64('short') ] }, 400 ],
    [ 'SHA-256 digest called sha512',
      { hashes => [ b64($digest) ], hash_alg => 'sha512' }, 400 ],
    [ 'unknown hash_alg', { hashes => [ b64($digest) ], hash_alg => 'md5' },
      400 ],
    [ 'unknown sig_alg', { hashes => [ b64($digest) ], sig_alg => 'ecdsa' },
      400 ],
    [ '33 hashes (over the default 32)',
      { hashes => [ (b64($digest)) x 33 ] }, 400 ],
);

for my $case (@bad) {
    my ($name, $body, $want) = @$case;
    my $res = $t->http(POST => '/hpki/sign', token => $token,
        ref $body ? (json => $body) : (body => $body));
    is $res->{status} . ' ' . ($res->{json}{error} // 'no JSON'),
        "$want invalid_request", "$name: $want with a JSON error";
}

$r = $t->http(POST => '/hpki/sign', token => $token,
    body => '{"hashes":["' . ('A' x 70000) . '"]}');
is $r->{status}, 413, 'a body over 64 KiB: 413';
is $r->{json}{error}, 'invalid_request', 'a body over 64 KiB: JSON error';

is $t->http(GET => '/hpki/sign', token => $token)->{status}, 405,
    'GET: 405';

$r = $t->http(POST => '/hpki/sign', json => { hashes => [ b64($digest) ] });
is $r->{status}, 401, 'no token: 401';


# --- who may sign --------------------------------------------------------------

my $claims = jwt_claims($token);
my $narrow = make_jwt($t, { alg => 'RS256', typ => 'JWT',
                            kid => $t->token_kid },
                      { %$claims, jti => 'narrow-1', scope => 'openid' });
$t->redis('SET', 'hpki:tok:narrow-1', 'demo-doctor');
$r = $t->http(POST => '/hpki/sign', token => $narrow,
    json => { hashes => [ b64($digest) ] });
is $r->{status}, 403, 'a token without the sign scope: 403';
is $r->{json}{error}, 'insufficient_scope', '... insufficient_scope';

my $ph_token = $t->login('pharmacist_auth');
$r = $t->http(POST => '/hpki/sign', token => $ph_token,
    json => { hashes => [ b64($digest) ] });
is $r->{status}, 403, 'a user without a second certificate: 403';
is $r->{json}{error}, 'no_certificate', '... no_certificate';


# --- a per-user rate limit, in Redis, counted in signatures -------------------

my @two = (b64(sha256('a')), b64(sha256('b')));
is $t->http(POST => '/hpki/sign-limited', token => $token,
    json => { hashes => \@two })->{status}, 200, 'rate: 2 of 3: 200';
my $audited = audit_lines();
$r = $t->http(POST => '/hpki/sign-limited', token => $token,
    json => { hashes => \@two });
is $r->{status}, 429, 'rate: 2 more would make 4 of 3: 429';
is $r->{json}{error}, 'too_many_requests', 'rate: too_many_requests';

is $t->http(POST => '/hpki/sign-limited', token => $token,
    json => { hashes => [ $two[0] ] })->{status}, 200,
    'rate: the one that fits: 200 (a refused request takes nothing)';
is audit_lines(), $audited + 1,
    'rate: the audit log has its one signature, none for the refused one';
is $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => \@two })->{status}, 200,
    'rate: an unlimited location is not affected';


# --- logs: what happened, never the secrets -----------------------------------

$t->error_log_like(qr/hpki: signed 1 sha256 hash\(es\) for "demo-doctor"/,
    'nginx logs each signing');
unlike join('', grep { /hpki:/ } split /^/m, $t->error_log), qr/\Q$token\E/,
    'the module never logs the token';
like $t->audit_log, qr/demo-doctor/, 'hpki-signd audits the signature';


# --- the sidecar down: 503 JSON, and back -------------------------------------

$t->stop('signd');

$r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($digest) ] });
is $r->{status}, 503, 'sidecar down: 503';
is $r->{json}{error}, 'temporarily_unavailable', 'sidecar down: JSON error';
ok !exists $r->{json}{signatures}, 'sidecar down: no signature';

$t->start_signd;

$r = $t->http(POST => '/hpki/sign', token => $token,
    json => { hashes => [ b64($digest) ] });
is $r->{status}, 200, 'sidecar back: 200';
ok $t->verify_signature(cert => $cert, digest => $digest,
    signature => $r->{json}{signatures}[0]), 'sidecar back: verifies';


sub audit_lines {
    my @l = split /\n/, $t->audit_log;
    return scalar @l;
}

sub verify_pss {
    my ($t, $cert, $digest, $sig) = @_;
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
