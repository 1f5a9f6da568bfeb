package HpkiModule;

# What the module tests share: the usual gateway configuration and ways to
# make tokens by hand (signed with the gateway key, or forged).

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP;
use Digest::SHA qw(sha256);
use Hpki::Test qw(b64url);

our @EXPORT_OK = qw(gateway_conf fido_locations x5t make_jwt link_card);


# the gateway as conf/ sets it up; http => and server => add directives

sub gateway_conf {
    my (%o) = @_;
    my $http = $o{http} // '';
    my $server = $o{server} // '';
    my $sign = $o{sign} // 'hpki_sign_pass hpki_signd;';

    return <<"CONF";
%%TEST_GLOBALS%%
events { }

http {
    %%TEST_GLOBALS_HTTP%%

    large_client_header_buffers 4 16k;

    hpki_redis           %%REDIS_ADDR%%;
    hpki_redis_timeout   1s;
    hpki_token_key       %%TOKEN_KEY%% kid=%%TOKEN_KID%%;
    hpki_token_issuer    %%TOKEN_ISSUER%%;
    hpki_token_audience  %%TOKEN_AUDIENCE%%;
$http
    upstream hpki_signd {
        server unix:%%SIGND_SOCKET%%;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:%%HTTPS_PORT%% ssl;
        server_name localhost;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%CLIENT_CA%%;
        ssl_crl                %%CLIENT_CRL%%;
        ssl_verify_client      optional_no_ca;
        ssl_verify_depth       3;

        # nginx refuses a failed client certificate before any phase
        error_page 495 = \@hpki_cert_error;

        location \@hpki_cert_error {
            hpki_cert_error;
        }

        location = /hpki/login/card {
            hpki_login_card;
        }

        location = /hpki/sign {
            hpki_auth on;
            $sign
        }

        location = /whoami {
            hpki_auth on;
            add_header X-Subject \$hpki_subject;
            add_header X-Role \$hpki_role;
            hpki_whoami;
        }
$server
    }
}
CONF
}


# the four FIDO endpoints, as conf/hpki-locations.conf has them

sub fido_locations {
    return join '', map { <<"CONF" } qw(register_options register login_options login);
        location = /hpki/fido/${\ ($_ =~ s{_}{/}r) } {
            client_body_buffer_size 32k;
            hpki_fido $_;
        }

CONF
}


# x5t#S256 of a certificate file, as the module and hpki-admin compute it

sub x5t {
    my ($file) = @_;
    my $der = `openssl x509 -in '$file' -outform DER`;
    die "openssl x509 $file failed\n" if $? != 0;
    return b64url(sha256($der));
}


# the Redis record "hpki-admin user add" writes, for tests without the CLI

sub link_card {
    my ($t, $id, $cert) = @_;
    $t->redis('SET', 'hpki:cert:' . x5t($t->pki("${cert}_cert")), $id);
}


# a JWS over any header and claims: signed with the gateway key, with
# key => FILE, with hmac => SECRET, or given signature => as is

sub make_jwt {
    my ($t, $header, $claims, %o) = @_;
    my $json = JSON::PP->new->canonical;
    my $input = b64url($json->encode($header)) . '.'
        . b64url($json->encode($claims));

    return "$input.$o{signature}" if defined $o{signature};

    my $dir = $t->testdir;
    my $n = ++$t->{jwt_made};
    open my $fh, '>', "$dir/jwt-$n.in" or die $!;
    print $fh $input;
    close $fh;

    my @cmd = defined $o{hmac}
        ? ('openssl', 'dgst', '-sha256', '-mac', 'HMAC', '-macopt',
           "key:$o{hmac}", '-binary', "$dir/jwt-$n.in")
        : ('openssl', 'dgst', '-sha256', '-sign', $o{key} // $t->token_key,
           '-binary', "$dir/jwt-$n.in");

    open my $p, '-|', @cmd or die "openssl: $!";
    binmode $p;
    local $/;
    my $sig = <$p>;
    close $p or die "openssl dgst failed\n";

    return "$input." . b64url($sig);
}

1;
