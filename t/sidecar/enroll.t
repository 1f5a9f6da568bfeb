#!/usr/bin/perl

# hpki-admin enroll-code: one-time codes for binding a phone (docs/fido.md).
# Redis keeps only SHA-256 of the code, with a TTL; the URL carries the code
# in its fragment; the QR code (terminal text and PNG) decodes to exactly
# that URL; unknown and disabled users, bad TTLs and a missing URL are
# refused; an id collision never overwrites another enrolment.
# hpki-admin fido list / delete: the credentials of a holder who lost a
# phone, with the clone marker, and never another holder's credential.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Digest::SHA qw(sha256_hex);
use Encode qw(decode);
use JSON::PP;

use Hpki::Test;

my $ALPHA = 'A-HJ-NP-Z2-9';
my $CODE_RE = qr/^[$ALPHA]{8}-[$ALPHA]{12}$/;

my $t = Hpki::Test->new(need => ['admin'])->start_redis;
my $d = $t->testdir;

$t->admin_ok('user', 'add', '--id', 'doctor', '--cert',
             $t->pki('doctor_auth_cert'));
$t->redis('HSET', 'hpki:user:retired', 'name', 'Retired', 'status',
          'disabled', 'created', time);
$t->redis('HSET', 'hpki:user:nurse', 'name', 'Nurse', 'status', 'active',
          'created', time);

delete $ENV{HPKI_FIDO_ENROLL_URL};
delete $ENV{HPKI_ADMIN_FAULT_ENROLL_ID};
$t->write_signd_conf;

sub enroll_keys {
    my $k = $t->redis('KEYS', 'hpki:enroll:*');
    return sort @$k;
}

# runs enroll-code --json; returns (result, decoded JSON or undef)

sub enroll_json {
    my (@args) = @_;
    my $r = $t->admin('enroll-code', '--json', @args);
    my $j = $r->{rc} == 0 ? eval { decode_json($r->{out}) } : undef;
    return ($r, $j);
}

# the QR code printed as half blocks, back to modules, as a PBM

sub text_qr_to_pbm {
    my ($text, $file) = @_;
    my @rows;
    for my $line (split /\n/, decode('UTF-8', $text)) {
        next unless length $line && $line =~ /^[ \x{2580}\x{2584}\x{2588}]+$/;
        next unless $line =~ /[\x{2580}\x{2584}\x{2588}]/;
        my (@top, @bottom);
        for my $c (split //, $line) {
            # drawn = light; a blank half is dark
            push @top,    ($c eq "\x{2580}" || $c eq "\x{2588}") ? 0 : 1;
            push @bottom, ($c eq "\x{2584}" || $c eq "\x{2588}") ? 0 : 1;
        }
        push @rows, \@top, \@bottom;
    }
    return 0 unless @rows;

    my $scale = 4;
    my $w = @{ $rows[0] } * $scale;
    open my $fh, '>', $file or die "$file: $!";
    print $fh "P1\n$w " . (@rows * $scale) . "\n";
    for my $row (@rows) {
        my $px = join ' ', map { ($_) x $scale } @$row;
        print $fh "$px\n" for 1 .. $scale;
    }
    close $fh;
    return scalar @rows;
}

# what zbarimg reads in an image (its stderr, which may carry D-Bus
# complaints, goes to a file)

sub zbar {
    my ($file) = @_;
    my $out = `zbarimg --raw -q \Q$file\E 2>\Q$d/zbar.err\E`;
    diag "zbarimg: " . Hpki::Test::_slurp("$d/zbar.err") if $?;
    chomp $out;
    return $out;
}

# --- where the URL comes from ---------------------------------------------

my $r = $t->admin('enroll-code', '--user', 'doctor');
isnt($r->{rc}, 0, 'no URL configured: refused');
like($r->{err}, qr/no enrolment URL: give --url BASE, or set enroll_url/,
     '... saying where to configure it');
is($r->{out}, '', '... and nothing on stdout');
is_deeply([enroll_keys()], [], '... and no enrolment stored');

