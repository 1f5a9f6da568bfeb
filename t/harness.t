#!/usr/bin/perl

# The test harness itself, with nginx's own TLS client verification and
# Redis only (no hpki module, no hpki-signd needed): the demo PKI works
# with nginx as the gateway will use it, and the Redis ACLs keep each share
# holder to its own keys.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Hpki::Test qw(jwt_claims b64url);

my $t = Hpki::Test->new(need => [], module => 0)
    ->start_redis
    ->write_nginx_conf(<<'EOF')
%%TEST_GLOBALS%%
events { }

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:%%HTTPS_PORT%% ssl;
        server_name localhost;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%CLIENT_CA%%;
        ssl_crl                %%CLIENT_CRL%%;
        ssl_verify_client      optional;
        ssl_verify_depth       3;

        location = /whoami {
            default_type text/plain;
            return 200 "$ssl_client_verify|$ssl_client_s_dn\n";
        }

        location = /echo {
            default_type text/plain;
            return 200 "$request_method|$http_authorization|$http_x_test\n";
        }
    }

    server {
        listen 127.0.0.1:%%HTTP_PORT%%;
        location / { return 204; }
    }
}
EOF
    ->start_nginx;

plan tests => 31;


# --- nginx and the demo PKI -------------------------------------------------

my $r = $t->http(GET => '/whoami', cert => 'doctor_auth');
is $r->{status}, 200, 'doctor: 200';
like $r->{body}, qr{^SUCCESS\|.*CN=Taro Yamada}, 'doctor: verified';

$r = $t->http(GET => '/whoami', cert => 'pharmacist_auth');
like $r->{body}, qr{^SUCCESS\|.*CN=Hanako Suzuki}, 'pharmacist: verified';

$r = $t->http(GET => '/whoami');
like $r->{body}, qr{^NONE\|}, 'no certificate: NONE';

# ssl_verify_client optional: a certificate that fails gets 400
for my $case (
    [doctor_sign  => 'card signing certificate (not the client CA chain)'],
    [expired_auth => 'expired certificate'],
    [revoked_auth => 'revoked certificate'],
    [rogue_auth   => 'rogue CA'],
) {
    my ($cert, $name) = @$case;
    $r = $t->http(GET => '/whoami', cert => $cert);
    is $r->{status}, 400, "$name: 400";
}
$t->error_log_like(qr/client SSL certificate verify error: \(10:certificate has expired\)/,
    'the reason is in error.log');

$r = $t->http(GET => '/whoami', cert => $t->pki('doctor_auth_cert'),
    key => $t->pki('doctor_auth_key'));
like $r->{body}, qr{^SUCCESS}, 'a certificate given as files';


# --- http() ------------------------------------------------------------------

$r = $t->http(POST => '/echo', token => 'abc', headers => { 'X-Test' => 1 },
    json => { hashes => ['x'] });
is $r->{body}, "POST|Bearer abc|1\n", 'method, token and headers are sent';
is $r->{headers}{'content-type'}, 'text/plain', 'headers come back by lowercase name';

$r = $t->http(GET => '/', scheme => 'http');
is $r->{status}, 204, 'plain http on port("http")';

like $t->read_file('access.log'), qr{"GET /whoami}, 'access log in the test directory';
$t->error_log_unlike(qr/\[(emerg|alert)\]/, 'no emergencies in error.log');


# --- placeholders -------------------------------------------------------------

is $t->expand('%%PKI_DOCTOR_AUTH_CERT%%'), $t->pki('doctor_auth_cert'),
    'every manifest entry is a placeholder';
is $t->expand('%%X%%', X => 'y'), 'y', 'extra placeholders';
ok !eval { $t->expand('%%NO_SUCH%%'); 1 }, 'an unknown placeholder is an error';
is $t->expand('%%TOKEN_ISSUER%%'), 'https://127.0.0.1:' . $t->port('https'),
    'token issuer names the https port';
is_deeply jwt_claims('e30.' . b64url('{"sub":"d"}') . '.x'), { sub => 'd' },
    'jwt_claims decodes a payload';


# --- Redis and its ACLs ---------------------------------------------------------

is $t->redis(SET => 'hpki:user:x', 1), 'OK', 'default user (the gateway): SET';
is $t->redis_as('share-a', SET => 'hpki:a:x:1', 'share'), 'OK',
    'share-a writes hpki:a:*';
like $t->redis_as('share-a', GET => 'hpki:b:x:1'), qr/^NOPERM/,
    'share-a cannot read hpki:b:*';
like $t->redis_as('share-b', GET => 'hpki:a:x:1'), qr/^NOPERM/,
    'share-b cannot read hpki:a:*';
like $t->redis_as('share-a', GET => 'hpki:user:x'), qr/^NOPERM/,
    'share-a cannot read public records';
like $t->redis(GET => 'hpki:a:x:1'), qr/^NOPERM/,
    'the gateway (default user) cannot read share store A';
like $t->redis(GET => 'hpki:b:x:1'), qr/^NOPERM/,
    'nor share store B';
is $t->redis(CONFIG => 'GET', 'appendonly')->[1], 'yes', 'AOF is on';
is((stat $t->redis_password_file('share-a'))[2] & 07777, 0600,
    'password files are mode 0600');


# --- the configuration snippets load (needs the module) ---------------------------

SKIP: {
    skip 'build/ngx_http_hpki_module.so is not built yet', 2
        unless -e $Hpki::Test::BIN{module};

    my $c = Hpki::Test->new(need => ['module']);

    # conf/hpki.conf as an operator would install it, paths edited
    my $snippet = Hpki::Test::_slurp($c->root . '/conf/hpki.conf');
    $snippet =~ s{/etc/hpki/token\.key}{$c->token_key}e;
    $snippet =~ s{/run/hpki/signd\.sock}{$c->signd_socket}e;
    Hpki::Test::_write_file($c->testdir . '/hpki.conf', $snippet);

    $c->write_nginx_conf(<<'EOF2');
%%TEST_GLOBALS%%
events { }
http {
    %%TEST_GLOBALS_HTTP%%
    include %%TESTDIR%%/hpki.conf;
    server {
        listen 127.0.0.1:%%HTTPS_PORT%% ssl;
        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%CLIENT_CA%%;
        ssl_verify_client      optional;
        ssl_verify_depth       3;
        include %%CONF%%/hpki-locations.conf;
    }
}
EOF2
    my $r = $c->nginx_test_conf;
    is $r->{rc}, 0, 'conf/hpki.conf + conf/hpki-locations.conf pass nginx -t'
        or diag $r->{err};

    $c->write_nginx_conf_file($c->root . '/conf/demo/nginx.conf.in');
    $r = $c->nginx_test_conf;
    is $r->{rc}, 0, 'conf/demo/nginx.conf.in passes nginx -t' or diag $r->{err};
}
