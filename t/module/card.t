#!/usr/bin/perl

# Which cards may log in, and where: the module refuses each bad certificate
# with a clear JSON reason (nginx only collects the verification result,
# "ssl_verify_client optional_no_ca"), and hpki_roles limits a location to
# a set of HPKI qualifications. Every case runs twice in the same nginx.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;

use Hpki::Test;
use HpkiModule qw(gateway_conf link_card);

my $t = Hpki::Test->new(need => ['module'])->start_redis;

# trust the signing CA too, so that a signing certificate passes the chain
# check and meets the module's own profile check
my ($trust, $crl) = map { $t->testdir . "/$_" } qw(trust.pem crl.pem);
system("cat '${\ $t->pki('client_ca_bundle')}' '${\ $t->pki('sign_ca_cert')}'"
    . " > '$trust'") == 0 or die;
system("cat '${\ $t->pki('client_crl_bundle')}' '${\ $t->pki('sign_ca_crl')}'"
    . " > '$crl'") == 0 or die;

my $locations = <<'CONF';
        location = /hpki/login/card/prescribers {
            hpki_roles "Medical Doctor" Dentist;
            hpki_login_card;
        }

        location = /prescribers {
            hpki_auth on;
            hpki_roles "Medical Doctor" Dentist;
            hpki_whoami;
        }
CONF

$t->write_nginx_conf(gateway_conf(server => $locations),
        CLIENT_CA => $trust, CLIENT_CRL => $crl)
    ->start_nginx;

plan tests => 2 * 17;

link_card($t, 'demo-doctor', 'doctor_auth');
link_card($t, 'demo-pharmacist', 'pharmacist_auth');
for my $c (qw(doctor_sign norole_auth expired_auth revoked_auth rogue_auth)) {
    link_card($t, "user-$c", $c);
}

for my $pass (1, 2) {
    my @refused = (
        [ doctor_sign  => 401, qr/unsuitable certificate purpose/,
          'a signing (nonRepudiation) certificate' ],
        [ norole_auth  => 403, qr/no hcRole/, 'no hcRole' ],
        [ expired_auth => 401, qr/expired/, 'an expired certificate' ],
        [ revoked_auth => 401, qr/revoked/, 'a revoked certificate (CRL)' ],
        [ rogue_auth   => 401, qr/unable to (verify|get local issuer)/,
          'a certificate from an unknown CA' ],
    );

    for my $case (@refused) {
        my ($cert, $status, $why, $name) = @$case;
        my $r = $t->http(POST => '/hpki/login/card', cert => $cert);
        is $r->{status}, $status, "pass $pass: $name: $status";
        like $r->{json}{error_description}, $why, "pass $pass: $name: says why"
            or diag explain $r->{json};
    }

    my $r = $t->http(POST => '/hpki/login/card/prescribers',
        cert => 'doctor_auth');
    is $r->{status}, 200, "pass $pass: doctor at a prescribers' login: 200";
    my $doctor = $r->{json}{access_token};

    $r = $t->http(POST => '/hpki/login/card/prescribers',
        cert => 'pharmacist_auth');
    is $r->{status}, 403, "pass $pass: pharmacist at a prescribers' login: 403";
    like $r->{json}{error_description}, qr/role is not allowed/,
        "pass $pass: ... says why";

    my $pharmacist = $t->login('pharmacist_auth');

    $r = $t->http(GET => '/prescribers', token => $doctor);
    is $r->{status}, 200, "pass $pass: doctor's token at /prescribers: 200";

    $r = $t->http(GET => '/prescribers', token => $pharmacist);
    is $r->{status}, 403, "pass $pass: pharmacist's token at /prescribers: 403";
    is $r->{json}{error}, 'access_denied', "pass $pass: ... access_denied";

    is $t->http(GET => '/whoami', token => $pharmacist)->{status}, 200,
        "pass $pass: pharmacist's token where roles are not limited: 200";
}
