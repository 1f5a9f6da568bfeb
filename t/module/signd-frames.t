#!/usr/bin/perl

# What nginx makes of hpki-signd's answers, the sidecar replaced by a fake
# for fault injection (a real nginx, a real login, a real token): a reply
# in one piece or in two, and over a kept-alive connection, gives the JSON
# a client expects, header and body in one response; bytes after the reply
# are logged and the connection is not reused; each reply carries its own
# certificate and chain, exactly (nginx keeps their JSON per worker); a
# frame of a wrong length, a wrong count of signatures, a certificate that
# is not ASCII or a frame of an unknown type give the 503 JSON error of a
# sidecar that is down (README: "garbled gives a 503"); an ERROR frame
# gives its mapped error.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin, "$FindBin::Bin/../sidecar";

use Test::More;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use POSIX ();
use Time::HiRes qw(sleep);

use Hpki::Test qw(b64);
use HpkiModule qw(gateway_conf);
use SigndTest ();

my $t = Hpki::Test->new(need => [qw(module signd admin)])
    ->start_redis
    ->start_signd
    ->enroll(id => 'demo-doctor', auth => 'doctor_auth',
             role => 'Medical Doctor');

my $dir = $t->{dir};
my $sock = "$dir/fake-signd.sock";

# --- the fake hpki-signd -----------------------------------------------------

my $cert = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
my $ca = "-----BEGIN CERTIFICATE-----\nMIICfake\n-----END CERTIFICATE-----\n";
my $other = "-----BEGIN CERTIFICATE-----\nMIIDfake\n-----END CERTIFICATE-----\n";
my $odd = "-----BEGIN CERTIFICATE-----\n\"quoted\" \\ \t\x01/\n-----END CERTIFICATE-----\n";

# frames as hpki-signd's own tests build and read them (SigndTest.pm)
sub frame { SigndTest::frame(@_) }

my %answer = (
    ok     => sub { frame(0x81, SIGNATURE => 'S' x 256, CERT => $cert,
                            KEY_ID => 'kid-1', CHAIN => $ca) },
    other  => sub { frame(0x81, SIGNATURE => 'S' x 256, CERT => $other,
                            CHAIN => $cert, CHAIN => $ca) },
    odd    => sub { frame(0x81, SIGNATURE => 'S' x 256, CERT => $odd,
                            CHAIN => $cert) },
    utf8   => sub { frame(0x81, SIGNATURE => 'S' x 256,
                            CERT => "-----BEGIN \xc3\xa9-----\n") },
    none   => sub { frame(0x81, CERT => $cert, KEY_ID => 'kid-1') },
    type   => sub { frame(0x42, SIGNATURE => 'S' x 256) },
    badlen => sub { pack('N', 1) . pack('C', 1) },
    error  => sub { frame(0xff, CODE => pack('n', 5),
                            MESSAGE => 'no active second certificate') },
);

sub mode { open my $fh, '>', "$dir/fake.mode" or die; print $fh $_[0]; close $fh }

mode('ok');
unlink $sock;
my $listen = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $sock,
                                   Listen => 16) or die "$sock: $!";
