#!/usr/bin/perl
# No store and no file written by hpki-signd or hpki-admin contains the
# private exponent, the primes, or either share in clear.  The shares are
# recovered for the search by a test helper that opens them with the KEKs.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use File::Find;
use Math::BigInt;
use SigndTest;

my $unseal = "$SigndTest::BUILD/t/signd_unseal";
plan skip_all => "$unseal not built (make sidecar-unit)" unless -x $unseal;

my $t = SigndTest->new;
my $d = $t->dir;

# an imported key (d, p, q known) and a generated one, refreshed, used

my ($rc, $out) = SigndTest::run_cmd('openssl', 'genpkey', '-algorithm', 'RSA',
                                    '-pkeyopt', 'rsa_keygen_bits:2048',
                                    '-out', "$d/input.key");
$t->setup_user('imp', import => "$d/input.key");
$t->setup_user('gen');
$t->admin('key', 'refresh', '--user', 'gen');
for my $u ('imp', 'gen') {
    my $r = $t->sign(user => $u, token => $t->token(sub => $u),
                     digests => [sha256($u)], sig => 1);
    is($r->{type}, 0x81, "$u signs");
}
$t->admin('key', 'show', '--user', 'imp');
$t->redis('BGREWRITEAOF');
sleep 1;

my %secret;

($rc, $out) = SigndTest::run_cmd('openssl', 'rsa', '-in', "$d/input.key",
                                 '-text', '-noout');
for my $name ('privateExponent', 'prime1', 'prime2') {
    $out =~ /^$name:\n((?:\s+[0-9a-f:]+\n)+)/m or die "no $name";
    (my $hex = $1) =~ s/[\s:]//g;
    $hex =~ s/^00//;
    $secret{"imp $name"} = $hex;
}

for my $u ('imp', 'gen') {
    my (undef, $v) = $t->redis('--raw', 'HGET', "hpki:key:$u", 'version');
    my (undef, $n) = $t->redis('--raw', 'HGET', "hpki:key:$u", 'n');
    chomp($v, $n);
    for my $s ('a', 'b') {
        my (undef, $blob) = $t->redis('--raw', 'GET', "hpki:$s:$u:$v");
        chop $blob;                         # redis-cli's newline
        SigndTest::write_file("$d/blob", $blob);
        my $hex = qx{$unseal $d/kek-$s 'store-$s|$u|$v' $n < $d/blob};
        chomp $hex;
        $hex =~ s/^-//;
        ok(length($hex) > 400, "$u share " . uc($s) . ' recovered for the search');
        $secret{"$u share $s"} = lc $hex;
    }
}
unlink "$d/blob";

# every representation we can think of: binary (big and little endian),
# hex in both cases, decimal; a 24-byte window is enough to match

my @needles;
for my $name (sort keys %secret) {
    my $hex = $secret{$name};
    $hex = "0$hex" if length($hex) % 2;
    my $bin = pack('H*', $hex);
    my $mid = int(length($bin) / 2);
    push @needles,
        [ "$name (binary)", substr($bin, $mid, 24) ],
        [ "$name (binary, little endian)",
          substr(scalar reverse($bin), $mid, 24) ],
        [ "$name (hex)", substr($hex, 2 * $mid, 48) ],
        [ "$name (HEX)", uc substr($hex, 2 * $mid, 48) ],
        [ "$name (decimal)",
          substr(Math::BigInt->from_hex($hex)->bstr, 20, 40) ];
}

# everything the daemon, the admin CLI and Redis wrote

my @files;
find(sub { push @files, $File::Find::name if -f $_ }, $d);
@files = grep { !m{/input\.key$} } @files;
ok((grep { m{appendonly} } @files), 'the AOF is among the files searched');
ok((grep { m{audit\.log$} } @files), 'the audit log is searched');

my %content = map { $_ => SigndTest::read_file($_) } @files;

# and every value in Redis, through the all-keys test user
my (undef, $keys) = $t->redis('--raw', 'KEYS', '*');
for my $k (split /\n/, $keys) {
    my (undef, $type) = $t->redis('TYPE', $k);
    my (undef, $v) = $type =~ /hash/ ? $t->redis('--raw', 'HGETALL', $k)
                                     : $t->redis('--raw', 'GET', $k);
    $content{"redis $k"} = $v;
}

# positive control: the search finds a share where one is
$content{control} = 'x' . pack('H*', $secret{'gen share a'}) . 'y';

my @hits;
for my $n (@needles) {
    for my $f (sort keys %content) {
        push @hits, "$n->[0] in $f" if index($content{$f}, $n->[1]) >= 0;
    }
}
my @control = grep { / in control$/ } @hits;
@hits = grep { !/ in control$/ } @hits;
ok(@control >= 1, 'search self-check: a planted share is found');
is(scalar @hits, 0, scalar(@needles) . ' patterns, '
   . (scalar(keys %content) - 1) . ' files and values: no secret in clear')
    or diag join "\n", @hits;

done_testing();
