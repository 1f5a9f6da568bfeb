#!/usr/bin/perl

# The FIDO page (conf/html/fido/) in a real browser: headless Debian
# Chromium driven by playwright-core (t/browser/fido.mjs), with a CDP
# virtual authenticator that plays a phone's platform authenticator
# (CTAP 2.1, internal transport, resident keys, user verification).
#
# An operator makes an enrolment code with hpki-admin; the browser opens its
# link (the code in the fragment), registers, then logs in on a fresh page
# with a discoverable credential, shows the holder's name, role and the
# token's state, calls a protected location and signs a digest with the
# token (checked with openssl), logs out (the token is revoked), logs in
# again naming the user, through the page's own base64url code (the
# WebAuthn Level 3 JSON helpers removed), and sees a token revoked
# elsewhere as such.  The page is served under Content-Security-Policy:
# default-src 'self', and must cause no violation.
#
# Then an application logs in through the OpenID Connect provider: its
# client logs in with FIDO, so the authorize endpoint sends the browser to
# the page (#login=HANDLE); the page asks, "Log in with this device" goes
# back to the application's redirect URI with a code and its state; the
# code is redeemed here (client_secret_basic, PKCE) for an ID token with
# amr ["fido"], acr urn:hpki:fido and the nonce.  The same #login link
# opened again shows the gateway's error: a handle is used once.
#
# The origin is http://localhost:PORT: a secure context, as WebAuthn needs,
# without a certificate the browser would have to trust.
#
# Skips when node or chromium is missing (scripts/deps.sh installs both).
# HPKI_SHOT_DIR=DIR keeps the screenshots (fido-register.png,
# fido-session.png, fido-app-login.png, fido-app-back.png,
# fido-app-again.png, fido-revoked.png; fido-failure.png when a step
# failed).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256);
use Encode qw(encode);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use Hpki::Test qw(b64 b64url unb64 unb64url jwt_claims);
use HpkiModule qw(gateway_conf fido_locations);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $ROOT = Hpki::Test->root;
my $CHROMIUM = $ENV{HPKI_CHROMIUM} // '/usr/bin/chromium';
my $SCRIPT = "$ROOT/t/browser/fido.mjs";
my $NAME = '山田 太郎';
my $ROLE = 'Medical Doctor';
my $TIMEOUT = $ENV{HPKI_TEST_TIMEOUT} || 15;

plan skip_all => 'node is not installed (scripts/deps.sh installs nodejs)'
    unless grep { -x "$_/node" } split /:/, $ENV{PATH};
plan skip_all => "no $CHROMIUM (scripts/deps.sh installs Debian's chromium)"
    unless -x $CHROMIUM;

# playwright-core: t/browser/node_modules (make browser-deps), or
# HPKI_NODE_MODULES for a copy of the tree without it (make test-asan)
local $ENV{NODE_PATH} = $ENV{HPKI_NODE_MODULES}
    if $ENV{HPKI_NODE_MODULES};
my $found = do {
    open my $stderr, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!";
    my $ok = system('node', '-e', 'require("module").createRequire('
        . 'process.argv[1]).resolve("playwright-core")',
        "$ROOT/t/browser/fido.mjs") == 0;
    open STDERR, '>&', $stderr or die "dup: $!";
    $ok;
};
unless ($found) {
    plan tests => 1;
    fail('playwright-core is installed');
    diag 'run "make browser-deps" (npm ci in t/browser); make test does';
    exit 1;
}

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth', role => $ROLE,
             name => encode('UTF-8', $NAME));

my $origin = 'http://localhost:' . $t->port('http');

# an application (an OpenID Connect client) whose users log in with FIDO;
# its redirect URI is a location of the plain-HTTP server below
my $RP_CB = "$origin/rp/cb";
my $RP_TEXT = 'the application has its code';
my %client = (client_id => 'ehr-fido',
    client_secret => 'fido-secret-' . unpack('H*', random_bytes(16)),
    redirect_uris => [$RP_CB], login => 'fido');
open my $cfh, '>', $t->testdir . '/clients.json' or die $!;
print $cfh encode_json({ clients => [\%client] });
close $cfh;

