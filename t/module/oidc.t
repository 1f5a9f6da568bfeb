#!/usr/bin/perl

# The gateway as an OpenID Connect provider. A relying party built on
# Debian's python3-authlib (t/module/oidc_rp.py) runs the code flow with
# PKCE S256, presenting the card on the authorize request, validates the ID
# token against the JWKS, calls userinfo, rotates its refresh token and
# refreshes twice in parallel. The rest is driven here with curl: public
# clients must use PKCE, codes are single-use (a replay revokes what the
# code gave), unregistered redirect URIs are never redirected to,
# private_key_jwt assertions are single-use, JPKI logs in on its own
# server, logout revokes the session's tokens, and clients reload with
# nginx -s reload.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256);

use Hpki::Test qw(b64url unb64url jwt_claims);
use HpkiModule qw(gateway_conf link_card make_jwt x5t);

my $PY = '/usr/bin/python3';
plan skip_all => 'python3-authlib and python3-requests are needed'
    if system("$PY -c 'import authlib, requests' 2>/dev/null") != 0;

my $t = Hpki::Test->new(need => ['module'])->start_redis;
my $dir = $t->testdir;
my $json = JSON::PP->new->canonical;

# the client of private_key_jwt: its key pair, the public half as a JWK
my $rp_key = "$dir/rp-jwt.key";
system("openssl genrsa -out '$rp_key' 2048 2>/dev/null") == 0 or die;
my $mod = `openssl rsa -in '$rp_key' -noout -modulus`;
$mod =~ s/^Modulus=//;
chomp $mod;
my $rp_jwk = { kty => 'RSA', kid => 'rp-1', e => 'AQAB',
               n => b64url(pack 'H*', $mod) };

my $SECRET = 'basic-secret-0123456789abcdef';
my @clients = (
    { client_id => 'rp-basic', client_secret => $SECRET,
      token_endpoint_auth_method => 'client_secret_basic',
      redirect_uris => ['https://rp.example/cb'],
      post_logout_redirect_uris => ['https://rp.example/bye'],
      login => 'hpki_card', scopes => [qw(openid sign)] },
    { client_id => 'rp-public', token_endpoint_auth_method => 'none',
      redirect_uris => ['http://127.0.0.1:9/cb'], login => 'hpki_card' },
    { client_id => 'rp-jwt', token_endpoint_auth_method => 'private_key_jwt',
      jwks => { keys => [$rp_jwk] },
      redirect_uris => ['https://jwt.example/cb'], login => ['hpki_card'] },
    { client_id => 'rp-jpki', client_secret => 'post-secret-0123456789abcdef',
      token_endpoint_auth_method => 'client_secret_post',
      redirect_uris => ['https://jpki.example/cb'], login => 'jpki' },
);
write_clients(@clients);

