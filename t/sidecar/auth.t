#!/usr/bin/perl
# The daemon verifies the token itself: signature with the gateway key,
# RS256 only, iss, aud, exp/nbf (60 s leeway), sub == USER, "sign" in
# scope; another user's key, a revoked key and a missing certificate are
# refused; the peer uid is checked.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use POSIX ();
use SigndTest;

my $t = SigndTest->new(conf_extra => "socket_mode 0666\n");
$t->setup_user('doctor1');
$t->setup_user('doctor2');
my $dg = [sha256('rx')];
my $now = time;

sub try {
    my (%o) = @_;
    my $user = delete $o{user} // 'doctor1';
    my $token = delete $o{raw} // $t->token(sub => 'doctor1', %o);
    return $t->sign(user => $user, token => $token, digests => $dg);
}

is(try()->{type}, 0x81, 'a good token signs');

my @refused = (
    [ 'signed by another key', key => 'other' ],
    [ 'alg HS256 keyed with the public key (alg confusion)',
      alg => 'HS256' ],
    [ 'alg none', alg => 'none' ],
    [ 'wrong issuer', iss => 'https://evil.example' ],
    [ 'no issuer', iss => undef ],
    [ 'wrong audience', aud => 'other' ],
    [ 'audience array without hpki', aud => ['a', 'b'] ],
    [ 'expired beyond the leeway', exp => $now - 120 ],
    [ 'no exp', exp => undef ],
    [ 'not yet valid beyond the leeway', nbf => $now + 120 ],
    [ 'subject is another user', sub => 'doctor2' ],
    [ 'scope without sign', scope => 'openid' ],
    [ 'scope "signature" is not "sign"', scope => 'openid signature' ],
    [ 'no scope', scope => undef ],
);

for my $case (@refused) {
    my ($name, %claims) = @$case;
    my $r = try(%claims);
    is($r->{error}, 'unauthorized', "$name: unauthorized");
}

is(try(aud => ['x', 'hpki'])->{type}, 0x81, 'audience array with hpki');
is(try(exp => $now - 30)->{type}, 0x81, 'expired 30 s ago: within leeway');
is(try(nbf => $now + 30)->{type}, 0x81, 'nbf 30 s ahead: within leeway');
is(try(scope => 'sign')->{type}, 0x81, 'scope "sign" alone');

# doctor1's valid token for doctor2's key: refused

my $r = try(user => 'doctor2');
is($r->{error}, 'unauthorized', "doctor1's token cannot use doctor2's key");

# garbage tokens

for my $raw ('', 'x', 'a.b.c', 'a.b', "\x00\x01\x02", 'a' x 9000) {
    $r = try(raw => $raw);
    ok($r->{error} eq 'unauthorized' || $r->{error} eq 'bad_request',
       'garbage token (' . length($raw) . ' bytes) refused');
}

# a tampered payload with the original signature

my $good = $t->token(sub => 'doctor1');
my ($h, $p, $s) = split /\./, $good;
my $evil = SigndTest::b64url(SigndTest::json_encode({
    iss => 'https://127.0.0.1:8443', aud => 'hpki', sub => 'doctor2',
    exp => $now + 3600, scope => 'sign' }));
$r = $t->sign(user => 'doctor2', token => "$h.$evil.$s", digests => $dg);
is($r->{error}, 'unauthorized', 'payload swapped under a valid signature');

# second token key (key rotation): both accepted when both configured

$t->stop_signd;
$t->write_conf("socket_mode 0666\ntoken_public_key " . $t->dir
               . "/other.pub.pem\n");
$t->start_signd;
is(try(key => 'other')->{type}, 0x81, 'second token_public_key accepted');
is(try()->{type}, 0x81, 'first key still accepted');

# no key / revoked / no certificate -> no_key

my $t3 = $t->token(sub => 'nobody');
$r = $t->sign(user => 'nobody', token => $t3, digests => $dg);
is($r->{error}, 'no_key', 'user without a key: no_key');

my ($rc, $out) = $t->admin('key', 'generate', '--user', 'nocert',
                           '--csr-out', $t->dir . '/nocert.csr');
is($rc, 0, 'key without certificate generated') or diag $out;
$r = $t->sign(user => 'nocert', token => $t->token(sub => 'nocert'),
              digests => $dg);
is($r->{error}, 'no_key', 'key without certificate: no_key');

($rc, $out) = $t->admin('key', 'revoke', '--user', 'doctor2');
is($rc, 0, 'key revoke') or diag $out;
$r = $t->sign(user => 'doctor2', token => $t->token(sub => 'doctor2'),
              digests => $dg);
is($r->{error}, 'no_key', 'revoked key: no_key');

# refusals are audited

my $audit = SigndTest::read_file($t->audit_log);
like($audit, qr/user=doctor2 .* result=unauthorized /,
     'unauthorized attempt audited');
like($audit, qr/user=doctor2 .* result=no_key /, 'no_key audited');

# peer uid not in allow_uid: ERROR forbidden, nothing read

SKIP: {
    skip 'needs root to switch uid', 2 if $> != 0;
    chmod 0711, $t->dir;
    pipe(my $rd, my $wr) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $rd;
        POSIX::setgid(65534);
        POSIX::setuid(65534) or POSIX::_exit(3);
        my $sock = IO::Socket::UNIX->new(Type => Socket::SOCK_STREAM(),
                                         Peer => $t->socket_path);
        if (!$sock) { syswrite $wr, "noconnect\n"; POSIX::_exit(0) }
        local $SIG{PIPE} = 'IGNORE';
        my $x = SigndTest::read_reply($sock);
        syswrite $wr, ($x ? $x->{error} || "reply" : "eof") . "\n";
        POSIX::_exit(0);
    }
    close $wr;
    my $res = <$rd>;
    waitpid $pid, 0;
    chomp $res if defined $res;
    is($res, 'forbidden', 'uid 65534 not allowed: ERROR forbidden');
    like($t->signd_log, qr/peer uid not allowed/, 'refusal logged');
}

done_testing();