# a protected resource of an application behind the gateway
mkdir $t->testdir . '/ehr' or die $!;
open my $fh, '>', $t->testdir . '/ehr/record.json' or die $!;
print $fh qq({"record":"demo"}\n);
close $fh;

# the usual TLS gateway (with the token endpoint the application calls),
# and beside it the plain-HTTP server the browser talks to: the page, the
# four FIDO endpoints, protected locations, the authorize endpoint and the
# application's redirect URI
my $conf = gateway_conf(http => <<'HTTP', server => <<'CONF');
    hpki_oidc_clients %%TESTDIR%%/clients.json;
HTTP
        location = /hpki/token {
            hpki_oidc_token;
        }
    }

    server {
        listen 127.0.0.1:%%HTTP_PORT%%;
        server_name localhost;

        hpki_fido_rp_id              localhost;
        hpki_fido_rp_name            "HPKI gateway";
        hpki_fido_origin             http://localhost:%%HTTP_PORT%%;
        hpki_fido_user_verification  required;
        hpki_fido_challenge_ttl      120s;

        location /hpki/fido/ {
            alias %%ROOT%%/conf/html/fido/;
            types {
                text/html               html;
                text/css                css;
                application/javascript  js;
            }
            charset utf-8;
            add_header Content-Security-Policy "default-src 'self'" always;
            add_header X-Content-Type-Options nosniff always;
        }

%%FIDO_LOCATIONS%%

        location = /hpki/whoami {
            hpki_auth on;
            hpki_whoami;
        }

        location = /hpki/revoke {
            hpki_revoke;
        }

        location = /hpki/sign {
            hpki_auth on;
            hpki_sign_pass hpki_signd;
        }

        # the application's login: FIDO clients go to the page
        location = /hpki/authorize {
            hpki_oidc_authorize;
            hpki_oidc_method_url fido /hpki/fido/;
        }

        # the application's redirect URI
        location = /rp/cb {
            default_type text/plain;
            return 200 "the application has its code\n";
        }

        location /ehr/ {
            hpki_auth on;
            alias %%TESTDIR%%/ehr/;
            add_header X-Subject $hpki_subject;
            add_header X-Role $hpki_role;
        }
CONF

$conf =~ s/%%FIDO_LOCATIONS%%\n/fido_locations()/e;
$t->write_nginx_conf($conf);

# until the module has the FIDO endpoints, there is nothing to test
my $check = $t->nginx_test_conf;
if ($check->{rc} != 0 && $check->{err} =~ /unknown directive "hpki_fido/) {
    plan skip_all => 'the module has no FIDO endpoints (nginx -t: unknown '
        . 'directive "hpki_fido...")';
}
die "nginx -t:\n$check->{err}" if $check->{rc} != 0;

$t->start_nginx;

# the operator's enrolment code, as its QR code's link carries it
my $admin = $t->admin('enroll-code', '--user', 'demo-doctor', '--json',
    '--url', "$origin/hpki/fido/");
if ($admin->{rc} != 0 && $admin->{err} =~ /usage/
    && $admin->{err} !~ /enroll-code/)
{
    plan skip_all => 'hpki-admin has no enroll-code command yet';
}

plan tests => 85;

is $admin->{rc}, 0, 'hpki-admin enroll-code' or diag $admin->{err};
my $enrol = eval { decode_json($admin->{out}) } // {};
my $code = $enrol->{code} // '';
like $code, qr/^[A-HJ-NP-Z2-9]{8}-[A-HJ-NP-Z2-9]{12}$/,
    '... a code of the documented form';
is $enrol->{url}, "$origin/hpki/fido/#code=$code",
    '... and a link with the code in the fragment';

# the browser

my $digest = sha256('prescription signed after a FIDO login');

# the application's authorization request, with PKCE and a nonce
my $state = b64url(random_bytes(16));
my $nonce = b64url(random_bytes(16));
my $verifier = b64url(random_bytes(32));
my $authorize = "$origin/hpki/authorize?response_type=code"
    . "&client_id=$client{client_id}&redirect_uri=" . uri_escape($RP_CB)
    . "&scope=openid&state=$state&nonce=$nonce"
    . '&code_challenge=' . b64url(sha256($verifier))
    . '&code_challenge_method=S256';

my $run = run_browser('--base', $origin, '--code', $code,
    '--user', 'demo-doctor', '--out', $ENV{HPKI_SHOT_DIR} // $t->testdir,
    '--sign', b64($digest),
    '--authorize', $authorize, '--redirect-uri', $RP_CB);
my $r = $run->{report} // {};
my $s = $r->{steps} // {};

ok $r->{ok}, 'the browser ran every step'
    or diag "failed step: " . ($r->{failed_step} // '?') . "\n"
        . ($r->{error} // '') . "\npage message: "
        . ($r->{failure_message} // '') . "\n$run->{stderr}";

# 1. registration from the link
my $reg = $s->{register} // {};
ok $reg->{secure_context}, 'http://localhost is a secure context';
is $reg->{prefilled}, $code, 'the code is taken from the fragment';
is $reg->{url_after}, "$origin/hpki/fido/",
    '... and removed from the address bar';
is $reg->{message}{state}, 'ok', 'register: success shown'
    or diag explain $reg->{message};
like $reg->{message}{text}, qr/registered/, '... saying so';
is $t->redis('SCARD', 'hpki:fidouser:demo-doctor'), 1,
    'the gateway keeps one credential for the user';

my $again = $s->{register_again}{message} // {};
is $again->{state}, 'error', 'the same code again: an error shown';
ok length($again->{text} // '') && $again->{text} !~ /^The gateway answered/,
    "... the server's error_description: " . ($again->{text} // '');

# 2. login on a fresh page, discoverable credential
my $in = $s->{login} // {};
is $in->{message}{state}, 'ok', 'login: success shown'
    or diag explain $in->{message};
ok $in->{visible}, '... the session is shown';
is $in->{name}, $NAME, "... the holder's name";
is $in->{role}, $ROLE, '... the role';
is $in->{user_id}, 'demo-doctor', '... the user id';
is $in->{token_status}{state}, 'valid', "... today's token: valid";
like $in->{token_status}{text},
    qr/^valid until \d\d:\d\d( tomorrow| on \d{4}-\d\d-\d\d)?$/,
    '... "valid until HH:MM"';
ok defined $in->{session_storage}, 'the token is in sessionStorage';
is_deeply $in->{local_storage_keys}, [], '... and nothing in localStorage';

my $claims = jwt_claims($in->{access_token}) // {};
is $claims->{sub}, 'demo-doctor', 'the token: sub';
is_deeply $claims->{amr}, ['fido'], '... amr: fido';
is $claims->{hpki_role}, $ROLE, '... hpki_role';

# 3. protected locations with that token
my $p = $s->{protected} // {};
is $p->{with_token}{status}, 200, 'a protected location: 200 with the token';
is_deeply $p->{with_token}{json}, { record => 'demo' }, '... its content';
is $p->{with_token}{x_subject}, 'demo-doctor', '... $hpki_subject';
is $p->{with_token}{x_role}, $ROLE, '... $hpki_role';
is $p->{without_token}{status}, 401, '... 401 without it';
is $p->{whoami}{status}, 200, '/hpki/whoami: 200';
is $p->{whoami}{json}{sub}, 'demo-doctor', '... sub';
is $p->{whoami}{json}{auth_method}, 'fido', '... auth_method fido';

my $sign = $p->{sign} // {};
is $sign->{status}, 200, 'POST /hpki/sign with the FIDO token: 200'
    or diag explain $sign;
ok $sign->{json}{signatures}
    && $t->verify_signature(cert => $t->{enrolled}{'demo-doctor'}{cert},
        digest => $digest, signature => $sign->{json}{signatures}[0]),
    '... and openssl verifies the signature with the second certificate';

# 4. log out
my $out = $s->{logout} // {};
is $out->{message}{state}, 'ok', 'log out: success shown';
ok !$out->{visible}, '... the session is no longer shown';
ok !defined $out->{session_storage}, '... and forgotten';
is $out->{protected_after}{status}, 401, '... the token is revoked';

# 5. without the Level 3 JSON helpers, naming the user
my $fb = $s->{login_fallback} // {};
ok !$fb->{json_api}, 'JSON helpers removed: the page encodes by itself';
is $fb->{message}{state}, 'ok', '... login with a user id: success shown'
    or diag explain $fb->{message};
is $fb->{name}, $NAME, "... the holder's name";
is $fb->{protected}{status}, 200, '... the new token works';
ok !$fb->{same_token}, '... and it is a new one';

# 6. an application's OpenID Connect login, with this device
my $app = $s->{app_login} // {};
is $app->{authorize_status}, 302,
    "the application's authorization request: a redirect";
like $app->{sent_to} // '',
    qr{^(\Q$origin\E)?/hpki/fido/#login=[A-Za-z0-9_-]{43}$},
    '... to the FIDO page, a handle in the fragment';
my $arrived = $app->{arrived} // {};
is $arrived->{url}, "$origin/hpki/fido/",
    '... the handle taken out of the address bar';
is $arrived->{message}{state}, 'info', 'the page says what is asked'
    or diag explain $arrived;
like $arrived->{message}{text} // '', qr/^An application asks you to log in/,
    '... "An application asks you to log in"';
ok $arrived->{login_button_visible} && $arrived->{login_button_enabled},
    '... with "Log in with this device" to press, though logged in here';
is $app->{login_status}, 200, 'the login for the application: 200';

my $cb = $app->{callback} // {};
my ($cb_base, $cb_query) = split /\?/, $cb->{url} // '', 2;
my %cbq = query_params($cb_query);
is $cb_base, $RP_CB, '... and the browser is back at the redirect URI';
is $cb->{status}, 200, '... which answers';
is $cb->{text}, $RP_TEXT, '... the application\'s page is shown';
like $cbq{code} // '', qr/^[A-Za-z0-9_-]{20,}$/, '... with a code';
is $cbq{state}, $state, '... the same state';
is $cbq{iss}, $t->token_issuer, '... and iss (RFC 9207)';

# the application redeems the code (client_secret_basic, PKCE)
my $redeem = sub {
    my ($code) = @_;
    return $t->http(POST => '/hpki/token',
        headers => {
            Authorization => 'Basic '
                . b64("$client{client_id}:$client{client_secret}"),
            'Content-Type' => 'application/x-www-form-urlencoded',
        },
        body => 'grant_type=authorization_code&code=' . uri_escape($code)
            . '&redirect_uri=' . uri_escape($RP_CB)
            . '&code_verifier=' . $verifier);
};
my $tok = $redeem->($cbq{code} // '');
is $tok->{status}, 200, 'the code redeemed at /hpki/token: 200'
    or diag $tok->{body};
my $id_token = $tok->{json}{id_token} // '';
ok verify_jws($id_token),
    "... an ID token that openssl verifies with the gateway's key";
my $idc = jwt_claims($id_token) // {};
is $idc->{iss}, $t->token_issuer, '... iss';
is $idc->{aud}, $client{client_id}, '... aud: the client';
is $idc->{sub}, 'demo-doctor', '... sub: the user';
is $idc->{nonce}, $nonce, '... the nonce';
is_deeply $idc->{amr}, ['fido'], '... amr: ["fido"]';
is $idc->{acr}, 'urn:hpki:fido', '... acr: urn:hpki:fido';
is $idc->{hpki_role}, $ROLE, '... hpki_role';
my $who = $t->http(GET => '/whoami', token => $tok->{json}{access_token});
is $who->{status}, 200, '... and the access token is accepted';
is $who->{json}{auth_method}, 'fido', '... as a FIDO login';
my $reuse = $redeem->($cbq{code} // '');
is $reuse->{status}, 400, 'the code is used once';
is $reuse->{json}{error}, 'invalid_grant', '... invalid_grant';
is $t->http(GET => '/whoami', token => $tok->{json}{access_token})->{status},
    401, '... and the tokens issued from it are revoked';

# the page opened again with the same handle: single use
my $replay = $s->{app_login_again} // {};
like $replay->{arrived}{message}{text} // '',
    qr/^An application asks you to log in/,
    'the same #login link again: the page asks again';
is $replay->{message}{state}, 'error', '... but the login shows an error';
like $replay->{message}{text} // '', qr/unknown, expired or already used/,
    "... the gateway's: " . ($replay->{message}{text} // '');
is $replay->{url}, "$origin/hpki/fido/", '... and the page stays';

# 7. revoked elsewhere
my $rv = $s->{revoked} // {};
is $rv->{revoke_status}, 200, 'revoked elsewhere (RFC 7009)';
is $rv->{token_status}{state}, 'invalid', '"Check again": invalid';
is $rv->{token_status}{text}, 'expired / revoked', '... "expired / revoked"';

# 8. the authenticator and the gateway agree on the credential
my @creds = @{$s->{credentials} // []};
is scalar @creds, 1, 'the authenticator holds one credential';
my $c = $creds[0] // {};
ok $c->{isResidentCredential}, '... a resident (discoverable) one';
is $c->{rpId}, 'localhost', '... for rp id localhost';
cmp_ok $c->{signCount} // 0, '>', 0, '... its signature counter has moved';

my $h = b64url(sha256(unb64($c->{credentialId} // '')));
is $t->redis('HGET', "hpki:fido:$h", 'user'), 'demo-doctor',
    "the gateway's record of that credential: the user";
is $t->redis('HGET', "hpki:fido:$h", 'count'), $c->{signCount},
    '... and the last signature counter';

# 9. the page under Content-Security-Policy: default-src 'self'
is_deeply $r->{csp_violations}, [], 'no Content-Security-Policy violation';
is_deeply $r->{page_errors}, [], 'no JavaScript error';


sub random_bytes {
    my ($n) = @_;
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    read($fh, my $buf, $n) == $n or die "/dev/urandom: short read";
    return $buf;
}

sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub query_params {
    my ($q) = @_;
    my %p;
    for (split /&/, $q // '') {
        my ($k, $v) = map { my $x = $_ // ''; $x =~ tr/+/ /;
            $x =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $x } split /=/, $_, 2;
        $p{$k} = $v;
    }
    return %p;
}

# an RS256 JWS checked with openssl against the gateway's public key
sub verify_jws {
    my ($jws) = @_;
    my ($h, $p, $sig) = split /\./, $jws // '';
    return 0 unless defined $sig;
    my $hdr = eval { decode_json(unb64url($h)) } // {};
    return 0 unless ($hdr->{alg} // '') eq 'RS256';
    my $d = $t->testdir;
    for (["$d/id_token.in", "$h.$p"], ["$d/id_token.sig", unb64url($sig)]) {
        open my $fh, '>:raw', $_->[0] or die "$_->[0]: $!";
        print $fh $_->[1];
        close $fh;
    }
    my $pub = $t->token_public_key;
    my $out = `openssl dgst -sha256 -verify '$pub' -signature '$d/id_token.sig' '$d/id_token.in' 2>&1`;
    return $? == 0 && $out =~ /Verified OK/;
}

# node t/browser/fido.mjs ARGS, in its own process group, bounded in time:
# { rc, report (the decoded stdout), stderr }

sub run_browser {
    my (@args) = @_;
    my $dir = $t->testdir;
    my ($stdout, $stderr) = ("$dir/fido.out", "$dir/fido.err");
    my $limit = 12 * $TIMEOUT + 30;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $stdout or POSIX::_exit(127);
        open STDERR, '>', $stderr or POSIX::_exit(127);
        $ENV{HPKI_CHROMIUM} = $CHROMIUM;
        $ENV{HPKI_TEST_TIMEOUT} = $TIMEOUT;
        { no warnings "exec"; exec "node", $SCRIPT, @args; }
        POSIX::_exit(127);
    }

    my $deadline = time + $limit;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) {
            diag "fido.mjs: still running after ${limit}s, stopped";
            kill 'TERM', -$pid;
            sleep 2;
            kill 'KILL', -$pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.1;
    }
    my $rc = $? >> 8;

    my $out = $t->read_file('fido.out');
    my $report = eval { decode_json($out) };
    diag "fido.mjs printed no JSON report:\n$out" unless $report;

    my $err = $t->read_file('fido.err');
    $err = join "\n", grep { length } (split /\n/, $err)[-40 .. -1]
        if ($err =~ tr/\n//) > 40;
    return { rc => $rc, report => $report, stderr => $err };
}
