#!/usr/bin/perl

# JPKI (My Number card) login linked to an HPKI identity, on its own TLS
# server that trusts the JPKI CA only: the user-authentication certificate
# of a linked card gets a token carrying the HPKI identity's role, and that
# token signs with the HPKI second certificate ("collaboration" model). An
# unlinked card is refused with an explanation; the signing certificate,
# which carries the holder's home address, is refused for login and for
# linking.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use Digest::SHA qw(sha256);

use Hpki::Test qw(b64 jwt_claims);
use HpkiModule qw(gateway_conf x5t);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor');

# the JPKI server: its own port, the JPKI CA as its only client CA
my $conf = gateway_conf(server => <<'CONF');
    }

    server {
        listen 127.0.0.1:%%HTTP_PORT%% ssl;
        server_name jpki;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%PKI_JPKI_CA_CERT%%;
        ssl_verify_client      optional_no_ca;
        ssl_verify_depth       2;

        error_page 495 = @hpki_cert_error;

        location @hpki_cert_error {
            hpki_cert_error;
        }

        location = /hpki/login/jpki {
            hpki_login_jpki;
        }
CONF

$t->write_nginx_conf($conf)->start_nginx;

plan tests => 19;

my $jpki_port = $t->port('http');

sub jpki_login {
    my ($cert) = @_;
    return $t->http(POST => '/hpki/login/jpki', cert => $cert,
        scheme => 'https', port => $jpki_port);
}

my $r = jpki_login('jpki_auth');
is $r->{status}, 403, 'an unlinked My Number card: 403';
like $r->{json}{error_description}, qr/not linked to an HPKI identity.*link-jpki.*renewal/,
    '... explaining how it gets linked, and again after renewal';

# the signing certificate can be linked neither...
my $out = $t->admin('user', 'link-jpki', '--id', 'demo-doctor', '--cert',
    $t->pki('jpki_sign_cert'));
isnt $out->{rc}, 0, 'hpki-admin refuses to link a JPKI signing certificate';
like $out->{err}, qr/home address/, '... and says why';

$out = $t->admin('user', 'link-jpki', '--id', 'nobody', '--cert',
    $t->pki('jpki_auth_cert'));
isnt $out->{rc}, 0, 'hpki-admin refuses to link to a user that does not exist';
like $out->{err}, qr/no user "nobody"/, '... and says so';

# ... but the user-authentication one is
$out = $t->admin('user', 'link-jpki', '--id', 'demo-doctor', '--cert',
    $t->pki('jpki_auth_cert'));
is $out->{rc}, 0, 'hpki-admin user link-jpki: linked';
is $t->redis('GET', 'hpki:jpki:' . x5t($t->pki('jpki_auth_cert'))),
    'demo-doctor', '... as hpki:jpki:<x5t>';

$r = jpki_login('jpki_sign');
is $r->{status}, 403, 'login with the JPKI signing certificate: 403';
like $r->{json}{error_description}, qr/home address.*never accepted/,
    '... never accepted for login';

$r = jpki_login('jpki_auth');
is $r->{status}, 200, 'a linked My Number card: a token';
my $claims = jwt_claims($r->{json}{access_token});
is $claims->{sub}, 'demo-doctor', 'sub: the HPKI identity';
is_deeply $claims->{amr}, ['jpki'], 'amr: jpki';
is $claims->{hpki_role}, 'Medical Doctor',
    "hpki_role: the HPKI identity's, recorded from the HPKI card";
is $claims->{cnf}{'x5t#S256'}, x5t($t->pki('jpki_auth_cert')),
    'bound to the My Number card certificate';

# the HPKI second certificate signs after a My Number authentication
my $digest = sha256('prescription after JPKI login');
my $s = $t->http(POST => '/hpki/sign', token => $r->{json}{access_token},
    json => { hashes => [ b64($digest) ] });
is $s->{status}, 200, 'the JPKI token signs with the second certificate';
ok $t->verify_signature(cert => $t->{enrolled}{'demo-doctor'}{cert},
    digest => $digest, signature => $s->{json}{signatures}[0]),
    '... and openssl verifies it';

# an HPKI card is not a My Number card, and the other way round
$r = jpki_login('doctor_auth');
is $r->{status}, 401, 'an HPKI card at the JPKI login: 401 (unknown CA)';

$r = $t->http(POST => '/hpki/login/card', cert => 'jpki_auth');
is $r->{status}, 401, 'a My Number card at the HPKI card login: 401';
