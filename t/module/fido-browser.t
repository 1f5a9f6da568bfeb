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
# The origin is http://localhost:PORT: a secure context, as WebAuthn needs,
# without a certificate the browser would have to trust.
#
# Skips when node or chromium is missing (scripts/deps.sh installs both).
# HPKI_SHOT_DIR=DIR keeps the screenshots (fido-register.png,
# fido-session.png, fido-revoked.png; fido-failure.png when a step failed).

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

use Hpki::Test qw(b64 b64url unb64 jwt_claims);
use HpkiModule qw(gateway_conf);

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

# a protected resource of an application behind the gateway
mkdir $t->testdir . '/ehr' or die $!;
open my $fh, '>', $t->testdir . '/ehr/record.json' or die $!;
print $fh qq({"record":"demo"}\n);
close $fh;

# the usual TLS gateway, and beside it the plain-HTTP server the browser
# talks to: the page, the four FIDO endpoints, and protected locations
my $conf = gateway_conf(server => <<'CONF');
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

        location = /hpki/fido/register/options {
            hpki_fido register_options;
        }

        location = /hpki/fido/register {
            hpki_fido register;
        }

        location = /hpki/fido/login/options {
            hpki_fido login_options;
        }

        location = /hpki/fido/login {
            hpki_fido login;
        }

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

        location /ehr/ {
            hpki_auth on;
            alias %%TESTDIR%%/ehr/;
            add_header X-Subject $hpki_subject;
            add_header X-Role $hpki_role;
        }
CONF

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

plan tests => 54;

is $admin->{rc}, 0, 'hpki-admin enroll-code' or diag $admin->{err};
my $enrol = eval { decode_json($admin->{out}) } // {};
my $code = $enrol->{code} // '';
like $code, qr/^[A-HJ-NP-Z2-9]{8}-[A-HJ-NP-Z2-9]{12}$/,
    '... a code of the documented form';
is $enrol->{url}, "$origin/hpki/fido/#code=$code",
    '... and a link with the code in the fragment';

# the browser

my $digest = sha256('prescription signed after a FIDO login');
my $run = run_browser('--base', $origin, '--code', $code,
    '--user', 'demo-doctor', '--out', $ENV{HPKI_SHOT_DIR} // $t->testdir,
    '--sign', b64($digest));
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

# 6. revoked elsewhere
my $rv = $s->{revoked} // {};
is $rv->{revoke_status}, 200, 'revoked elsewhere (RFC 7009)';
is $rv->{token_status}{state}, 'invalid', '"Check again": invalid';
is $rv->{token_status}{text}, 'expired / revoked', '... "expired / revoked"';

# 7. the authenticator and the gateway agree on the credential
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

# 8. the page under Content-Security-Policy: default-src 'self'
is_deeply $r->{csp_violations}, [], 'no Content-Security-Policy violation';
is_deeply $r->{page_errors}, [], 'no JavaScript error';


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
