#!/usr/bin/perl

# The gateway's keys and its tokens' lifecycle: JWKS and discovery, two keys
# at once for rotation, introspection (RFC 7662) and revocation (RFC 7009),
# which takes effect at once here even with the token cache on.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use JSON::PP;

use Hpki::Test qw(jwt_claims unb64url b64url);
use HpkiModule qw(gateway_conf link_card make_jwt);

my $t = Hpki::Test->new(need => ['module'])->start_redis;

# the next key of a rotation: published and accepted, not yet signing
my $next = $t->testdir . '/next.key';
system("openssl ecparam -name prime256v1 -genkey -noout -out '$next.sec1'"
    . " && openssl pkcs8 -topk8 -nocrypt -in '$next.sec1' -out '$next'")
    == 0 or die;

$t->write_nginx_conf(gateway_conf(
    http => "    hpki_token_key $next kid=next;\n"
          . "    hpki_token_cache 64k valid=1m;\n",
    server => <<'CONF'))
        location = /.well-known/jwks.json {
            hpki_jwks;
        }

        location = /.well-known/openid-configuration {
            hpki_discovery;
        }

        location = /hpki/introspect {
            allow 127.0.0.1;
            deny all;
            hpki_introspect;
        }

        location = /hpki/revoke {
            hpki_revoke;
        }
CONF
    ->start_nginx;

plan tests => 2 * 13 + 10;

link_card($t, 'demo-doctor', 'doctor_auth');


# --- JWKS and discovery ---------------------------------------------------------

my $r = $t->http(GET => '/.well-known/jwks.json');
is $r->{status}, 200, 'JWKS: 200';
my %jwk = map { $_->{kid} => $_ } @{$r->{json}{keys} // []};
is_deeply [ sort keys %jwk ], [ 'next', $t->token_kid ],
    'JWKS: both keys of the rotation';
is "$jwk{$t->token_kid}{kty} $jwk{$t->token_kid}{alg} $jwk{next}{kty} "
    . "$jwk{next}{alg}", 'RSA RS256 EC ES256', 'JWKS: key types';

my $modulus = `openssl rsa -pubin -in '${\ $t->token_public_key}' -noout -modulus`;
$modulus =~ s/^Modulus=//;
chomp $modulus;
is uc unpack('H*', unb64url($jwk{$t->token_kid}{n})), $modulus,
    'JWKS: the published modulus is the token key';

$r = $t->http(GET => '/.well-known/openid-configuration');
is $r->{json}{issuer}, $t->token_issuer, 'discovery: issuer';
is $r->{json}{jwks_uri}, $t->token_issuer . '/.well-known/jwks.json',
    'discovery: jwks_uri';
is $r->{json}{revocation_endpoint}, $t->token_issuer . '/hpki/revoke',
    'discovery: revocation_endpoint';

my $token = $t->login('doctor_auth');
my ($h64) = split /\./, $token;
is decode_json(unb64url($h64))->{kid}, $t->token_kid,
    'the first key signs new tokens';

# a token of the next key (as after the rotation) passes too
my $claims = jwt_claims($token);
my $rotated = make_jwt($t, { alg => 'ES256', typ => 'JWT', kid => 'next' },
    { %$claims, jti => 'rotated-1' }, key => $next);
$t->redis('SET', 'hpki:tok:rotated-1', 'demo-doctor');
# openssl dgst -sign gives a DER ECDSA signature: JWS wants r || s
$rotated = der_to_jws_es256($rotated);
is $t->http(GET => '/whoami', token => $rotated)->{status}, 200,
    'a token signed by the next key (ES256): 200';


# --- introspection and revocation, twice ---------------------------------------

for my $pass (1, 2) {
    my $token = $t->login('doctor_auth');

    $r = introspect($token);
    is $r->{status}, 200, "pass $pass: introspect: 200";
    is $r->{json}{active}, JSON::PP::true, "pass $pass: active";
    is $r->{json}{sub}, 'demo-doctor', "pass $pass: sub";
    is $r->{json}{hpki_role}, 'Medical Doctor', "pass $pass: hpki_role";

    is introspect('garbage')->{json}{active}, JSON::PP::false,
        "pass $pass: garbage: active false";

    $r = $t->http(POST => '/hpki/introspect', body => 'nothing=here',
        headers => ['Content-Type: application/x-www-form-urlencoded']);
    is $r->{status}, 400, "pass $pass: no token parameter: 400";
    is $r->{json}{error}, 'invalid_request', "pass $pass: ... invalid_request";

    # cached now (valid=1m): revocation here must still apply at once
    is $t->http(GET => '/whoami', token => $token)->{status}, 200,
        "pass $pass: before revocation: 200";

    $r = $t->http(POST => '/hpki/revoke', body => "token=$token",
        headers => ['Content-Type: application/x-www-form-urlencoded']);
    is $r->{status}, 200, "pass $pass: revoke: 200";

    is $t->http(GET => '/whoami', token => $token)->{status}, 401,
        "pass $pass: after revocation: 401 at once, cache or not";
    is introspect($token)->{json}{active}, JSON::PP::false,
        "pass $pass: after revocation: active false";

    $r = $t->http(POST => '/hpki/revoke', body => 'token=garbage',
        headers => ['Content-Type: application/x-www-form-urlencoded']);
    is $r->{status}, 200, "pass $pass: revoking garbage: 200 (RFC 7009)";

    is $t->http(GET => '/hpki/revoke')->{status}, 405, "pass $pass: GET: 405";
}

$t->stop('redis');
is introspect($token)->{status}, 503, 'Redis down: introspect 503';


sub introspect {
    my ($tok) = @_;
    return $t->http(POST => '/hpki/introspect', body => "token=$tok",
        headers => ['Content-Type: application/x-www-form-urlencoded']);
}

# re-encode an ECDSA DER signature as the JWS raw r || s

sub der_to_jws_es256 {
    my ($jwt) = @_;
    my ($h, $p, $s) = split /\./, $jwt;
    my $der = unb64url($s);
    my ($rr, $ss) = $der =~ /^\x30.\x02(.)/s
        ? do {
            my $rl = ord substr($der, 3, 1);
            my $rv = substr($der, 4, $rl);
            my $sl = ord substr($der, 5 + $rl, 1);
            my $sv = substr($der, 6 + $rl, $sl);
            ($rv, $sv);
        }
        : die "not DER";
    $_ = substr("\0" x 32 . $_, -32) for $rr, $ss;
    return "$h.$p." . b64url($rr . $ss);
}
