#!/usr/bin/perl

# The real trust anchors: the MHLW HPKI Root CA V2 and the MEDIS HPKI
# authentication CA (shared/pki) configured as ssl_client_certificate, alone
# and beside the demo CAs. nginx offers them to the card in the TLS
# handshake; a demo card logs in only where the demo CAs are trusted too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;

use Hpki::Test;
use HpkiModule qw(gateway_conf link_card);

my $pki = "$FindBin::Bin/../../../shared/pki";

plan skip_all => "no ../shared/pki beside the checkout" unless -d $pki;

my $t = Hpki::Test->new(need => ['module'])->start_redis;

my ($real, $both) = map { $t->testdir . "/$_" } qw(real.pem both.pem);
system("cat '$pki/mhlw_hpki_root_ca_v2.pem' '$pki/medis_auth_ca.pem'"
    . " > '$real'") == 0 or die;
system("cat '$real' '${\ $t->pki('client_ca_bundle')}' > '$both'") == 0
    or die;

# the demo CRLs cover the demo CAs only: CRL checks stay on the demo server
my $conf = gateway_conf(server => <<"CONF");
    }

    server {
        listen 127.0.0.1:%%HTTP_PORT%% ssl;
        server_name real-only;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate $real;
        ssl_verify_client      optional_no_ca;
        ssl_verify_depth       3;

        error_page 495 = \@hpki_cert_error;

        location \@hpki_cert_error {
            hpki_cert_error;
        }

        location = /hpki/login/card {
            hpki_login_card;
        }
CONF
$conf =~ s/ssl_crl\s+%%CLIENT_CRL%%;//;

$t->write_nginx_conf($conf, CLIENT_CA => $both)->start_nginx;

plan tests => 6;

link_card($t, 'demo-doctor', 'doctor_auth');

my $r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 200, 'real anchors beside the demo CAs: the demo card logs in';

my $names = `echo | openssl s_client -connect 127.0.0.1:${\ $t->port('https')} -CAfile '${\ $t->pki('server_ca_cert')}' 2>/dev/null`;
($names) = $names =~ /Acceptable client certificate CA names\n(.*?)\n(?:Requested|Client Certificate|Peer|---)/s;
like $names, qr/MHLW HPKI Root CA V2/, 'the handshake offers the MHLW root';
like $names, qr/HPKI-01-MedisAuthCA2-forAuthentication-forIndividual/,
    'and the MEDIS authentication CA';

$r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth',
    port => $t->port('http'), scheme => 'https');
is $r->{status}, 401, 'real anchors only: the demo card is refused';
like $r->{json}{error_description}, qr/unable to (get local issuer|verify)/,
    '... as from an unknown CA';

$names = `echo | openssl s_client -connect 127.0.0.1:${\ $t->port('http')} -CAfile '${\ $t->pki('server_ca_cert')}' 2>/dev/null`;
my ($offered) = $names =~ /Acceptable client certificate CA names\n(.*?)\n(?:Requested|Client Certificate|Peer|---)/s;
unlike $offered // '', qr/Demo/, 'real anchors only: no demo CA offered';
