#!/usr/bin/perl

# The demo, as a user meets it: `make run` (scripts/run.sh) on its own
# ports and run directory, the printed quickstart, a signature that openssl
# verifies, then `make stop` (scripts/stop.sh).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;

use Hpki::Test;

my $ROOT = $Hpki::Test::ROOT;

# skips unless the module, hpki-signd and hpki-admin are built
Hpki::Test->new(need => [qw(module signd admin)]);

my $run = tempdir('hpki-demo-XXXXXXXX', TMPDIR => 1,
    CLEANUP => !$ENV{HPKI_TEST_LEAVE});
my $base = free_port_base(3);
local $ENV{HPKI_RUN_DIR} = $run;
local $ENV{HPKI_PORT_BASE} = $base;

my $started = 0;
END { system("$ROOT/scripts/stop.sh >/dev/null 2>&1") if $started }


# --- make run ----------------------------------------------------------------

my $out = sh("$ROOT/scripts/run.sh");
$started = 1;
is $out->{rc}, 0, 'run.sh starts the stack'
    or diag $out->{out}, $out->{err};
like $out->{out}, qr/started: redis hpki-signd nginx/, 'all three';
like $out->{out}, qr/Quickstart/, 'and prints the quickstart';

my %env = demo_env("$run/demo.env");
is $env{HPKI_URL}, "https://127.0.0.1:$base", 'HPKI_URL uses HPKI_PORT_BASE';
is $env{HPKI_REDIS_URL}, 'redis://127.0.0.1:' . ($base + 1), 'redis on base+1';
is $env{HPKI_WHOAMI_URL}, "$env{HPKI_URL}/demo/whoami", 'HPKI_WHOAMI_URL';
my @missing = grep { !defined $env{$_} } qw(HPKI_URL HPKI_SERVER_CA
    HPKI_DOCTOR_CERT HPKI_DOCTOR_KEY HPKI_DOCTOR_ID HPKI_PHARMACIST_CERT
    HPKI_PHARMACIST_KEY HPKI_PHARMACIST_ID HPKI_SIGN_CA_CERT HPKI_SIGN_CA_KEY
    HPKI_REDIS_URL HPKI_WHOAMI_URL HPKI_ADMIN HPKI_OIDC_CLIENT_ID
    HPKI_OIDC_CLIENT_SECRET HPKI_OIDC_REDIRECT_URI);
is "@missing", '', 'demo.env has every variable';

for my $f (qw(secrets/kek-a secrets/kek-b secrets/token.key
    secrets/redis-share-a.pass pki/doctor-auth.key))
{
    is((stat "$run/$f")[2] & 07777, 0600, "$f is mode 0600");
}


# --- the quickstart, exactly as printed ------------------------------------------

my $qs = sh("bash -e $run/quickstart.sh");
is $qs->{rc}, 0, 'the quickstart runs' or diag $qs->{out}, $qs->{err};
like $qs->{out}, qr/"sub":"demo-doctor"/, 'whoami: the doctor';
like $qs->{out}, qr/"role":"Medical Doctor"/, 'whoami: the role from hcRole';
like $qs->{out}, qr/"auth_method":"hpki_card"/, 'whoami: card login';
like $qs->{out}, qr/issuer=.*Demo-HPKI-SignCA/, 'the second certificate';
like $qs->{out}, qr/Signature Verified Successfully/,
    'openssl verifies the signature';


# --- the same through curl, step by step -------------------------------------------

my $login = curl('-X', 'POST', '--cert', $env{HPKI_DOCTOR_CERT},
    '--key', $env{HPKI_DOCTOR_KEY}, "$env{HPKI_URL}/hpki/login/card");
is $login->{status}, 200, 'card login: 200';
is $login->{json}{token_type}, 'Bearer', 'a Bearer token';

my $whoami = curl("$env{HPKI_WHOAMI_URL}");
is $whoami->{status}, 401, 'whoami without a token: 401';

$login = curl('-X', 'POST', '--cert', $env{HPKI_PHARMACIST_CERT},
    '--key', $env{HPKI_PHARMACIST_KEY}, "$env{HPKI_URL}/hpki/login/card");
is $login->{status}, 200, 'the pharmacist logs in too';
$whoami = curl('-H', "Authorization: Bearer $login->{json}{access_token}",
    $env{HPKI_WHOAMI_URL});
is $whoami->{json}{role}, 'Pharmacist', 'as a pharmacist';

# the demo OpenID Connect client: the code flow with the doctor's card
(my $redirect = $env{HPKI_OIDC_REDIRECT_URI}) =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge;
my $authz = curl('--cert', $env{HPKI_DOCTOR_CERT}, '--key',
    $env{HPKI_DOCTOR_KEY}, '-o', '/dev/null', '-w', "%{redirect_url}\n%{http_code}",
    "$env{HPKI_URL}/hpki/authorize?response_type=code&scope=openid+sign"
    . "&client_id=$env{HPKI_OIDC_CLIENT_ID}&redirect_uri=$redirect"
    . '&state=demo&nonce=n1&prompt=login');
