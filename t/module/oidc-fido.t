#!/usr/bin/perl

# OpenID Connect with the login method chosen per client: the client's
# "login" list, or acr_values, selects the HPKI card, FIDO or JPKI. A
# FIDO client's authorization goes to the FIDO page with a handle; the
# WebAuthn login (softauthn.py as the phone) resumes it and the relying
# party (python3-authlib, t/module/oidc_rp.py) gets a code, tokens and an
# ID token with amr "fido". A JPKI client is sent on to the JPKI server's
# endpoint with its request unchanged.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use JSON::PP;

use Hpki::Test qw(b64url);
use HpkiModule qw(gateway_conf fido_locations link_card);

my $PY = '/usr/bin/python3';
plan skip_all => 'python3-authlib, python3-requests and python3-cbor2 '
    . 'are needed'
    if system("$PY -c 'import authlib, requests, cbor2' 2>/dev/null") != 0;

my $t = Hpki::Test->new(need => ['module'])->start_redis;
my $dir = $t->testdir;
my $json = JSON::PP->new->canonical;

sub uri_escape { my $s = shift; $s =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge; $s }
my $origin = 'https://localhost:' . $t->port('https');
my $jpki_url = 'https://127.0.0.1:' . $t->port('http') . '/hpki/authorize';

my @clients = (
    { client_id => 'ehr-fido', client_secret => 'fido-secret-0123456789abcdef',
      redirect_uris => ['https://ehr.example/cb'], login => 'fido' },
    { client_id => 'ehr-any', client_secret => 'any-secret-0123456789abcdef',
      redirect_uris => ['https://any.example/cb'],
      login => ['hpki_card', 'fido', 'jpki'] },
    { client_id => 'ehr-jpki', client_secret => 'jpki-secret-0123456789abcdef',
      redirect_uris => ['https://jpki.example/cb'], login => 'jpki' },
);
open my $fh, '>', "$dir/clients.json" or die $!;
print $fh $json->encode({ clients => \@clients });
close $fh;

$t->write_nginx_conf(gateway_conf(
    http => <<"CONF",
    hpki_oidc_clients        $dir/clients.json;
    hpki_fido_rp_id          localhost;
    hpki_fido_origin         $origin;
CONF
    server => <<"CONF"))
        location = /.well-known/openid-configuration { hpki_discovery; }
        location = /.well-known/jwks.json { hpki_jwks; }
        location = /hpki/token { hpki_oidc_token; }
        location = /hpki/userinfo { hpki_auth on; hpki_oidc_userinfo; }

        location = /hpki/authorize {
            hpki_oidc_authorize;
            hpki_oidc_method_url fido /hpki/fido/;
            hpki_oidc_method_url jpki $jpki_url;
        }

@{[ fido_locations() ]}
CONF
    ->start_nginx;

plan tests => 25;

link_card($t, 'demo-doctor', 'doctor_auth');
$t->redis('HSET', 'hpki:user:demo-doctor', 'name', 'Taro Yamada',
    'role', 'Medical Doctor', 'status', 'active');

# the doctor binds a phone with the card-login token

my $softauthn = "$FindBin::Bin/softauthn.py";
my $phone = "$dir/phone.json";
my $card = $t->login('doctor_auth');
my $opt = $t->http(POST => '/hpki/fido/register/options', json => {},
    token => $card, cert => 'doctor_auth');
my $cred = `$PY '$softauthn' create '$phone' '${\ $json->encode($opt->{json})}' '$origin'`;
my $reg = $t->http(POST => '/hpki/fido/register', token => $card,
    cert => 'doctor_auth', json => { credential => decode_json($cred) });
is($reg->{status}, 200, 'a phone is bound with the card-login token');

sub run_rp {
    my (%o) = @_;
    my $cfg = { issuer => $t->token_issuer, ca => $t->pki('server_ca_cert'),
        cert => $t->pki('doctor_auth_cert'), key => $t->pki('doctor_auth_key'),
        auth_method => 'client_secret_basic', scope => 'openid sign',
        fido => { softauthn => $softauthn, state => $phone,
                  origin => $origin, replay => delete $o{replay} },
        %o };
    open my $f, '>', "$dir/rp.json" or die $!;
    print $f $json->encode($cfg);
    close $f;
    my $out = `$PY '$FindBin::Bin/oidc_rp.py' '$dir/rp.json' 2>&1`;
    return eval { decode_json($out) } // { exception => $out };
}