my $fake = fork // die;
if ($fake == 0) {
    open my $log, '>>', "$dir/fake.log" or POSIX::_exit(1);
    $log->autoflush(1);
    my $conns = 0;
    while (my $c = $listen->accept) {
        $conns++;
        while (defined(my $len = SigndTest::read_exact($c, 4))) {
            last unless defined SigndTest::read_exact($c, unpack('N', $len));
            open my $fh, '<', "$dir/fake.mode" or last;
            my $mode = <$fh>;
            close $fh;
            print $log "connection $conns: $mode\n";
            my ($how, $what) = $mode =~ /^(split|extra)?-?(\w+)$/;
            my $out = $answer{$what}->();
            if (($how // '') eq 'split') {
                syswrite($c, substr($out, 0, 100));
                sleep 0.2;
                syswrite($c, substr($out, 100));
            } elsif (($how // '') eq 'extra') {
                syswrite($c, $out . 'garbage');
            } else {
                syswrite($c, $out);
            }
        }
        close $c;
    }
    POSIX::_exit(0);
}
close $listen;
END { kill 'KILL', $fake if $fake; }

$t->write_nginx_conf(gateway_conf(
    http => <<"HTTP",
    upstream fake_signd {
        server unix:$sock;
        keepalive 4;
    }
HTTP
    server => <<'CONF'))
        location = /hpki/sign-fake {
            hpki_auth on;
            hpki_sign_pass fake_signd;
        }
CONF
    ->start_nginx;

plan tests => 31;

my $token = $t->login('doctor_auth');

sub sign {
    return $t->http(POST => '/hpki/sign-fake', token => $token,
                    json => { hashes => [ b64('h' x 32) ] });
}

sub connections {
    my %c = map { /^connection (\d+)/ ? ($1 => 1) : () }
            split /\n/, $t->read_file('fake.log');
    return scalar keys %c;
}

# --- good answers ------------------------------------------------------------

my $r = sign();
is $r->{status}, 200, 'a reply: 200';
is $r->{json}{signatures}[0], b64('S' x 256), '... its signature, base64';
is $r->{json}{certificate}, $cert, '... the certificate';
is_deeply $r->{json}{chain}, [ $ca ], '... the chain';
is $r->{json}{key_id}, 'kid-1', '... the key id';
is $r->{headers}{'content-length'}, length($r->{body}),
    '... Content-Length is the JSON body';

$r = sign();
is $r->{status}, 200, 'again: 200';
is connections(), 1, '... over the same kept-alive connection';

mode('split-ok');
$r = sign();
is $r->{status}, 200, 'a reply in two pieces, 0.2 s apart: 200';
is $r->{json}{signatures}[0], b64('S' x 256), '... the same JSON';

# --- the PEMs, encoded once per worker and kept: each reply has its own ----

mode('other');
$r = sign();
is $r->{json}{certificate}, $other, 'another certificate: that one';
is_deeply $r->{json}{chain}, [ $cert, $ca ], '... and its chain of two';
ok !exists $r->{json}{key_id}, '... no key id when none was sent';
mode('ok');
$r = sign();
is $r->{json}{certificate}, $cert, 'the first one again: the first one';
is_deeply $r->{json}{chain}, [ $ca ], '... with its own chain';

mode('odd');
$r = sign();
is $r->{json}{certificate}, $odd,
    'quotes, a backslash and control characters: the same text in JSON';
mode('utf8');
$r = sign();
is $r->{status}, 503, 'a certificate that is not ASCII: 503';
mode('ok');

# --- bytes after the reply ---------------------------------------------------

mode('extra-ok');
$r = sign();
is $r->{status}, 200, 'bytes after the reply: the reply still answers';
is $r->{json}{certificate}, $cert, '... whole';
$t->error_log_like(qr/hpki-signd sent 7 bytes after its reply/,
                   '... the extra bytes are logged');
mode('ok');
my $before = connections();
$r = sign();
is $r->{status}, 200, 'next request: 200';
is connections(), $before + 1, '... on a new connection';

# --- bad answers -------------------------------------------------------------

mode('none');
$r = sign();
is $r->{status}, 503, 'no signature for one hash: 503';
is $r->{json}{error}, 'temporarily_unavailable', '... JSON error';
ok !exists $r->{json}{signatures}, '... no signature';

mode('type');
$r = sign();
is $r->{status}, 503, 'a frame of an unknown type: 503';
is $r->{json}{error}, 'temporarily_unavailable', '... JSON error';

mode('badlen');
$r = sign();
is $r->{status}, 503, 'a frame of a wrong length: 503';
$t->error_log_like(qr/hpki-signd sent a frame of invalid length/,
                   '... logged');

mode('error');
$r = sign();
is $r->{status}, 403, 'an ERROR frame (no_key): 403';
is $r->{json}{error}, 'no_certificate', '... mapped to no_certificate';