$t->write_nginx_conf(gateway_conf(
    http => "    hpki_oidc_clients $dir/clients.json;\n",
    server => <<'CONF'))
        location = /.well-known/openid-configuration { hpki_discovery; }
        location = /.well-known/jwks.json { hpki_jwks; }
        location = /hpki/authorize { hpki_oidc_authorize; }
        location = /hpki/token { hpki_oidc_token; }
        location = /hpki/userinfo { hpki_auth on; hpki_oidc_userinfo; }
        location = /hpki/logout { hpki_oidc_logout; }
        location = /hpki/introspect { hpki_introspect; }
    }

    server {
        listen 127.0.0.1:%%HTTP_PORT%% ssl;
        server_name jpki;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%PKI_JPKI_CA_CERT%%;
        ssl_verify_client      optional_no_ca;
        ssl_verify_depth       2;

        location = /hpki/authorize { hpki_oidc_authorize jpki; }
CONF
    ->start_nginx;

plan tests => 85;

link_card($t, 'demo-doctor', 'doctor_auth');
$t->redis('HSET', 'hpki:user:demo-doctor', 'name', 'Taro Yamada',
    'role', 'Medical Doctor', 'status', 'active');
$t->redis('SET', 'hpki:jpki:' . x5t($t->pki('jpki_auth_cert')),
    'demo-doctor');

my $iss = $t->token_issuer;
my $jpki_authorize = 'https://127.0.0.1:' . $t->port('http')
    . '/hpki/authorize';


# --- discovery ---------------------------------------------------------------

my $r = $t->http(GET => '/.well-known/openid-configuration');
my $d = $r->{json};
is $d->{authorization_endpoint}, "$iss/hpki/authorize",
    'discovery: authorization_endpoint';
is $d->{token_endpoint}, "$iss/hpki/token", 'discovery: token_endpoint';
is $d->{userinfo_endpoint}, "$iss/hpki/userinfo",
    'discovery: userinfo_endpoint';
is $d->{end_session_endpoint}, "$iss/hpki/logout",
    'discovery: end_session_endpoint';
is_deeply $d->{code_challenge_methods_supported}, ['S256'],
    'discovery: PKCE S256 only';
is_deeply [ sort @{$d->{token_endpoint_auth_methods_supported}} ],
    [ qw(client_secret_basic client_secret_post none private_key_jwt) ],
    'discovery: client authentication methods';
is_deeply $d->{response_types_supported}, ['code'], 'discovery: code';
is $d->{introspection_endpoint}, "$iss/hpki/introspect",
    'discovery: the OAuth endpoints are still there';


# --- the code flow with authlib: client_secret_basic, PKCE, refresh --------

my $rp = run_rp(client_id => 'rp-basic', client_secret => $SECRET,
    redirect_uri => 'https://rp.example/cb', refresh => JSON::PP::true);

is $rp->{exception}, undef, 'authlib RP: no exception'
    or diag explain $rp;
is $rp->{authorize_status}, 302, 'authorize with the card: 302';
ok $rp->{redirect_ok}, '... to the registered redirect_uri';
ok $rp->{state_ok}, '... with the state';
like $rp->{authorize_url}, qr/[?&]prompt=login(&|$)/,
    '... the request had prompt=login';
ok $rp->{id_token_valid},
    'ID token valid against the JWKS (iss, aud, nonce, exp, auth_time)';
my $id = $rp->{id_claims} // {};
is $id->{sub}, 'demo-doctor', 'ID token: sub';
is_deeply $id->{amr}, ['hpki_card'], 'ID token: amr';
is $id->{acr}, 'urn:hpki:card', 'ID token: acr';
is $id->{hpki_role}, 'Medical Doctor', 'ID token: hpki_role';
ok $id->{auth_time} && $id->{auth_time} <= time + 5, 'ID token: auth_time';
ok length($id->{sid} // '') == 43, 'ID token: sid';
is $rp->{token}{token_type}, 'Bearer', 'token_type Bearer';

my $at = $rp->{token}{access_token} // '';
my $at_claims = jwt_claims($at);
is $at_claims->{sid}, $id->{sid}, 'the access token carries the session';
is_deeply $at_claims->{amr}, ['hpki_card'], 'access token: amr of the login';
is $t->http(GET => '/whoami', token => $at)->{status}, 200,
    'the access token passes the token check';

is $rp->{userinfo_status}, 200, 'userinfo: 200';
is_deeply $rp->{userinfo}, { sub => 'demo-doctor', name => 'Taro Yamada',
    hpki_role => 'Medical Doctor', amr => ['hpki_card'] },
    'userinfo: sub, name, hpki_role, amr';

ok $rp->{rotated}, 'refresh: a new refresh token';
ok $rp->{refreshed}{access_token} && $rp->{refreshed}{id_token},
    'refresh: new access and ID tokens';
is $rp->{old_refresh_status}, 400, 'the old refresh token: refused';
is $rp->{old_refresh_error}, 'invalid_grant', '... invalid_grant';
is_deeply $rp->{parallel_statuses}, [200, 400],
    'two parallel refreshes with one token: exactly one wins';


# --- logout revokes the session ----------------------------------------------

my $at2 = $rp->{refreshed}{access_token} // '';
$r = $t->http(GET => '/hpki/logout?id_token_hint=' . $rp->{token}{id_token}
    . '&post_logout_redirect_uri='
    . uri_escape('https://rp.example/evil') . '&state=s1');
is $r->{status}, 400, 'logout: unregistered post_logout_redirect_uri: 400';
is $t->http(GET => '/whoami', token => $at)->{status}, 200,
    '... and nothing was revoked';

$r = $t->http(GET => '/hpki/logout?id_token_hint=' . $rp->{token}{id_token}
    . '&post_logout_redirect_uri=' . uri_escape('https://rp.example/bye')
    . '&state=s1');
is $r->{status}, 302, 'logout: 302';
is $r->{headers}{location}, 'https://rp.example/bye?state=s1',
    '... to the registered post_logout_redirect_uri with the state';
is $t->http(GET => '/whoami', token => $at)->{status}, 401,
    'after logout: the access token is refused';
is $t->http(GET => '/whoami', token => $at2)->{status}, 401,
    'after logout: the refreshed access token too';
is introspect($at)->{json}{active}, JSON::PP::false,
    'after logout: introspection says inactive';
$r = token_post(basic => ['rp-basic', $SECRET], grant_type => 'refresh_token',
    refresh_token => $rp->{refreshed}{refresh_token});
is $r->{status}, 400, 'after logout: the refresh token is refused';


# --- errors before and after the redirect URI is known -----------------------

my ($verifier, $challenge) = pkce();

$r = authorize(client_id => 'rp-basic',
    redirect_uri => 'https://evil.example/cb');
is $r->{status}, 400, 'unregistered redirect_uri: 400';
is $r->{headers}{location}, undef, '... never redirected to';
is $r->{json}{error}, 'invalid_request', '... a JSON error';

$r = authorize(client_id => 'nobody', redirect_uri => 'https://rp.example/cb');
is $r->{status}, 400, 'unknown client: 400, no redirect';

$r = authorize(client_id => 'rp-public',
    redirect_uri => 'http://127.0.0.1:9/cb');
is $r->{status}, 302, 'public client without PKCE: redirected ...';
is loc($r)->{error}, 'invalid_request', '... with error=invalid_request';
like loc($r)->{error_description}, qr/PKCE/, '... saying PKCE is required';
is loc($r)->{state}, 'st', '... and the state';

$r = authorize(client_id => 'rp-public',
    redirect_uri => 'http://127.0.0.1:9/cb',
    code_challenge => $challenge, code_challenge_method => 'plain');
is loc($r)->{error}, 'invalid_request', 'code_challenge_method=plain: refused';

$r = authorize(client_id => 'rp-basic', redirect_uri => 'https://rp.example/cb',
    scope => 'profile');
is loc($r)->{error}, 'invalid_scope', 'scope without openid: invalid_scope';

$r = authorize(client_id => 'rp-basic', redirect_uri => 'https://rp.example/cb',
    prompt => 'none');
is loc($r)->{error}, 'login_required', 'prompt=none: login_required';

$r = authorize(client_id => 'rp-basic', redirect_uri => 'https://rp.example/cb',
    cert => undef);
is loc($r)->{error}, 'access_denied', 'no card: access_denied';
like loc($r)->{error_description}, qr/no client certificate/,
    '... saying why';

$r = authorize(client_id => 'rp-jpki',
    redirect_uri => 'https://jpki.example/cb');
is loc($r)->{error}, 'access_denied',
    'a JPKI client at the card endpoint: access_denied';


# --- PKCE and single-use codes (public client) -------------------------------

my $code = code_for('rp-public', 'http://127.0.0.1:9/cb', $challenge);
ok $code, 'public client with PKCE: a code';
$r = token_post(grant_type => 'authorization_code', client_id => 'rp-public',
    code => $code, redirect_uri => 'http://127.0.0.1:9/cb',
    code_verifier => 'x' x 43);
is $r->{status}, 400, 'wrong code_verifier: 400';
is $r->{json}{error}, 'invalid_grant', '... invalid_grant';

$code = code_for('rp-public', 'http://127.0.0.1:9/cb', $challenge);
$r = token_post(grant_type => 'authorization_code', client_id => 'rp-public',
    code => $code, redirect_uri => 'http://127.0.0.1:9/cb');
is $r->{status}, 400, 'no code_verifier: 400';

$code = code_for('rp-public', 'http://127.0.0.1:9/cb', $challenge);
$r = token_post(grant_type => 'authorization_code', client_id => 'rp-public',
    code => $code, redirect_uri => 'http://127.0.0.1:9/cb',
    code_verifier => $verifier);
is $r->{status}, 200, 'the right code_verifier: tokens';
is $r->{headers}{'cache-control'}, 'no-store', '... Cache-Control: no-store';
my $pub_at = $r->{json}{access_token};
my $pub_rt = $r->{json}{refresh_token};
is $t->http(GET => '/whoami', token => $pub_at)->{status}, 200,
    '... the access token works';

$r = token_post(grant_type => 'authorization_code', client_id => 'rp-public',
    code => $code, redirect_uri => 'http://127.0.0.1:9/cb',
    code_verifier => $verifier);
is $r->{status}, 400, 'the code a second time: 400';
is $t->http(GET => '/whoami', token => $pub_at)->{status}, 401,
    '... and the tokens issued from it are revoked';
is token_post(grant_type => 'refresh_token', client_id => 'rp-public',
    refresh_token => $pub_rt)->{status}, 400, '... the refresh token too';


# --- client authentication ---------------------------------------------------

$code = code_for('rp-basic', 'https://rp.example/cb');
$r = token_post(basic => ['rp-basic', 'wrong-secret-0123456789'],
    grant_type => 'authorization_code', code => $code,
    redirect_uri => 'https://rp.example/cb');
is $r->{status}, 401, 'wrong client secret: 401';
is $r->{json}{error}, 'invalid_client', '... invalid_client';
like $r->{headers}{'www-authenticate'} // '', qr/^Basic/,
    '... with a Basic challenge';

$r = token_post(client_id => 'rp-basic', client_secret => $SECRET,
    grant_type => 'authorization_code', code => $code,
    redirect_uri => 'https://rp.example/cb');
is $r->{status}, 401, "client_secret_post by a client_secret_basic client: 401";

$rp = run_rp(client_id => 'rp-jwt', auth_method => 'private_key_jwt',
    private_key => $rp_key, redirect_uri => 'https://jwt.example/cb');
is $rp->{exception}, undef, 'authlib RP with private_key_jwt: no exception'
    or diag explain $rp;
ok $rp->{id_token_valid}, 'private_key_jwt: a valid ID token';

my $assertion = make_jwt($t, { alg => 'RS256', typ => 'JWT', kid => 'rp-1' },
    { iss => 'rp-jwt', sub => 'rp-jwt', aud => "$iss/hpki/token",
      jti => 'once-' . time, iat => time, exp => time + 60 }, key => $rp_key);
my @jwt_auth = (client_assertion_type =>
    'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion => $assertion);
$code = code_for('rp-jwt', 'https://jwt.example/cb');
$r = token_post(@jwt_auth, grant_type => 'authorization_code', code => $code,
    redirect_uri => 'https://jwt.example/cb');
is $r->{status}, 200, 'a hand-made client assertion: 200';
$code = code_for('rp-jwt', 'https://jwt.example/cb');
$r = token_post(@jwt_auth, grant_type => 'authorization_code', code => $code,
    redirect_uri => 'https://jwt.example/cb');
is $r->{status}, 401, 'the same assertion again: 401';

my $forged = make_jwt($t, { alg => 'RS256', typ => 'JWT', kid => 'rp-1' },
    { iss => 'rp-jwt', sub => 'rp-jwt', aud => "$iss/hpki/token",
      jti => 'forged', iat => time, exp => time + 60 });
$r = token_post(client_assertion_type =>
    'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion => $forged, grant_type => 'authorization_code',
    code => code_for('rp-jwt', 'https://jwt.example/cb'),
    redirect_uri => 'https://jwt.example/cb');
is $r->{status}, 401, 'an assertion signed by another key: 401';


# --- JPKI through the code flow, on the JPKI server --------------------------

$rp = run_rp(client_id => 'rp-jpki', auth_method => 'client_secret_post',
    client_secret => 'post-secret-0123456789abcdef',
    redirect_uri => 'https://jpki.example/cb', cert_name => 'jpki_auth',
    authorize_endpoint => $jpki_authorize);
is $rp->{exception}, undef, 'JPKI RP: no exception' or diag explain $rp;
ok $rp->{id_token_valid}, 'JPKI: a valid ID token';
is_deeply $rp->{id_claims}{amr}, ['jpki'], 'JPKI: amr jpki';
is $rp->{id_claims}{acr}, 'urn:hpki:jpki', 'JPKI: acr';
is $rp->{id_claims}{hpki_role}, 'Medical Doctor',
    "JPKI: the linked HPKI identity's role";

$r = authorize(client_id => 'rp-basic', redirect_uri => 'https://rp.example/cb',
    cert => 'jpki_auth', url => $jpki_authorize);
is loc($r)->{error}, 'access_denied',
    'a card-only client at the JPKI endpoint: access_denied';


# --- clients reload with nginx -s reload --------------------------------------

$r = authorize(client_id => 'rp-new', redirect_uri => 'https://new.example/cb');
is $r->{status}, 400, 'a client not yet in the file: 400';

write_clients(@clients, { client_id => 'rp-new',
    client_secret => 'new-secret-0123456789abcdef',
    redirect_uris => ['https://new.example/cb'], login => 'hpki_card' });
kill 'HUP', $t->pid('nginx');

# old workers finish what they have (and may take a connection or two)
# while the new ones start: try until a new worker answers both steps
my ($got_code, $got_tokens) = (0, 0);
for (1 .. 50) {
    $r = authorize(client_id => 'rp-new',
        redirect_uri => 'https://new.example/cb');
    if ($r->{status} == 302 && loc($r)->{code}) {
        $got_code = 1;
        $r = token_post(basic => ['rp-new', 'new-secret-0123456789abcdef'],
            grant_type => 'authorization_code', code => loc($r)->{code},
            redirect_uri => 'https://new.example/cb');
        $got_tokens = 1, last if $r->{status} == 200;
    }
    select undef, undef, undef, 0.1;
}
ok $got_code, 'after nginx -s reload: the new client gets a code';
ok $got_tokens, '... and tokens';


# a client file that does not load: the reload is refused, the running
# clients stay
write_clients(@clients, { client_id => 'rp-bad',
    token_endpoint_auth_method => 'none', client_secret => 'x' x 20,
    redirect_uris => ['https://bad.example/cb'], login => 'hpki_card' });
kill 'HUP', $t->pid('nginx');
my $refused = 0;
for (1 .. 50) {
    $refused = 1, last if $t->error_log
        =~ /\[emerg\].*"client_secret" given to a client that does not/;
    select undef, undef, undef, 0.1;
}
ok $refused, 'a public client with a secret: the reload is refused, and why';
$r = authorize(client_id => 'rp-new', redirect_uri => 'https://new.example/cb');
ok loc($r)->{code}, '... the running clients stay';


# --- Redis down: fail closed -------------------------------------------------

$code = code_for('rp-basic', 'https://rp.example/cb');
$t->stop('redis');
$r = token_post(basic => ['rp-basic', $SECRET],
    grant_type => 'authorization_code', code => $code,
    redirect_uri => 'https://rp.example/cb');
is $r->{status}, 503, 'Redis down: token 503';
$r = authorize(client_id => 'rp-basic',
    redirect_uri => 'https://rp.example/cb');
is $r->{status}, 503, 'Redis down: authorize 503, no code';


# ------------------------------------------------------------------------------

sub write_clients {
    open my $fh, '>', "$dir/clients.json.new" or die $!;
    print $fh $json->pretty->encode({ clients => [@_] });
    close $fh;
    rename "$dir/clients.json.new", "$dir/clients.json" or die $!;
}

sub run_rp {
    my (%o) = @_;
    my $cert = delete $o{cert_name} // 'doctor_auth';
    my $cfg = { issuer => $iss, ca => $t->pki('server_ca_cert'),
        cert => $t->pki("${cert}_cert"), key => $t->pki("${cert}_key"),
        %o };
    open my $fh, '>', "$dir/rp.json" or die $!;
    print $fh $json->encode($cfg);
    close $fh;
    my $out = `$PY '$FindBin::Bin/oidc_rp.py' '$dir/rp.json' 2>&1`;
    my $res = eval { decode_json($out) };
    return $res // { exception => "oidc_rp.py: $out" };
}

sub pkce {
    my $v = b64url(join '', map { chr int rand 256 } 1 .. 32);
    return ($v, b64url(sha256($v)));
}

sub authorize {
    my (%p) = @_;
    my $cert = exists $p{cert} ? delete $p{cert} : 'doctor_auth';
    my $url = delete $p{url} // "$iss/hpki/authorize";
    %p = (response_type => 'code', scope => 'openid sign', state => 'st',
          nonce => 'n-' . rand, %p);
    my $q = join '&', map { "$_=" . uri_escape($p{$_}) } sort keys %p;
    return $t->http(GET => '', url => "$url?$q",
        (defined $cert ? (cert => $cert) : ()));
}

# the query of a redirect's Location
sub loc {
    my ($r) = @_;
    my ($q) = ($r->{headers}{location} // '') =~ /\?(.*)$/;
    my %q;
    for (split /&/, $q // '') {
        my ($k, $v) = split /=/, $_, 2;
        ($q{$k} = $v // '') =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    }
    return \%q;
}

sub code_for {
    my ($client, $redirect, $challenge) = @_;
    my $r = authorize(client_id => $client, redirect_uri => $redirect,
        ($challenge ? (code_challenge => $challenge,
                       code_challenge_method => 'S256') : ()));
    return loc($r)->{code};
}

sub token_post {
    my (%p) = @_;
    my $basic = delete $p{basic};
    my @h = ('Content-Type: application/x-www-form-urlencoded');
    push @h, 'Authorization: Basic '
        . MIME::Base64::encode_base64(join(':', @$basic), '') if $basic;
    my $body = join '&', map { "$_=" . uri_escape($p{$_}) } sort keys %p;
    return $t->http(POST => '/hpki/token', body => $body, headers => \@h);
}

sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub introspect {
    my ($tok) = @_;
    return $t->http(POST => '/hpki/introspect', body => "token=$tok",
        headers => ['Content-Type: application/x-www-form-urlencoded']);
}

use MIME::Base64 ();
