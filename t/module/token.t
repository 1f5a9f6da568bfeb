#!/usr/bin/perl

# Card login and the token check, against a real nginx with the module, a
# real redis-server and real TLS client certificates from the demo PKI.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use JSON::PP;

use Hpki::Test qw(jwt_claims b64url unb64url);
use HpkiModule qw(gateway_conf x5t make_jwt link_card);

my $t = Hpki::Test->new(need => ['module'])
    ->start_redis
    ->write_nginx_conf(gateway_conf(server => <<'CONF'))
        # the pitfall docs/module.md warns of: return acts in the rewrite
        # phase, before hpki_auth's access-phase check
        # a browser location: no valid token sends the person to log in
        location = /portal {
            hpki_auth on;
            hpki_auth_login_url https://login.example/card?return=$request_uri;
            hpki_whoami;
        }

        location = /return-pitfall {
            hpki_auth on;
            return 200 "not protected\n";
        }
CONF
    ->start_nginx;

plan tests => 95;


# --- card login --------------------------------------------------------------

my $r = $t->http(POST => '/hpki/login/card');
is $r->{status}, 401, 'login without a card: 401';
is $r->{json}{error}, 'invalid_client', 'login without a card: JSON error';
like $r->{json}{error_description}, qr/no client certificate/,
    'login without a card: says why';

$r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 403, 'unregistered card: 403';
like $r->{json}{error_description}, qr/not registered/,
    'unregistered card: says so';

link_card($t, 'demo-doctor', 'doctor_auth');

