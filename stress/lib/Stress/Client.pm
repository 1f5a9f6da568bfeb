package Stress::Client;

# A small HTTP/1.1 client with one persistent (keep-alive) connection, and
# the checks the load generator makes on every answer: a good token must get
# 200, a bad one must never get 200, and a signature must verify with the
# second certificate's public key (in-process, Crypt::OpenSSL::RSA).

use strict;
use warnings;

use Errno qw(EAGAIN EINTR EINPROGRESS);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

use Crypt::OpenSSL::RSA;

my $JSON = JSON::PP->new->canonical;

sub new {
    my ($class, %o) = @_;
    return bless {
        port    => $o{port},
        timeout => $o{timeout} // 30,
        sock    => undef,
        used    => 0,                         # requests on this connection
        stats   => { connects => 0, retries => 0 },
    }, $class;
}

sub close_conn {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
}

sub connect_conn {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
        Proto => 'tcp', Timeout => 5) or return undef;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;
    $self->{stats}{connects}++;
    $self->{used} = 0;
    return $self->{sock} = $s;
}

# one request; { status, headers, body, error }. A connection that was
# closed before a single byte of the answer (nginx closing an idle
# keep-alive connection, e.g. on reload) is retried once on a new one, as
# HTTP clients do. status 0: no answer (error says why).

sub request {
    my ($self, $method, $path, $headers, $body) = @_;
    $body //= '';
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . join('', map { "$_: $headers->{$_}\r\n" } sort keys %$headers)
        . (length $body || $method eq 'POST'
            ? 'Content-Length: ' . length($body) . "\r\n" : '')
        . "\r\n" . $body;

    for my $try (1, 2) {
        my $reused = $self->{sock} && $self->{used} > 0;
        $self->connect_conn or return { status => 0, error => "connect: $!" }
            unless $self->{sock};
        $self->{used}++;
        my $r = $self->exchange($req);
        if ($r->{status} == 0 && $r->{empty} && $reused && $try == 1) {
            $self->{stats}{retries}++;
            $self->close_conn;
            next;
        }
        return $r;
    }
}

sub exchange {
    my ($self, $req) = @_;
    my $s = $self->{sock};
    my $deadline = time + $self->{timeout};
    my $sel = IO::Select->new($s);

    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($s, $req, length($req) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR;
            my $e = "write: $!";
            $self->close_conn;
            return { status => 0, error => $e, empty => 1 };
        }
        $off += $n;
    }

    my $buf = '';
    my ($status, %h, $hlen);
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $self->close_conn;
            return { status => 0, error => 'timeout', empty => !length $buf };
        }
        next unless $sel->can_read($left > 1 ? 1 : $left);
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            my $e = "read: $!";
            $self->close_conn;
            return { status => 0, error => $e, empty => !length $buf };
        }
        if ($n == 0) {
            $self->close_conn;
            return { status => 0, error => 'closed', empty => !length $buf }
                unless defined $hlen && !exists $h{'content-length'}
                    && !$h{chunked};
            # body delimited by the close
            return { status => $status, headers => \%h,
                     body => substr($buf, $hlen) };
        }

        if (!defined $hlen) {
            my $i = index($buf, "\r\n\r\n");
            next if $i < 0;
            $hlen = $i + 4;
            my @lines = split /\r\n/, substr($buf, 0, $i);
            ($status) = (shift(@lines) // '') =~ m{^HTTP/1\.[01] (\d{3})};
            unless ($status) {
                $self->close_conn;
                return { status => 0, error => 'bad status line' };
            }
            for (@lines) {
                my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
                $h{lc $k} = $v;
            }
            $h{chunked} = 1 if ($h{'transfer-encoding'} // '') =~ /chunked/i;
        }

        if (exists $h{'content-length'}) {
            my $want = $hlen + $h{'content-length'};
            next if length $buf < $want;
            $self->close_conn if ($h{connection} // '') =~ /close/i;
            return { status => $status, headers => \%h,
                     body => substr($buf, $hlen, $h{'content-length'}) };
        }
        if ($h{chunked}) {
            my $body = dechunk(substr($buf, $hlen)) // next;
            $self->close_conn if ($h{connection} // '') =~ /close/i;
            return { status => $status, headers => \%h, body => $body };
        }
        # 1xx/204/304 have no body
        if ($status =~ /^(1|204|304)/) {
            return { status => $status, headers => \%h, body => '' };
        }
    }
}

sub dechunk {
    my ($data) = @_;
    my $out = '';
    while (1) {
        my $i = index($data, "\r\n");
        return undef if $i < 0;
        my $len = hex substr($data, 0, $i);
        return $out if $len == 0 && length($data) >= $i + 4;
        return undef if length($data) < $i + 2 + $len + 2;
        $out .= substr($data, $i + 2, $len);
        substr($data, 0, $i + 2 + $len + 2) = '';
    }
}


# --- what the load asks ----------------------------------------------------------

sub whoami {
    my ($self, $token) = @_;
    return $self->request('GET', '/whoami',
        { Authorization => "Bearer $token" });
}

sub sign {
    my ($self, $token, @digests) = @_;
    my $body = $JSON->encode({ hashes => [ map { encode_base64($_, '') }
                                           @digests ] });
    return $self->request('POST', '/hpki/sign',
        { Authorization => "Bearer $token",
          'Content-Type' => 'application/json' }, $body);
}


# --- signature verification ----------------------------------------------------------

# EMSA-PKCS1-v1_5 (RFC 8017 9.2) of a raw SHA-256 digest
my $DIGEST_INFO = pack 'H*', '3031300d060960864801650304020105000420';

package Stress::Verifier;

use Crypt::OpenSSL::RSA;
use MIME::Base64 qw(decode_base64);

# from the second certificate (PEM file)
sub new {
    my ($class, $cert_file) = @_;
    my $pub = `openssl x509 -in '$cert_file' -pubkey -noout`;
    die "openssl x509 -pubkey $cert_file failed\n" if $? != 0;
    my $rsa = Crypt::OpenSSL::RSA->new_public_key($pub);
    $rsa->use_no_padding;
    open my $fh, '<', $cert_file or die "$cert_file: $!";
    local $/;
    my $pem = <$fh>;
    return bless { rsa => $rsa, k => $rsa->size, pem => norm($pem) }, $class;
}

sub norm { my $p = $_[0] // ''; $p =~ s/\s+//g; $p }

sub same_cert { norm($_[1]) eq $_[0]{pem} }

# true when SIG (raw bytes) is a PKCS#1 v1.5 signature over DIGEST (raw
# SHA-256): s^e mod n must be exactly 00 01 FF..FF 00 DigestInfo digest
sub verify {
    my ($self, $digest, $sig) = @_;
    return 0 unless defined $sig && length $sig == $self->{k}
        && length $digest == 32;
    my $t = $DIGEST_INFO . $digest;
    my $em = "\x00\x01" . ("\xff" x ($self->{k} - 3 - length $t)) . "\x00"
        . $t;
    # with no padding, public_decrypt is the bare s^e mod n
    my $got = eval { $self->{rsa}->public_decrypt($sig) };
    return defined $got && $got eq $em;
}

sub verify_b64 {
    my ($self, $digest, $b64) = @_;
    return 0 unless defined $b64 && !ref $b64
        && $b64 =~ m{^[A-Za-z0-9+/]+={0,2}$};
    return $self->verify($digest, decode_base64($b64));
}

1;