# --- a FIDO client ----------------------------------------------------------

my $res = run_rp(client_id => 'ehr-fido', replay => 1,
    client_secret => $clients[0]{client_secret},
    redirect_uri => 'https://ehr.example/cb');
diag $res->{exception} if $res->{exception};

is($res->{authorize_status}, 302, 'authorize answers with a redirect');
like($res->{fido_page} // '', qr{/hpki/fido/#login=[A-Za-z0-9_-]{43}$},
    '... to the FIDO page, the handle in the fragment');
is($res->{fido_status}, 200, 'the FIDO login resumes the authorization');
like($res->{fido_answer}{redirect_to} // '',
    qr{^https://ehr\.example/cb\?code=}, '... and says where to go next');
ok(!exists $res->{fido_answer}{access_token},
    '... not a token: the client gets a code');
is($res->{fido_replay_status}, 400, 'the handle is used once');
ok($res->{state_ok}, 'state comes back');
ok($res->{id_token_valid}, 'the ID token validates against the JWKS');
is_deeply($res->{id_claims}{amr}, ['fido'], 'ID token amr: fido');
is($res->{id_claims}{acr}, 'urn:hpki:fido', 'ID token acr: urn:hpki:fido');
is($res->{id_claims}{hpki_role}, 'Medical Doctor', 'ID token hpki_role');
is($res->{userinfo_status}, 200, 'userinfo with the access token');

# --- one client, three methods: acr_values chooses ---------------------------

$res = run_rp(client_id => 'ehr-any', acr_values => 'urn:hpki:fido',
    client_secret => $clients[1]{client_secret},
    redirect_uri => 'https://any.example/cb');
ok($res->{fido_page}, 'acr_values=urn:hpki:fido: the FIDO page');
is_deeply($res->{id_claims}{amr}, ['fido'], '... and a FIDO login');

$res = run_rp(client_id => 'ehr-any',
    client_secret => $clients[1]{client_secret},
    redirect_uri => 'https://any.example/cb');
ok(!$res->{fido_page}, 'no acr_values: this endpoint\'s own method');
is_deeply($res->{id_claims}{amr}, ['hpki_card'], '... the HPKI card');

$res = run_rp(client_id => 'ehr-any', acr_values => 'urn:hpki:jpki',
    client_secret => $clients[1]{client_secret},
    redirect_uri => 'https://any.example/cb');
like($res->{location} // '', qr/^\Q$jpki_url\E\?.*client_id=ehr-any/,
    'acr_values=urn:hpki:jpki: sent on to the JPKI endpoint as it came');
like($res->{location} // '', qr/acr_values=urn%3Ahpki%3Ajpki/,
    '... with acr_values, so it is not sent back');

$res = run_rp(client_id => 'ehr-any',
    acr_values => 'urn:hpki:jpki urn:hpki:fido',
    client_secret => $clients[1]{client_secret},
    redirect_uri => 'https://any.example/cb');
like($res->{location} // '', qr/^\Q$jpki_url\E\?/,
    'acr_values are tried in the order given: JPKI first');

# --- a JPKI client at the card endpoint, and refusals ------------------------

my $r = $t->http(GET => '/hpki/authorize?response_type=code&client_id=ehr-jpki'
    . '&redirect_uri=' . uri_escape('https://jpki.example/cb')
    . '&scope=openid&state=s1');
is($r->{status}, 302, 'a JPKI client at the card endpoint');
like($r->{headers}{location}, qr/^\Q$jpki_url\E\?response_type=code/,
    '... is sent to the JPKI endpoint');

$r = $t->http(GET => '/hpki/authorize?response_type=code&client_id=ehr-fido'
    . '&redirect_uri=' . uri_escape('https://ehr.example/cb')
    . '&scope=openid&state=s2&acr_values=urn:hpki:card');
like($r->{headers}{location}, qr/error=access_denied.*acr_values/,
    'acr_values naming a method the client may not use is refused');

$r = $t->http(POST => '/hpki/fido/login', json => { credential => {
    %{decode_json(`$PY '$softauthn' get '$phone' '${\ $json->encode(
        $t->http(POST => '/hpki/fido/login/options', json => {})->{json})}' '$origin'`)} },
    login => 'x' x 43 });
is($r->{status}, 400, 'an unknown handle is refused');
like($r->{json}{error_description}, qr/unknown, expired or already used/,
    '... with the reason');
