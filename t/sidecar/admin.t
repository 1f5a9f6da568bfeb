#!/usr/bin/perl
# hpki-admin: users and certificate links, certificate installation
# checks, key show/list/delete, store separation, KEK mode enforcement.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Test::More;
use Digest::SHA qw(sha256);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use SigndTest;

my $t = SigndTest->new;
my $d = $t->dir;
my ($rc, $out, $err);

# user add: hpki:user:<id> and hpki:cert:<x5t>

SigndTest::run_cmd('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                   '-keyout', "$d/auth.key", '-out', "$d/auth.csr", '-subj',
                   '/C=JP/CN=Taro Yamada');
$t->issue_cert("$d/auth.csr", "$d/auth.crt", 'auth');
my $der;
($rc, $der) = SigndTest::run_cmd3("$d/err", 'openssl', 'x509', '-in',
                                  "$d/auth.crt", '-outform', 'DER');
my $x5t = SigndTest::b64url(sha256($der));

($rc, $out, $err) = $t->admin3('user', 'add', '--id', 'doctor1', '--cert',
                               "$d/auth.crt", '--name', 'Taro Yamada');
is($rc, 0, 'user add') or diag $err;
is($out, "doctor1 $x5t\n", 'prints the id and x5t#S256');
($rc, $out) = $t->redis('GET', "hpki:cert:$x5t");
is($out, "doctor1\n", 'hpki:cert:<x5t> = id');
($rc, $out) = $t->redis('HGET', 'hpki:user:doctor1', 'name');
is($out, "Taro Yamada\n", 'hpki:user:<id> name');
($rc, $out) = $t->redis('HGET', 'hpki:user:doctor1', 'status');
is($out, "active\n", 'hpki:user:<id> status');

SigndTest::run_cmd('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                   '-keyout', "$d/jpki.key", '-out', "$d/jpki.csr", '-subj',
                   '/C=JP/CN=jpki');
$t->issue_cert("$d/jpki.csr", "$d/jpki.crt", 'auth');
($rc, $out) = $t->admin('user', 'link-cert', '--id', 'doctor1', '--cert',
                        "$d/jpki.crt");
is($rc, 0, 'user link-cert');
($rc, $out) = $t->admin('user', 'link-cert', '--id', 'ghost', '--cert',
                        "$d/jpki.crt");
isnt($rc, 0, 'link-cert for an unknown user refused');
($rc, $out) = $t->admin('user', 'add', '--id', 'bad id', '--cert',
                        "$d/auth.crt");
isnt($rc, 0, 'invalid user id refused');

# key generate writes a CSR signed by the key

($rc, $out, $err) = $t->admin3('key', 'generate', '--user', 'doctor1',
                               '--subject', '/C=JP/O=Clinic/CN=Taro Yamada');
is($rc, 0, 'key generate') or diag $err;
like($out, qr/^-----BEGIN CERTIFICATE REQUEST-----/, 'CSR on stdout');
SigndTest::write_file("$d/doctor1.csr", $out);
($rc, $out) = SigndTest::run_cmd('openssl', 'req', '-in', "$d/doctor1.csr",
                                 '-verify', '-noout', '-subject');
is($rc, 0, 'CSR self-signature verifies');
like($out, qr/CN\s*=\s*Taro Yamada/, 'CSR subject');

($rc, $out) = $t->admin('key', 'generate', '--user', 'doctor1');
isnt($rc, 0, 'a second key for the same user is refused');

# cert install refusals

($rc, $out) = $t->admin('cert', 'install', '--user', 'doctor1', '--cert',
                        "$d/auth.crt");
isnt($rc, 0, 'certificate for another key refused');
like($out, qr/public key is not the key/, '... with a reason');

$t->issue_cert("$d/doctor1.csr", "$d/doctor1-auth.crt", 'auth');
($rc, $out) = $t->admin('cert', 'install', '--user', 'doctor1', '--cert',
                        "$d/doctor1-auth.crt");
isnt($rc, 0, 'authentication certificate (no nonRepudiation) refused');
like($out, qr/nonRepudiation/, '... with a reason');

$t->issue_cert("$d/doctor1.csr", "$d/doctor1.crt");
($rc, $out) = $t->admin('cert', 'install', '--user', 'doctor1', '--cert',
                        "$d/doctor1.crt", '--chain', "$d/ca.pem");
