#!/usr/bin/perl

# FIDO (WebAuthn) registration and login through the real module, with a
# software authenticator (softauthn.py) standing in for the phone: a
# registration with an enrolment code or a card-login token, ES256 and
# RS256 keys, "none" and "packed" attestation, a login that issues the
# usual token (amr "fido") accepted by a protected location, and each
# refusal: wrong origin, wrong rpId, reused and expired challenges, a bad
# signature, a signCount regression (flagged as a possible clone), an
# unknown credential, missing user verification, and five wrong enrolment
# codes, which lock the enrolment.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256 sha256_hex);

use Hpki::Test qw(b64url jwt_claims);
use HpkiModule qw(gateway_conf fido_locations);

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor', name => 'Yamada Taro')
    ->enroll(id => 'demo-pharmacist', auth => 'pharmacist_auth',
             role => 'Pharmacist', key => 0);

my $origin = 'https://localhost:' . $t->port('https');

my $conf = gateway_conf(http => <<"CONF", server => fido_locations());
    hpki_fido_rp_id          localhost;
    hpki_fido_rp_name        "HPKI test gateway";
    hpki_fido_origin         $origin https://app.localhost:8443;
    hpki_fido_challenge_ttl  60s;
    hpki_lockout             5 15m;
CONF

$t->write_nginx_conf($conf)->start_nginx;

my $JSON = JSON::PP->new->canonical;
my $dir = $t->testdir;
my $softauthn = "$FindBin::Bin/softauthn.py";
my $states = 0;

# an enrolment code as hpki-admin enroll-code stores it

sub new_code {
    my ($user) = @_;
    my @a = ('A' .. 'H', 'J' .. 'N', 'P' .. 'Z', 2 .. 9);
    my $id = join '', map { $a[rand @a] } 1 .. 8;
    my $code = $id . '-' . join '', map { $a[rand @a] } 1 .. 12;
    $t->redis('HSET', "hpki:enroll:$id", user => $user,
        hash => sha256_hex($code), fails => 0, created => time,
        expires => time + 900);
    $t->redis('EXPIRE', "hpki:enroll:$id", 900);
    return $code;
}

