#!/usr/bin/perl
# key refresh: new shares, same key; versioned so that a crash between
# any two of its writes leaves a key that still signs correctly.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use JSON::PP;
use SigndTest;

my $t = SigndTest->new;
my $pub = $t->setup_user('doctor1');
my $token = $t->token(sub => 'doctor1');
my $dg = sha256('refresh');

sub sig {
    my $r = $t->sign(user => 'doctor1', token => $token, digests => [$dg]);
    return $r->{fields}{SIGNATURE}[0] // "error: $r->{error}";
}

sub version {
    my (undef, $out) = $t->admin('key', 'show', '--user', 'doctor1');
    return decode_json($out)->{version};
}

sub shares {
    my (undef, $a) = $t->redis('--raw', 'KEYS', 'hpki:a:doctor1:*');
    my (undef, $b) = $t->redis('--raw', 'KEYS', 'hpki:b:doctor1:*');
    return join ' ', sort split /\n/, "$a$b";
}

my $orig = sig();
ok($t->verify($pub, $dg, $orig, 'sha256'), 'signs before refresh');
my ($rc, $blob_a1) = $t->redis('--raw', 'GET', 'hpki:a:doctor1:1');

($rc, my $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
is($rc, 0, 'refresh') or diag $out;
is(version(), 2, 'version 2');
is(shares(), 'hpki:a:doctor1:2 hpki:b:doctor1:2', 'old shares destroyed');
my ($rc2, $blob_a2) = $t->redis('--raw', 'GET', 'hpki:a:doctor1:2');
isnt($blob_a2, $blob_a1, 'share A changed');
is(sig(), $orig, 'same key: identical PKCS#1 v1.5 signature');

for (1 .. 3) {
    $t->admin('key', 'refresh', '--user', 'doctor1');
}
is(version(), 5, 'three more refreshes: version 5');
is(sig(), $orig, 'still the same signature (shares may be negative now)');

# crash after each write: A(v+1), B(v+1), record, delete A(v), delete B(v)

for my $n (1 .. 5) {
    my $v = version();
    local $ENV{HPKI_ADMIN_CRASH_AFTER} = $n;
    ($rc, $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
    isnt($rc, 0, "refresh killed after write $n");
    my $now = version();
    is($now, $n >= 3 ? $v + 1 : $v,
       "crash after write $n: version " . ($n >= 3 ? 'moved' : 'kept'));
    is(sig(), $orig, "crash after write $n: still signs correctly");
}

# a clean refresh afterwards tidies every leftover version

($rc, $out) = $t->admin('key', 'refresh', '--user', 'doctor1');
is($rc, 0, 'clean refresh after the crashes') or diag $out;
my $v = version();
is(shares(), "hpki:a:doctor1:$v hpki:b:doctor1:$v",
   'exactly one version left in each store');
is(sig(), $orig, 'signs after the clean refresh');

# a refresh while signing is under way: every reply is good or an error

my $pid = fork // die;
if ($pid == 0) {
    for (1 .. 3) { $t->admin('key', 'refresh', '--user', 'doctor1') }
    exit 0;
}
my ($good, $bad, $err) = (0, 0, 0);
while (waitpid($pid, POSIX::WNOHANG()) == 0) {
    my $s = sig();
    if ($s eq $orig) { $good++ }
    elsif ($s =~ /^error: (\w+)/) { $err++ }
    else { $bad++ }
}
is($bad, 0, "no bad signature during refreshes ($good good, $err errors)");

done_testing();