is $authz->{status}, 302, 'OIDC demo client: authorize with the card: 302';
my ($code) = ($authz->{body} // '') =~ /[?&]code=([^&]+)/;
my $tok = curl('-u', "$env{HPKI_OIDC_CLIENT_ID}:$env{HPKI_OIDC_CLIENT_SECRET}",
    '-d', "grant_type=authorization_code&code=" . ($code // '')
    . "&redirect_uri=$redirect", "$env{HPKI_URL}/hpki/token");
is $tok->{status}, 200, 'OIDC demo client: the code for tokens';
ok $tok->{json}{id_token} && $tok->{json}{refresh_token},
    '... an ID token and a refresh token';

my $admin = sh("$env{HPKI_ADMIN} key show --user demo-doctor");
is $admin->{rc}, 0, 'HPKI_ADMIN runs hpki-admin against this stack'
    or diag $admin->{err};

# --- FIDO: the page and an enrolment code, as docs/demo.md shows them ----------

is $env{HPKI_FIDO_RP_ID}, 'localhost', 'demo.env: HPKI_FIDO_RP_ID';
is $env{HPKI_FIDO_ORIGIN}, "https://localhost:$base", 'demo.env: HPKI_FIDO_ORIGIN';
my $page = curl("$env{HPKI_URL}/hpki/fido/");
is $page->{status}, 200, 'the FIDO page is served';
like $page->{body} // '', qr/<html/i, '... as HTML';
my $enroll = sh(". '$run/demo.env' && \$HPKI_ADMIN enroll-code "
    . "--user \"\$HPKI_DOCTOR_ID\" --json");
my $enrolled = eval { JSON::PP::decode_json($enroll->{out}) } // {};
like $enrolled->{url} // '', qr/^\Q$env{HPKI_FIDO_ENROLL_URL}\E#code=[A-Z2-9]{8}-[A-Z2-9]{12}$/,
    'enroll-code with demo.env: a link to the demo\'s page'
    or diag $enroll->{err};
my $opt = curl('-H', 'Content-Type: application/json', '-d',
    JSON::PP::encode_json({ enrollment_code => $enrolled->{code} // '' }),
    "$env{HPKI_URL}/hpki/fido/register/options");
is $opt->{json}{rp}{id}, 'localhost', '... and the code opens a registration';


# --- idempotent, then make stop ------------------------------------------------------

$out = sh("$ROOT/scripts/run.sh");
is $out->{rc}, 0, 'run.sh again';
like $out->{out}, qr/already running: redis hpki-signd nginx/, 'says so';

my @pids = map { pidof($_) } qw(nginx/nginx.pid signd/signd.pid redis/redis.pid);
is scalar(grep { $_ } @pids), 3, 'three pid files';

$out = sh("$ROOT/scripts/stop.sh");
is $out->{rc}, 0, 'stop.sh';
$started = 0;
is scalar(grep { kill 0, $_ } grep { $_ } @pids), 0, 'everything stopped';
ok !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$base"), 'the port is free';
like sh("$ROOT/scripts/stop.sh")->{out}, qr/nothing was running/,
    'stop.sh again is harmless';

done_testing;


# --- helpers -------------------------------------------------------------------------

sub sh {
    my ($cmd) = @_;
    return Hpki::Test::_capture('/bin/bash', '-c', $cmd);
}

sub demo_env {
    my ($file) = @_;
    my %e;
    open my $fh, '<', $file or return;
    while (<$fh>) {
        $e{$1} = $2 if /^(HPKI_\w+)='(.*)'$/;
    }
    return %e;
}

sub curl {
    my @args = @_;
    my $r = Hpki::Test::_capture('curl', '-s', '--max-time', 10, '--cacert',
        $env{HPKI_SERVER_CA}, '-w', '\n%{http_code}', @args);
    my ($body, $status) = $r->{out} =~ /^(.*)\n(\d+)$/s;
    return { status => $status // 0, body => $body,
        json => scalar eval { JSON::PP::decode_json($body) } };
}

sub pidof {
    my ($f) = @_;
    open my $fh, '<', "$run/$f" or return 0;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

# N consecutive free loopback ports
sub free_port_base {
    my ($n) = @_;
    for (1 .. 100) {
        my $base = 20000 + int rand 40000;
        next if grep {
            IO::Socket::INET->new(PeerAddr => "127.0.0.1:$_", Timeout => 1)
            || !IO::Socket::INET->new(LocalAddr => "127.0.0.1:$_", Listen => 1,
                ReuseAddr => 1)
        } $base .. $base + $n - 1;
        return $base;
    }
    die "no free ports";
}