sub authn {
    my ($op, $state, $options, $flags) = @_;
    my %o = %{$flags // {}};
    my $from = delete $o{origin} // $origin;
    my @args = map { length $o{$_} ? ("--$_", $o{$_}) : ("--$_") }
        sort keys %o;
    my $cmd = join ' ', map { "'$_'" } '/usr/bin/python3', $softauthn, $op, $state,
        $JSON->encode($options), $from, @args;
    my $out = `$cmd`;
    die "softauthn $op failed: $?\n" if $?;
    return $JSON->decode($out);
}

sub switch { map { ($_ => '') } @_ }

sub post {
    my ($path, $body, %o) = @_;
    return $t->http(POST => $path, json => $body, %o);
}

# registration with an enrolment code; returns (state file, response)

sub register {
    my (%o) = @_;
    my $code = $o{code} // new_code($o{user} // 'demo-doctor');
    my $state = "$dir/authn-" . ++$states . '.json';
    my $opt = post('/hpki/fido/register/options',
        { enrollment_code => $code });
    return (undef, $opt) if $opt->{status} != 200;
    my $cred = authn('create', $state, $opt->{json}, $o{authn});
    my $r = post('/hpki/fido/register',
        { enrollment_code => $code, credential => $cred });
    return ($state, $r, $opt, $cred, $code);
}

sub login {
    my ($state, %o) = @_;
    my $opt = post('/hpki/fido/login/options', $o{options} // {});
    my $cred = authn('get', $state, $opt->{json}, $o{authn});
    $o{tamper}->($cred) if $o{tamper};
    return (post('/hpki/fido/login', { credential => $cred }), $opt, $cred);
}

sub refused {
    my ($r, $status, $re, $name) = @_;
    subtest $name => sub {
        is($r->{status}, $status, "status $status");
        like($r->{json}{error_description} // '', $re, 'the reason');
        ok($r->{json}{error}, 'error code');
    };
}

sub chal_key { 'hpki:chal:' . b64url(sha256($_[0])) }

plan tests => 67;

# --- registration options -------------------------------------------------

my $code = new_code('demo-doctor');
my $opt = post('/hpki/fido/register/options', { enrollment_code => lc $code });
is($opt->{status}, 200, 'register/options with a code (any case)');
my $o = $opt->{json};
is_deeply([$o->{rp}{id}, $o->{rp}{name}], ['localhost', 'HPKI test gateway'],
    'rp from configuration');
is_deeply([@{$o->{user}}{qw(name displayName)}], ['demo-doctor', 'Yamada Taro'],
    'user: name and display name');
like($o->{user}{id}, qr/^[A-Za-z0-9_-]{43}$/,
    'user.id: a random 32-byte handle, not the user id');
is($t->redis('HGET', 'hpki:user:demo-doctor', 'webauthn'), $o->{user}{id},
    '... kept with the user, the same for every device');
like($o->{challenge}, qr/^[A-Za-z0-9_-]{43}$/, 'a 32-byte base64url challenge');
is_deeply([map { $_->{alg} } @{$o->{pubKeyCredParams}}], [-7, -257],
    'ES256 and RS256 offered');
is($o->{authenticatorSelection}{userVerification}, 'required',
    'user verification required by default');
is($o->{authenticatorSelection}{residentKey}, 'required',
    'a discoverable credential');
my $ttl = $t->redis('TTL', chal_key($o->{challenge}));
ok($ttl > 0 && $ttl <= 60, "challenge kept in Redis with its TTL ($ttl s)");

# --- a registration, a login, a protected location ------------------------

my ($state, $r) = register();
is($r->{status}, 200, 'registered (ES256, attestation none)');
is($r->{json}{user}, 'demo-doctor', 'for the code\'s user');
my $h = b64url(sha256(Hpki::Test::unb64url($r->{json}{credential_id})));
my %cred = @{$t->redis('HGETALL', "hpki:fido:$h") // []};
is_deeply([@cred{qw(user alg fmt)}], ['demo-doctor', '-7', 'none'],
    'credential stored with its user, alg and format');
ok($t->redis('SISMEMBER', 'hpki:fidouser:demo-doctor', $h),
    'listed under the user');

my ($login) = login($state);
is($login->{status}, 200, "login with the registered device") or diag $login->{body};
my $claims = jwt_claims($login->{json}{access_token});
is_deeply($claims->{amr}, ['fido'], 'the token says amr fido');
is_deeply($login->{json}{user}, { id => 'demo-doctor', name => 'Yamada Taro',
    role => 'Medical Doctor' }, 'the answer names the user and role');

my $who = $t->http(GET => '/whoami', token => $login->{json}{access_token});
is($who->{status}, 200, 'the token passes the usual token check');
is($who->{json}{auth_method}, 'fido', 'whoami: auth_method fido');

my $sign = $t->http(POST => '/hpki/sign',
    token => $login->{json}{access_token},
    json => { hashes => [Hpki::Test::b64(sha256('prescription'))] });
is($sign->{status}, 200, 'a FIDO token signs with the second certificate');

# the named user's options list that user's credentials only

my $lo = post('/hpki/fido/login/options', { user => 'demo-doctor' });
is_deeply([map { $_->{id} } @{$lo->{json}{allowCredentials}}],
    [$r->{json}{credential_id}], 'login/options {user} lists the credential');
is(post('/hpki/fido/login/options', { user => 'nobody' })->{status}, 200,
    'an unknown user gets options too (no enumeration)');

# RS256 with packed self attestation, ES256 with packed x5c

my ($rs_state, $rs) = register(authn => { alg => -257, fmt => 'packed' });
is($rs->{status}, 200, 'registered (RS256, packed self attestation)');
is((login($rs_state))[0]{status}, 200, 'RS256 login');
my ($x5c_state, $x5c) = register(authn => { fmt => 'packed-x5c' });
is($x5c->{status}, 200, 'registered (packed attestation with x5c)');

# a card-login token instead of a code

my $card = $t->login('pharmacist_auth');
my $copt = post('/hpki/fido/register/options', {}, token => $card,
    cert => 'pharmacist_auth');
is($copt->{json}{user}{name}, 'demo-pharmacist',
    'register/options with a card-login token');
my $cstate = "$dir/card-device.json";
my $ccred = authn('create', $cstate, $copt->{json});
is(post('/hpki/fido/register', { credential => $ccred }, token => $card,
        cert => 'pharmacist_auth')->{status}, 200,
    'a card holder registers a phone');
is((login($cstate))[0]{json}{user}{role}, 'Pharmacist',
    'and logs in with it as a pharmacist');

# --- refusals ---------------------------------------------------------------

my ($s1, $bad) = register(authn => { origin => 'https://evil.example' });
refused($bad, 403, qr/origin/, 'registration from another origin');

($s1, $bad) = register(authn => { 'rp-id' => 'evil.example' });
refused($bad, 403, qr/rpId/, 'registration for another rpId');

($s1, $bad) = register(authn => { switch('no-uv') });
refused($bad, 403, qr/not verified/, 'registration without user verification');

($s1, $bad) = register(authn => { fmt => 'packed', switch('bad-sig') });
refused($bad, 403, qr/bad signature/, 'packed attestation with a bad signature');

($bad) = login($state, authn => { origin => 'https://evil.example' });
refused($bad, 403, qr/origin/, 'login from another origin');

($bad) = login($state, authn => { 'rp-id' => 'evil.example' });
refused($bad, 403, qr/rpId/, 'login for another rpId');

($bad) = login($state, authn => { switch('bad-sig') });
refused($bad, 403, qr/signature does not verify/, 'login with a bad signature');

($bad) = login($state, authn => { 'user-handle' => b64url('x' x 32) });
refused($bad, 403, qr/does not belong/, 'login with another user handle');

($bad) = login($state, authn => { switch('no-uv') });
refused($bad, 403, qr/not verified/, 'login without user verification');

# a challenge is used once, and not after its TTL

my $lopt = post('/hpki/fido/login/options', {});
my $c1 = authn('get', $state, $lopt->{json});
is(post('/hpki/fido/login', { credential => $c1 })->{status}, 200,
    'the first use of a challenge');
my $c2 = authn('get', $state, $lopt->{json});
refused(post('/hpki/fido/login', { credential => $c2 }), 403,
    qr/unknown, expired or already used/, 'a reused challenge');

$lopt = post('/hpki/fido/login/options', {});
$t->redis('PEXPIRE', chal_key($lopt->{json}{challenge}), 1);
select undef, undef, undef, 0.05;
refused(post('/hpki/fido/login',
        { credential => authn('get', $state, $lopt->{json}) }), 403,
    qr/unknown, expired or already used/, 'an expired challenge');

# bad input, and who may register without a code

refused(post('/hpki/fido/register/options', {}), 400,
    qr/enrollment_code, or a card-login token, is required/,
    'register/options without a code or token');
refused(post('/hpki/fido/register/options', {},
        token => $login->{json}{access_token}), 403,
    qr/only a token from an HPKI card login/,
    'a FIDO token cannot register another device');
refused(post('/hpki/fido/login', { credential => 'x' }), 400,
    qr/toJSON/, 'a credential that is not an object');
refused(post('/hpki/fido/login', { credential => { %$c1,
        response => { %{$c1->{response}}, clientDataJSON => 'e30' } } }),
    400, qr/clientDataJSON type/, 'clientDataJSON of the wrong shape');
refused(post('/hpki/fido/login/options', { user => 'a b' }), 400,
    qr/user must match/, 'login/options with a malformed user');

# a second configured origin; a GET; an empty login/options body

($s1, $bad) = login($state, authn => { origin => "https://app.localhost:8443" });
is($s1->{status}, 200, 'the second hpki_fido_origin is accepted too');
my $get = $t->http(GET => '/hpki/fido/login');
is_deeply([$get->{status}, $get->{json}{error}], [405, 'invalid_request'],
    'a GET gets 405, in JSON');
is($t->http(POST => '/hpki/fido/login/options', body => '',
        headers => { 'Content-Type' => 'application/json' })->{status},
    200, 'login/options with an empty body (Content-Length: 0)');

refused(post('/hpki/fido/register/options', { enrollment_code => 'ABC' }),
    400, qr/not a code of the form/, 'an enrolment code of the wrong form');
refused(post('/hpki/fido/register/options',
        { enrollment_code => 'ZZZZZZZZ-ABCDEFGHJKLM' }),
    403, qr/unknown or expired enrolment code/, 'an unknown enrolment code');
refused(post('/hpki/fido/login', { credential => { %$c1,
        rawId => b64url('another id') } }),
    400, qr/id and rawId differ/, 'a credential whose id and rawId differ');

$t->redis('HSET', 'hpki:user:demo-pharmacist', 'status', 'disabled');
refused(post('/hpki/fido/register/options',
        { enrollment_code => new_code('demo-pharmacist') }),
    403, qr/unknown or disabled/, 'a disabled user cannot register');
refused((login($cstate))[0], 403, qr/unknown or disabled/,
    'nor log in with a device bound before');
$t->redis('HSET', 'hpki:user:demo-pharmacist', 'status', 'active');

# a locked-out user gets no token from a device either

$t->redis('SET', 'hpki:fail:demo-doctor', 5);
refused((login($state))[0], 403, qr/locked/, 'a locked-out user: no FIDO login');
$t->redis('DEL', 'hpki:fail:demo-doctor');

# a card-login token revoked between options and registration

my $card2 = $t->login('pharmacist_auth');
my $copt2 = post('/hpki/fido/register/options', {}, token => $card2,
    cert => 'pharmacist_auth');
$t->redis('DEL', 'hpki:tok:' . jwt_claims($card2)->{jti});
my $late = post('/hpki/fido/register',
    { credential => authn('create', "$dir/late.json", $copt2->{json}) },
    token => $card2, cert => 'pharmacist_auth');
is($late->{status}, 401, 'a card-login token revoked before the registration: 401');

# an unknown credential

my $stranger = "$dir/stranger.json";
authn('create', $stranger, $o);    # made, never registered
($bad) = login($stranger);
refused($bad, 403, qr/unknown credential/, 'an unregistered credential');

# a signCount regression suspends the credential

my ($clone_state) = register();
is((login($clone_state, authn => { counter => 10 }))[0]{status}, 200,
    'login with counter 10');
($bad) = login($clone_state, authn => { counter => 5 });
refused($bad, 403, qr/cloned authenticator/, 'a counter that went backwards');
my $clone_id = $JSON->decode(Hpki::Test::_slurp($clone_state))->{id};
my $clone_h = b64url(sha256(Hpki::Test::unb64url($clone_id)));
ok($t->redis('HGET', "hpki:fido:$clone_h", 'clone'),
    'the credential is flagged as a possible clone');
($bad) = login($clone_state, authn => { counter => 50 });
refused($bad, 403, qr/suspended/, 'and refused afterwards');
$t->error_log_like(qr/possible cloned authenticator/, 'the clone is logged');

# five wrong enrolment codes lock the enrolment

my $lock = new_code('demo-doctor');
my ($id) = $lock =~ /^(\w+)-/;
my @wrong = map {
    post('/hpki/fido/register/options',
        { enrollment_code => "$id-ABCDEFGHJKL" . (2 + $_) })->{status}
} 1 .. 5;
is("@wrong", '403 403 403 403 403', 'five wrong codes refused');
my $typo = new_code('demo-doctor');
substr($typo, -1) = substr($typo, -1) eq 'X' ? 'Y' : 'X';
like(post('/hpki/fido/register/options', { enrollment_code => $typo })
        ->{json}{error_description},
    qr/wrong \(4 more attempts/, 'a wrong code says how many tries are left');
refused(post('/hpki/fido/register/options', { enrollment_code => $lock }),
    403, qr/locked after 5 wrong codes/,
    'then the right code is refused too: the enrolment is locked');

# --- Redis down or hung: every FIDO step fails closed, in JSON -------------

my ($fstate) = register();
my $fopt = post('/hpki/fido/login/options', {});
my $fcred = authn('get', $fstate, $fopt->{json});

kill 'STOP', $t->pid('redis');
my @hung = (post('/hpki/fido/login', { credential => $fcred }),
            post('/hpki/fido/login/options', {}),
            post('/hpki/fido/register/options',
                 { enrollment_code => 'ABCDEFGH-ABCDEFGHJKLM' }));
kill 'CONT', $t->pid('redis');
is("@{[ map { $_->{status} } @hung ]}", '503 503 503',
    'Redis hung: login, options and registration get 503');
is($hung[0]{json}{error}, 'temporarily_unavailable', '... in JSON');

$t->stop('redis');
my $down = post('/hpki/fido/login/options', {});
is_deeply([$down->{status}, $down->{json}{error}],
    [503, 'temporarily_unavailable'], 'Redis down: 503 at once');