my ($j, $code);
{
    local $ENV{HPKI_FIDO_ENROLL_URL} = 'https://env.example/hpki/fido/';
    ($r, $j) = enroll_json('--user', 'doctor');
    is($r->{rc}, 0, 'HPKI_FIDO_ENROLL_URL') or diag $r->{err};
    like($j->{url}, qr{^https://env\.example/hpki/fido/#code=},
         '... gives the base');

    $t->write_signd_conf(conf => "enroll_url https://conf.example/fido/\n");
    ($r, $j) = enroll_json('--user', 'doctor');
    like($j->{url}, qr{^https://conf\.example/fido/#code=},
         'enroll_url in the config file comes before the environment');

    ($r, $j) = enroll_json('--user', 'doctor', '--url',
                           'https://gw.example/hpki/fido/');
    like($j->{url}, qr{^https://gw\.example/hpki/fido/#code=},
         '--url comes first');
}

for my $bad ('ftp://gw.example/', 'https://gw.example/#x',
             'https://gw.example/a b', 'https://gw.example/"',
             'https://', 'gw.example/hpki/fido/')
{
    $r = $t->admin('enroll-code', '--user', 'doctor', '--url', $bad);
    isnt($r->{rc}, 0, "--url '$bad' refused");
}
like($r->{err}, qr/--url: the enrolment URL must be an http\(s\) URL/,
     '... with a reason');

# --- the code, the record, the JSON ---------------------------------------

my @before = enroll_keys();
my $t0 = time;
($r, $j) = enroll_json('--user', 'doctor');
my $t1 = time;
is($r->{rc}, 0, 'enroll-code --json') or diag $r->{err};
is_deeply([sort keys %$j], [qw(code expires_at url)],
          '--json: exactly code, url, expires_at');
like($r->{out}, qr/\A\{[^\n]*\}\n\z/, '... and nothing else on stdout');
$code = $j->{code};
like($code, $CODE_RE, 'code: 8-character id, dash, 12-character secret');
is($j->{url}, "https://conf.example/fido/#code=$code",
   'url: the base with the code in the fragment');
like($j->{expires_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     'expires_at: RFC 3339, UTC');
unlike($r->{err}, qr/\Q$code\E|\Q${\ substr($code, 9)}\E/,
       'stderr has no code');

my ($id, $secret) = split /-/, $code;
my %rec = @{ $t->redis('HGETALL', "hpki:enroll:$id") };
is($rec{user}, 'doctor', 'record: user');
is($rec{hash}, sha256_hex($code), 'record: SHA-256 of the code as printed');
is($rec{fails}, '0', 'record: fails 0');
ok($rec{created} >= $t0 && $rec{created} <= $t1, 'record: created now');
is($rec{expires}, $rec{created} + 900, 'record: expires = created + 900');
my @exp = gmtime($rec{expires});
is($j->{expires_at}, sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
   $exp[5] + 1900, $exp[4] + 1, @exp[3, 2, 1, 0]),
   'expires_at is the record\'s expires');
my $ttl = $t->redis('TTL', "hpki:enroll:$id");
ok($ttl > 890 && $ttl <= 900, "TTL 900 by default (got $ttl)");
is_deeply([enroll_keys()], [sort(@before, "hpki:enroll:$id")],
          'exactly one record added');

# nowhere in Redis: every key's value, and the append-only file

my $found = '';
for my $k (@{ $t->redis('KEYS', '*') }) {
    my $type = $t->redis('TYPE', $k);
    my $v = $type eq 'string' ? $t->redis('GET', $k)
          : $type eq 'hash'   ? $t->redis('HGETALL', $k)
          : $type eq 'set'    ? $t->redis('SMEMBERS', $k)
          : [];
    for my $s ($k, ref $v ? @$v : $v) {
        $found .= "$k " if defined $s && index($s, $secret) >= 0;
    }
}
is($found, '', 'the code\'s secret is in no key or value in Redis');
my $aof = join '', map { Hpki::Test::_slurp($_) }
                   glob "$d/redis/appendonlydir/*";
ok(length $aof, 'the append-only file has been written');
ok(index($aof, $secret) < 0, '... and has no trace of the code');

# ttl

($r, $j) = enroll_json('--user', 'doctor', '--ttl', '60');
is($r->{rc}, 0, '--ttl 60');
($id) = split /-/, $j->{code};
$ttl = $t->redis('TTL', "hpki:enroll:$id");
ok($ttl > 50 && $ttl <= 60, "... TTL 60 (got $ttl)");
%rec = @{ $t->redis('HGETALL', "hpki:enroll:$id") };
is($rec{expires} - $rec{created}, 60, '... expires = created + 60');

($r, $j) = enroll_json('--user', 'doctor', '--ttl', '86400');
is($r->{rc}, 0, '--ttl 86400');

@before = enroll_keys();
for my $bad ('59', '86401', '0', '-900', '900s', 'abc', '') {
    $r = $t->admin('enroll-code', '--user', 'doctor', '--ttl', $bad);
    isnt($r->{rc}, 0, "--ttl '$bad' refused");
}
like($r->{err}, qr/--ttl must be 60 to 86400 seconds/, '... with a reason');
is_deeply([enroll_keys()], \@before, '... and nothing stored');

# every code is new

my %seen;
for (1 .. 5) {
    ($r, $j) = enroll_json('--user', 'doctor');
    $seen{ $j->{code} }++;
}
is(scalar keys %seen, 5, 'five codes, all different');

# an id collision: the existing enrolment is left alone, a new id is drawn

$t->redis('HSET', 'hpki:enroll:AAAAAAAA', 'user', 'nurse', 'hash', 'x' x 64,
          'fails', '0', 'created', time, 'expires', time + 900);
$t->redis('EXPIRE', 'hpki:enroll:AAAAAAAA', 900);
{
    local $ENV{HPKI_ADMIN_FAULT_ENROLL_ID} = 'AAAAAAAA';
    ($r, $j) = enroll_json('--user', 'doctor');
}
is($r->{rc}, 0, 'enroll-code with the first id taken') or diag $r->{err};
unlike($j->{code}, qr/^AAAAAAAA-/, '... draws another id');
%rec = @{ $t->redis('HGETALL', 'hpki:enroll:AAAAAAAA') };
is_deeply([@rec{qw(user hash)}], ['nurse', 'x' x 64],
          '... and the other enrolment is untouched');

# --- users ------------------------------------------------------------------

@before = enroll_keys();
$r = $t->admin('enroll-code', '--user', 'ghost');
isnt($r->{rc}, 0, 'unknown user refused');
like($r->{err}, qr/no user "ghost"/, '... with a reason');
$r = $t->admin('enroll-code', '--user', 'retired');
isnt($r->{rc}, 0, 'disabled user refused');
like($r->{err}, qr/user "retired" is not active \(status disabled\)/,
     '... with a reason');
$r = $t->admin('enroll-code', '--user', 'bad id');
isnt($r->{rc}, 0, 'invalid user id refused');
$r = $t->admin('enroll-code');
isnt($r->{rc}, 0, 'no --user refused');
is_deeply([enroll_keys()], \@before, 'no enrolment stored for any of them');

# --- for a person at a terminal ---------------------------------------------

$r = $t->admin('enroll-code', '--user', 'doctor', '--url',
               'https://gw.example/hpki/fido/');
is($r->{rc}, 0, 'enroll-code (text)') or diag $r->{err};
my %line = $r->{out} =~ /^(user|code|url|expires) +(.*)$/mg;
is($line{user}, 'doctor', 'text: user');
like($line{code}, $CODE_RE, 'text: code');
is($line{url}, "https://gw.example/hpki/fido/#code=$line{code}",
   'text: url');
like($line{expires}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 900 s; one use\)$/,
     'text: expiry');
like(decode('UTF-8', $r->{out}), qr/^\x{2588}{20,}$/m,
     'text: a QR code in half blocks, with a quiet zone');
unlike($r->{out}, qr/\e/, 'no colour escapes when stdout is not a terminal');
ok(text_qr_to_pbm($r->{out}, "$d/text-qr.pbm"), 'the terminal QR code read');
is(zbar("$d/text-qr.pbm"), $line{url},
   '... and zbarimg decodes it to exactly the URL');
($id) = split /-/, $line{code};
is($t->redis('HGET', "hpki:enroll:$id", 'hash'), sha256_hex($line{code}),
   '... whose code is stored');

# --- PNG ----------------------------------------------------------------------

$r = $t->admin('enroll-code', '--user', 'doctor', '--png', "$d/qr.png");
is($r->{rc}, 0, 'enroll-code --png') or diag $r->{err};
%line = $r->{out} =~ /^(code|url) +(.*)$/mg;
like($r->{err}, qr/QR code written to \Q$d\E\/qr\.png/, '... says where');
open my $fh, '<:raw', "$d/qr.png" or die;
read $fh, my $magic, 8;
close $fh;
is($magic, "\x89PNG\r\n\x1a\n", '... a PNG file');
is((stat "$d/qr.png")[2] & 07777, 0600, '... mode 0600');
ok(!-e "$d/qr.png.tmp", '... no temporary file left');
is(zbar("$d/qr.png"), $line{url},
   '... zbarimg decodes it to exactly the URL');

($r, $j) = enroll_json('--user', 'doctor', '--png', "$d/qr2.png");
is($r->{rc}, 0, 'enroll-code --json --png');
ok(decode_json($r->{out}), '... stdout is only the JSON');
is(zbar("$d/qr2.png"), $j->{url}, '... the PNG decodes to its url');

@before = enroll_keys();
$r = $t->admin('enroll-code', '--user', 'doctor', '--png',
               "$d/no/such/dir/qr.png");
isnt($r->{rc}, 0, 'a PNG that cannot be written fails');
is($r->{out}, '', '... prints no code');
is_deeply([enroll_keys()], \@before, '... and leaves no enrolment behind');

# --- fido list / fido delete ------------------------------------------------

my $h1 = 'Aq1' . ('b' x 40);
my $h2 = 'Zz9' . ('c' x 40);
my $h3 = 'Mm5' . ('d' x 40);
my $gone = 'Gg0' . ('e' x 40);

$t->redis('HSET', "hpki:fido:$h1", 'user', 'doctor', 'id', 'cred-1',
          'alg', '-7', 'key', 'MFkw', 'count', '12', 'fmt', 'packed',
          'aaguid', 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4',
          'created', '1764000000', 'used', '1764003600');
$t->redis('HSET', "hpki:fido:$h2", 'user', 'doctor', 'id', 'cred-2',
          'alg', '-257', 'key', 'MIIB', 'count', '3', 'fmt', 'none',
          'aaguid', '00000000-0000-0000-0000-000000000000',
          'created', '1764000100', 'used', '0', 'clone', '1764007200');
$t->redis('HSET', "hpki:fido:$h3", 'user', 'nurse', 'id', 'cred-3',
          'alg', '-7', 'key', 'MFkw', 'count', '1', 'fmt', 'none',
          'aaguid', '00000000-0000-0000-0000-000000000000',
          'created', '1764000200', 'used', '1764000300');
$t->redis('SADD', 'hpki:fidouser:doctor', $h2, $h1);
$t->redis('SADD', 'hpki:fidouser:nurse', $h3);

$r = $t->admin('fido', 'list', '--user', 'doctor');
is($r->{rc}, 0, 'fido list') or diag $r->{err};
my @rows = split /\n/, $r->{out};
is(scalar @rows, 3, '... a header and two credentials');
like($rows[0], qr/^CREDENTIAL +ALG +COUNT +CREATED +LAST USED$/, '... header');
like($rows[1], qr/^\Q$h1\E +ES256 +12 +2025-11-24T16:00:00Z +2025-11-24T17:00:00Z$/,
     '... the first, sorted, no marker');
like($rows[2], qr/^\Q$h2\E +RS256 +3 +2025-11-24T16:01:40Z +never +CLONE SUSPECTED \(signature counter went back, 2025-11-24T18:00:00Z\)$/,
     '... the second, never used, CLONE SUSPECTED');
unlike($r->{out}, qr/\Q$h3\E/, '... not the nurse\'s credential');

$r = $t->admin('fido', 'list', '--user', 'doctor', '--json');
is($r->{rc}, 0, 'fido list --json');
$j = decode_json($r->{out});
is_deeply($j, [
    { credential => $h1, alg => -7, count => 12, fmt => 'packed',
      aaguid => 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4',
      created => '2025-11-24T16:00:00Z', used => '2025-11-24T17:00:00Z',
      clone => undef },
    { credential => $h2, alg => -257, count => 3, fmt => 'none',
      aaguid => '00000000-0000-0000-0000-000000000000',
      created => '2025-11-24T16:01:40Z', used => undef,
      clone => '2025-11-24T18:00:00Z' },
], '... every credential, with the clone time');
unlike($r->{out}, qr/MFkw|MIIB|cred-/, '... no public key or credential id');

$r = $t->admin('fido', 'list', '--user', 'retired');
is($r->{rc}, 0, 'fido list of a user without credentials');
is($r->{out}, "no FIDO credentials for \"retired\"\n", '... says so');
$r = $t->admin('fido', 'list', '--user', 'retired', '--json');
is($r->{out}, "[]\n", '... --json: []');
$r = $t->admin('fido', 'list', '--user', 'ghost');
isnt($r->{rc}, 0, 'fido list of an unknown user refused');
like($r->{err}, qr/no user "ghost"/, '... with a reason');

$r = $t->admin('fido', 'delete', '--user', 'doctor', '--credential', $h3);
isnt($r->{rc}, 0, 'deleting another user\'s credential refused');
like($r->{err}, qr/\Q$h3\E is not a credential of "doctor": not deleted/,
     '... with a reason');
is($t->redis('HGET', "hpki:fido:$h3", 'user'), 'nurse',
   '... the record is still there');
is($t->redis('SISMEMBER', 'hpki:fidouser:nurse', $h3), 1,
   '... and still the nurse\'s');

$r = $t->admin('fido', 'delete', '--user', 'doctor', '--credential',
               'Xx1' . ('f' x 40));
isnt($r->{rc}, 0, 'deleting an unknown credential refused');
like($r->{err}, qr/"doctor" has no credential/, '... with a reason');
$r = $t->admin('fido', 'delete', '--user', 'doctor', '--credential', 'abc');
isnt($r->{rc}, 0, 'a malformed credential refused');
like($r->{err}, qr/43 base64url characters/, '... with a reason');
$r = $t->admin('fido', 'delete', '--user', 'doctor');
isnt($r->{rc}, 0, 'no --credential refused');

$r = $t->admin('fido', 'delete', '--user', 'doctor', '--credential', $h2);
is($r->{rc}, 0, 'fido delete') or diag $r->{err};
like($r->{err}, qr/credential \Q$h2\E of "doctor" deleted/, '... says so');
is($t->redis('EXISTS', "hpki:fido:$h2"), 0, '... the record is gone');
is($t->redis('SISMEMBER', 'hpki:fidouser:doctor', $h2), 0,
   '... and so is the set member');
is($t->redis('SISMEMBER', 'hpki:fidouser:doctor', $h1), 1,
   '... the other credential stays');

# a set member whose record has gone: shown, and removable

$t->redis('SADD', 'hpki:fidouser:doctor', $gone);
$r = $t->admin('fido', 'list', '--user', 'doctor');
like($r->{out}, qr/^\Q$gone\E +\(record missing/m,
     'fido list shows a member without a record');
$r = $t->admin('fido', 'delete', '--user', 'doctor', '--credential', $gone);
is($r->{rc}, 0, 'fido delete removes it');
is($t->redis('SISMEMBER', 'hpki:fidouser:doctor', $gone), 0,
   '... from the set');

done_testing();