is($rc, 0, 'signing certificate installed') or diag $out;

# key show / list

($rc, $out) = $t->admin('key', 'show', '--user', 'doctor1');
is($rc, 0, 'key show');
my $j = decode_json($out);
is($j->{user}, 'doctor1', 'show: user');
is($j->{bits}, 2048, 'show: bits');
is($j->{version}, 1, 'show: version');
is($j->{status}, 'active', 'show: status');
is_deeply($j->{shares}, { a => JSON::PP::true, b => JSON::PP::true },
          'show: both shares present');
like($j->{certificate}{subject}, qr/CN=Taro Yamada/, 'show: subject');
like($j->{certificate}{serial}, qr/^[0-9A-F]+$/, 'show: serial');
like($j->{certificate}{not_after}, qr/^\d{4}-\d\d-\d\dT/, 'show: validity');
unlike($out, qr/[0-9a-fA-F]{128}/, 'show: no long hex (no n, no shares)');

$t->setup_user('doctor2');
($rc, $out) = $t->admin('key', 'list');
my @list = sort { $a->{user} cmp $b->{user} } @{ decode_json($out) };
is_deeply([map { $_->{user} } @list], ['doctor1', 'doctor2'], 'key list');

# store separation: each ACL user sees only its own prefix

($rc, $out) = $t->redis_as('share-a', 'GET', 'hpki:b:doctor1:1');
like($out, qr/NOPERM/, 'share-a cannot read store B');
($rc, $out) = $t->redis_as('share-b', 'GET', 'hpki:a:doctor1:1');
like($out, qr/NOPERM/, 'share-b cannot read store A');
($rc, $out) = $t->redis_as('default', 'GET', 'hpki:a:doctor1:1');
like($out, qr/NOPERM/, 'the default (gateway) user cannot read store A');
($rc, $out) = $t->redis_as('share-a', 'EXISTS', 'hpki:a:doctor1:1');
is($out, "1\n", 'share A stored under hpki:a:<id>:1');

# AOF is on

($rc, $out) = $t->redis('CONFIG', 'GET', 'appendonly');
like($out, qr/yes/, 'store is durable (appendonly yes)');

# key delete: record and every share version gone, signing says no_key

($rc, $out) = $t->admin('key', 'delete', '--user', 'doctor2');
is($rc, 0, 'key delete') or diag $out;
($rc, $out) = $t->redis('KEYS', 'hpki:*doctor2*');
is($out, "\n", 'no record or share of doctor2 left') or diag $out;
my $r = $t->sign(user => 'doctor2', token => $t->token(sub => 'doctor2'),
                 digests => [sha256('x')]);
is($r->{error}, 'no_key', 'deleted key: no_key');

# KEK mode must be 0600: the daemon refuses to start

$t->stop_signd;
chmod 0644, "$d/kek-b";
ok(!defined $t->start_signd, 'KEK B mode 0644: hpki-signd refuses to start');
like($t->signd_log, qr/kek-b" must be .*mode 0600/, '... and says why');
chmod 0600, "$d/kek-b";

($rc, $out) = SigndTest::run_cmd("$SigndTest::BUILD/hpki-signd", '-c',
                                 $t->conf, '-t');
is($rc, 0, 'hpki-signd -t: configuration ok');

SigndTest::write_file("$d/kek-short", 'x' x 16, 0600);
$t->write_conf("store_a_kek $d/kek-short\n");
($rc, $out) = SigndTest::run_cmd("$SigndTest::BUILD/hpki-signd", '-c',
                                 $t->conf, '-t');
isnt($rc, 0, 'a 16-byte KEK is refused');
$t->write_conf('');

SigndTest::write_file("$d/bad.conf", "listen /x\nbogus_directive 1\n");
($rc, $out) = SigndTest::run_cmd("$SigndTest::BUILD/hpki-signd", '-c',
                                 "$d/bad.conf", '-t');
isnt($rc, 0, 'unknown directive refused');
like($out, qr/bad.conf:2: invalid directive "bogus_directive"/,
     '... with file and line');

ok(defined $t->start_signd, 'starts again with mode 0600');

done_testing();