$r = $t->http(GET => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 405, 'login by GET: 405';
is $r->{headers}{'content-type'}, 'application/json', 'login by GET: JSON';

$r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 200, 'card login: 200';
is $r->{headers}{'content-type'}, 'application/json', 'card login: JSON';
is $r->{headers}{'cache-control'}, 'no-store', 'card login: no-store';
is $r->{json}{token_type}, 'Bearer', 'token_type Bearer';
is $r->{json}{expires_in}, 18 * 3600, 'expires_in: 18 hours by default';

my $token = $r->{json}{access_token};
my ($h64) = split /\./, $token;
my $header = decode_json(unb64url($h64));
my $claims = jwt_claims($token);

is $header->{alg}, 'RS256', 'header: RS256';
is $header->{kid}, $t->token_kid, 'header: kid';
is $claims->{sub}, 'demo-doctor', 'sub: the registered user id';
is $claims->{iss}, $t->token_issuer, 'iss';
is $claims->{aud}, 'hpki', 'aud';
is $claims->{hpki_role}, 'Medical Doctor', 'hpki_role from the card';
is_deeply $claims->{amr}, ['hpki_card'], 'amr: hpki_card';
like $claims->{scope}, qr/(^| )sign( |$)/, 'scope has sign';
is $claims->{exp} - $claims->{iat}, 18 * 3600, 'exp = iat + 18h';
ok $claims->{nbf} <= $claims->{iat}, 'nbf';
is $claims->{cnf}{'x5t#S256'}, x5t($t->pki('doctor_auth_cert')),
    'cnf.x5t#S256 binds the card certificate';
like $claims->{jti}, qr/^[A-Za-z0-9_-]{16,}$/, 'jti';

is $t->redis('GET', "hpki:tok:$claims->{jti}"), 'demo-doctor',
    'token state in Redis names the subject';
my $ttl = $t->redis('TTL', "hpki:tok:$claims->{jti}");
ok $ttl > 18 * 3600 - 60 && $ttl <= 18 * 3600, 'token state expires with it';

# the signature is plain RS256: openssl verifies it with the public key
{
    my $d = $t->testdir;
    my ($hb, $pb, $sb) = split /\./, $token;
    open my $fh, '>', "$d/tok.in" or die;
    print $fh "$hb.$pb";
    close $fh;
    open $fh, '>:raw', "$d/tok.sig" or die;
    print $fh unb64url($sb);
    close $fh;
    my $pub = $t->token_public_key;
    my $out = `openssl dgst -sha256 -verify '$pub' -signature '$d/tok.sig' '$d/tok.in' 2>&1`;
    like $out, qr/Verified OK/, 'openssl verifies the token signature';
}

# the field encoding of hcRole (extra SET) and the standard one both work
link_card($t, 'std-doctor', 'std_auth');
$r = $t->http(POST => '/hpki/login/card', cert => 'std_auth');
is $r->{status}, 200, 'standard hcRole encoding: login';
is jwt_claims($r->{json}{access_token})->{hpki_role}, 'Medical Doctor',
    'standard hcRole encoding: role';

link_card($t, 'no-role', 'norole_auth');
$r = $t->http(POST => '/hpki/login/card', cert => 'norole_auth');
is $r->{status}, 403, 'card without hcRole: 403';
like $r->{json}{error_description}, qr/hcRole/, 'card without hcRole: says so';

link_card($t, 'demo-pharmacist', 'pharmacist_auth');
my $ph_token = $t->login('pharmacist_auth');
is jwt_claims($ph_token)->{hpki_role}, 'Pharmacist', 'pharmacist role';


# --- the token check ---------------------------------------------------------

# every check twice in the same nginx: nothing leaks between requests

my (%base, $hdr, $pub, $other);

for my $pass (1, 2) {
    $r = $t->http(GET => '/whoami', token => $token);
    is $r->{status}, 200, 'whoami with the token: 200';
    is_deeply [ @{$r->{json}}{qw(sub role auth_method)} ],
        ['demo-doctor', 'Medical Doctor', 'hpki_card'],
        'whoami: subject, role and method';
    is $r->{headers}{'x-subject'}, 'demo-doctor', '$hpki_subject';
    is $r->{headers}{'x-role'}, 'Medical Doctor', '$hpki_role';

    $r = $t->http(GET => '/whoami');
    is $r->{status}, 401, 'no token: 401';
    is $r->{headers}{'www-authenticate'}, 'Bearer realm="hpki"',
        'no token: bare Bearer challenge';
    is $r->{json}{error}, 'invalid_token', 'no token: JSON error';
    ok !defined $r->{headers}{'x-subject'}, 'no token: no subject';

    $r = $t->http(GET => '/whoami', token => 'garbage');
    is $r->{status}, 401, 'garbage token: 401';
    like $r->{headers}{'www-authenticate'}, qr/error="invalid_token"/,
        'garbage token: error="invalid_token"';

    # past the module's 8 KiB limit, inside nginx's header buffers
    $r = $t->http(GET => '/whoami', token => 'x' x 9000);
    is $r->{status}, 401, 'oversized token: 401';
    is $r->{json}{error}, 'invalid_request', 'oversized token: JSON error';

    # the same claims with another subject, the signature kept: refused
    {
        my ($hb, $pb, $sb) = split /\./, $token;
        my %c = %$claims;
        $c{sub} = 'demo-pharmacist';
        my $forged = "$hb." . b64url(JSON::PP->new->canonical->encode(\%c))
            . ".$sb";
        is $t->http(GET => '/whoami', token => $forged)->{status}, 401,
            'altered claims: 401';
    }

    %base = %$claims;
    $hdr = { alg => 'RS256', typ => 'JWT', kid => $t->token_kid };

    is $t->http(GET => '/whoami',
        token => make_jwt($t, { alg => 'none', typ => 'JWT' }, \%base,
                          signature => ''))->{status},
        401, 'alg "none": 401';

    $pub = do {
        local $/;
        open my $fh, '<', $t->token_public_key or die;
        <$fh>;
    };
    is $t->http(GET => '/whoami',
        token => make_jwt($t, { alg => 'HS256', typ => 'JWT',
                                kid => $t->token_kid },
                          \%base, hmac => $pub))->{status},
        401, 'HS256 with the public key as secret (alg confusion): 401';

    is $t->http(GET => '/whoami', token => make_jwt($t, $hdr, \%base))->{status},
        200, 'a hand-made token with the same claims passes (control)';

    is $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, { %base, exp => time - 3600 }))->{status},
        401, 'expired: 401';
    is $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, { %base, nbf => time + 3600 }))->{status},
        401, 'not yet valid: 401';
    is $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, { %base, iss => 'https://evil' }))->{status},
        401, 'wrong issuer: 401';
    is $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, { %base, aud => 'other' }))->{status},
        401, 'wrong audience: 401';

    $other = $t->testdir . '/other.key';
    system("openssl genrsa -out '$other' 2048 2>/dev/null") == 0 or die;
    is $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, \%base, key => $other))->{status},
        401, 'signed by another key: 401';

    $r = $t->http(GET => '/whoami',
        token => make_jwt($t, $hdr, { %base, jti => 'never-issued' }));
    is $r->{status}, 401, 'unknown to Redis: 401';
    like $r->{json}{error_description}, qr/revoked or unknown/,
        'unknown to Redis: says so';

    # RFC 8705 binding: without a client certificate (the EHR) fine, with
    # another card refused
    is $t->http(GET => '/whoami', token => $token, cert => 'doctor_auth')
        ->{status}, 200, 'bound token with its own card: 200';
    $r = $t->http(GET => '/whoami', token => $token, cert => 'pharmacist_auth');
    is $r->{status}, 401, 'bound token with another card: 401';
    like $r->{json}{error_description}, qr/bound to another/,
        'bound token with another card: says so';

    # the browser failure mode
    $r = $t->http(GET => '/portal?x=1');
    is $r->{status}, 302, 'browser location without a token: 302';
    is $r->{headers}{location}, 'https://login.example/card?return=/portal?x=1',
        'browser location: to the login URL, with the way back';
    is $t->http(GET => '/portal', token => $token)->{status}, 200,
        'browser location with the token: 200';
}

$t->redis('DEL', "hpki:tok:$claims->{jti}");
is $t->http(GET => '/whoami', token => $token)->{status}, 401,
    'token state deleted (revoked): 401 at once';
is $t->http(GET => '/portal', token => $token)->{status}, 302,
    'revoked at a browser location: 302 to log in';

is $t->http(GET => '/return-pitfall')->{status}, 200,
    'documented pitfall: "return" answers before the token check';

# twice: nothing leaks from one request into the next
is $t->http(GET => '/whoami', token => $ph_token)->{json}{sub},
    'demo-pharmacist', 'next request: its own subject';
is $t->http(GET => '/whoami', token => $ph_token)->{json}{sub},
    'demo-pharmacist', 'and again';
