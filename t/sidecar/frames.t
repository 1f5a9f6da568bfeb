#!/usr/bin/perl
# Oversized, truncated, garbage and malformed frames get one ERROR reply
# (bad_frame closes the connection), and the daemon keeps serving.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use POSIX qw(:sys_wait_h);
use Socket qw(SHUT_WR);
use SigndTest;

my $t = SigndTest->new;
$t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');

sub raw {
    my ($bytes, %o) = @_;
    my $s = $t->connect;
    syswrite($s, $bytes);
    shutdown($s, SHUT_WR) if $o{half_close};
    my $r = SigndTest::read_reply($s);
    my $eof = !defined SigndTest::read_reply($s);
    return ($r, $eof);
}

sub still_serving {
    my $r = $t->request(undef, SigndTest::frame(2));
    return $r && $r->{type} == 0x82;
}

my @bad = (
    [ 'length above 65536', pack('N', 65537) . "\x01\x02" ],
    [ 'length 2^32-1', pack('N', 0xffffffff) ],
    [ 'length 0', pack('N', 0) ],
    [ 'length 1', pack('N', 1) . "\x01" ],
    [ 'version 2', pack('N', 2) . "\x02\x02" ],
    [ 'version 0', pack('N', 2) . "\x00\x01" ],
    [ 'field overruns the body',
      pack('N', 2 + 3 + 2) . "\x01\x01\x02\x00\x09ab" ],
    [ 'truncated field header', pack('N', 2 + 2) . "\x01\x01\x02\x00" ],
    [ 'garbage', "GET / HTTP/1.1\r\nHost: x\r\n\r\n" ],
);

for my $case (@bad) {
    my ($name, $bytes) = @$case;
    my ($r, $eof) = raw($bytes);
    is($r && $r->{error}, 'bad_frame', "$name: ERROR bad_frame");
    ok($eof, "$name: connection closed after the reply");
    ok(still_serving(), "$name: daemon still serves");
}

# truncated frame, then the client half-closes: still exactly one reply

my $full = SigndTest::sign_frame(user => 'doctor1', token => $token,
                                 digests => [sha256('x')]);
my ($r, $eof) = raw(substr($full, 0, length($full) - 7), half_close => 1);
is($r && $r->{error}, 'bad_frame', 'truncated frame + EOF: bad_frame');
ok($eof, 'truncated: closed');

# a complete request followed by a half-close still gets its reply

($r, $eof) = raw($full, half_close => 1);
is($r && $r->{type}, 0x81, 'request then half-close: SIGN_OK');
ok($eof, 'then closed');

# 64 KiB of random bytes

my $junk = join '', map { chr(int rand 256) } 1 .. 65536;
($r, $eof) = raw($junk);
ok(!$r || $r->{error} eq 'bad_frame', 'random bytes: bad_frame or closed');
ok(still_serving(), 'random bytes: daemon still serves');

# a maximal frame (65536) of unknown fields is parsed, then refused as a
# request, and the connection stays usable

my $body_len = 65536 - 2;
my $fill = '';
while (length($fill) + 3 + 1000 <= $body_len) {
    $fill .= pack('Cn', 0x7f, 1000) . ('z' x 1000);
}
my $rest = $body_len - length($fill) - 3;
$fill .= pack('Cn', 0x7f, $rest) . ('z' x $rest);
my $s = $t->connect;
$r = $t->request($s, pack('N', 65536) . "\x01\x01" . $fill);
is($r->{error}, 'bad_request', 'maximal frame: parsed, bad_request');
$r = $t->request($s, SigndTest::frame(2));
is($r && $r->{type}, 0x82, 'same connection still usable');

# the frame is read in fragments, one byte at a time

$s = $t->connect;
for my $byte (split //, $full) {
    syswrite($s, $byte);
}
$r = SigndTest::read_reply($s);
is($r && $r->{type}, 0x81, 'byte-by-byte frame: SIGN_OK');

# pipelined requests: one reply each, in order

$s = $t->connect;
my @d = map { sha256("pipe $_") } 1 .. 3;
syswrite($s, join '', SigndTest::frame(2),
         (map { SigndTest::sign_frame(user => 'doctor1', token => $token,
                                      digests => [$_]) } @d),
         SigndTest::frame(2));
my @types = map { SigndTest::read_reply($s)->{type} } 1 .. 5;
is_deeply(\@types, [0x82, 0x81, 0x81, 0x81, 0x82],
          'pipelined: five replies in order');

# well-framed but bad requests: bad_request, connection stays open

my @req = (
    [ 'unknown type', SigndTest::frame(0x33) ],
    [ 'reply type as request', SigndTest::frame(0x81) ],
    [ 'no token', SigndTest::sign_frame(user => 'doctor1',
                                        digests => [sha256('a')]) ],
    [ 'no user', SigndTest::sign_frame(token => $token,
                                       digests => [sha256('a')]) ],
    [ 'bad user id', SigndTest::sign_frame(user => 'doc tor',
                                           token => $token,
                                           digests => [sha256('a')]) ],
    [ 'no digest', SigndTest::sign_frame(user => 'doctor1',
                                         token => $token, digests => []) ],
    [ 'digest length does not match HASH_ALG',
      SigndTest::sign_frame(user => 'doctor1', token => $token, hash => 2,
                            digests => [sha256('a')]) ],
    [ 'HASH_ALG 4', SigndTest::sign_frame(user => 'doctor1',
                                          token => $token, hash => 4,
                                          digests => [sha256('a')]) ],
    [ 'SIG_ALG 3', SigndTest::sign_frame(user => 'doctor1',
                                         token => $token, sig => 3,
                                         digests => [sha256('a')]) ],
);

$s = $t->connect;
for my $case (@req) {
    my ($name, $frame) = @$case;
    $r = $t->request($s, $frame);
    is($r && $r->{error}, 'bad_request', "$name: bad_request");
}
$r = $t->sign(socket => $s, user => 'doctor1', token => $token,
              digests => [sha256('after')]);
is($r->{type}, 0x81, 'same connection signs after bad requests');

ok(waitpid($t->signd_pid, WNOHANG) == 0, 'daemon never exited');

done_testing();
