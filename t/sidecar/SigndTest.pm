package SigndTest;

# Self-contained harness for hpki-signd tests: a private redis-server
# (AOF on, ACL users share-a / share-b), KEKs, a token key pair, an
# hpki-signd.conf, hpki-signd itself, a tiny protocol client, a test
# signing CA and RS256 tokens made with openssl.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(:sys_wait_h);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $BUILD = $ENV{HPKI_BUILD} // "$ROOT/build";

our %TAG = (TOKEN => 1, USER => 2, HASH_ALG => 3, SIG_ALG => 4,
            DIGEST => 5, REQUEST_ID => 6, SIGNATURE => 0x10, CERT => 0x11,
            KEY_ID => 0x12, CHAIN => 0x13, CODE => 0x20, MESSAGE => 0x21);
our %TAGNAME = reverse %TAG;
our %CODE = (bad_frame => 1, bad_request => 2, unauthorized => 3,
             forbidden => 4, no_key => 5, sign_failed => 6,
             unavailable => 7, internal => 8);
our %CODENAME = reverse %CODE;

my @instances;


sub shell_quote {
    my ($s) = @_;
    return $s if $s =~ m{^[A-Za-z0-9_/.:=,@+-]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# exit status, or 128 + signal number if killed by a signal

sub exit_code {
    my ($st) = @_;
    return $st & 127 ? 128 + ($st & 127) : $st >> 8;
}

# runs a command, returns (exit code, stdout+stderr)

sub run_cmd {
    my (@cmd) = @_;
    my $out = qx{@{[ join ' ', map { shell_quote($_) } @cmd ]} 2>&1};
    return (exit_code($?), $out);
}

# runs a command, returns (exit code, stdout, stderr)

sub run_cmd3 {
    my ($errfile, @cmd) = @_;
    my $out = qx{@{[ join ' ', map { shell_quote($_) } @cmd ]} 2>$errfile};
    my $rc = exit_code($?);
    my $err = -e $errfile ? read_file($errfile) : '';
    return ($rc, $out, $err);
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub write_file {
    my ($path, $data, $mode) = @_;
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $data;
    close $fh;
    chmod $mode, $path if defined $mode;
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    binmode $fh;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d // '';
}

sub random_bytes {
    my ($n) = @_;
    open my $fh, '<', '/dev/urandom' or die;
    my $b;
    read $fh, $b, $n;
    close $fh;
    return $b;
}

# new(workers => N, start => 0|1, conf_extra => "...")

sub new {
    my ($class, %o) = @_;
    my $dir = tempdir('hpki-signd-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless { dir => $dir, workers => $o{workers} // 2,
                       pids => {}, owner => $$ }, $class;
    push @instances, $self;

    $self->{redis_port} = free_port();
    $self->{pass_a} = unpack('H*', random_bytes(16));
    $self->{pass_b} = unpack('H*', random_bytes(16));
    write_file("$dir/redis-share-a.pass", "$self->{pass_a}\n", 0600);
    write_file("$dir/redis-share-b.pass", "$self->{pass_b}\n", 0600);
    write_file("$dir/kek-a", random_bytes(32), 0600);
    write_file("$dir/kek-b", random_bytes(32), 0600);

    $self->start_redis;
    $self->make_token_key;
    $self->write_conf($o{conf_extra} // '');
    $self->make_ca;
    $self->start_signd unless defined $o{start} && !$o{start};
    return $self;
}

sub dir { $_[0]{dir} }
sub conf { "$_[0]{dir}/hpki-signd.conf" }
sub socket_path { "$_[0]{dir}/signd.sock" }
sub audit_log { "$_[0]{dir}/audit.log" }

sub start_redis {
    my ($self) = @_;
    my $d = $self->{dir};
    my $p = $self->{redis_port};
    my $root = "$self->{pass_a}$self->{pass_b}";

    write_file("$d/redis.conf", join("\n",
        "port $p", "bind 127.0.0.1", "dir $d", "appendonly yes",
        'save ""', "daemonize no", "logfile $d/redis.log",
        'user default on nopass ~hpki:cert:* ~hpki:user:* ~hpki:tok:* '
            . '~hpki:key:* &__redis__:invalidate +@all',
        "user share-a on >$self->{pass_a} ~hpki:a:* +\@all",
        "user share-b on >$self->{pass_b} ~hpki:b:* +\@all",
        "user test-root on >$root ~* +\@all", ''));

    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        exec 'redis-server', "$d/redis.conf";
        exit 127;
    }
    $self->{pids}{redis} = $pid;

    for (1 .. 100) {
        my ($rc, $out) = $self->redis('PING');
        return if $rc == 0 && $out =~ /PONG/;
        sleep 0.05;
    }
    die "redis-server did not start";
}

# redis-cli as the all-keys test user (never used by the code under test)

sub redis {
    my ($self, @args) = @_;
    return run_cmd('redis-cli', '--no-auth-warning', '-p',
                   $self->{redis_port}, '--user', 'test-root', '--pass',
                   "$self->{pass_a}$self->{pass_b}", @args);
}

sub redis_as {
    my ($self, $user, @args) = @_;
    my @auth = $user eq 'default' ? ()
             : ('--user', $user, '--pass',
                $self->{ $user eq 'share-a' ? 'pass_a' : 'pass_b' });
    return run_cmd('redis-cli', '--no-auth-warning', '-p',
                   $self->{redis_port}, @auth, @args);
}

sub make_token_key {
    my ($self) = @_;
    my $d = $self->{dir};
    for my $name ('token', 'other') {
        my ($rc, $out) = run_cmd('openssl', 'genpkey', '-algorithm', 'RSA',
                                 '-pkeyopt', 'rsa_keygen_bits:2048',
                                 '-out', "$d/$name.key");
        die $out if $rc;
        ($rc, $out) = run_cmd('openssl', 'pkey', '-in', "$d/$name.key",
                              '-pubout', '-out', "$d/$name.pub.pem");
        die $out if $rc;
    }
}

sub write_conf {
    my ($self, $extra) = @_;
    my $d = $self->{dir};
    my $p = $self->{redis_port};
    write_file($self->conf, join("\n",
        "# written by t/sidecar/SigndTest.pm",
        "listen               $d/signd.sock",
        "socket_mode          0660",
        "allow_uid            $<",
        "pid_file             $d/signd.pid",
        "workers              $self->{workers}",
        "redis                127.0.0.1:$p",
        "store_a_redis        127.0.0.1:$p",
        "store_a_user         share-a",
        "store_a_password_file $d/redis-share-a.pass",
        "store_a_kek          $d/kek-a",
        "store_b_redis        127.0.0.1:$p",
        "store_b_user         share-b",
        "store_b_password_file $d/redis-share-b.pass",
        "store_b_kek          $d/kek-b",
        "token_public_key     $d/token.pub.pem",
        "token_issuer         https://127.0.0.1:8443",
        "token_audience       hpki",
        "audit_log            $d/audit.log",
        "log_level            info",
        $extra, ''));
}

sub start_signd {
    my ($self) = @_;
    my $d = $self->{dir};
    unlink $self->socket_path;
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>>', "$d/signd.log";
        open STDERR, '>>', "$d/signd.log";
        exec "$BUILD/hpki-signd", '-c', $self->conf;
        exit 127;
    }
    $self->{pids}{signd} = $pid;

    for (1 .. 200) {
        if (-S $self->socket_path) {
            my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM,
                                          Peer => $self->socket_path);
            return $pid if $s;
        }
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pids}{signd};
            $self->{signd_status} = $?;
            return undef;
        }
        sleep 0.05;
    }
    die "hpki-signd did not start:\n" . $self->signd_log;
}

sub signd_pid { $_[0]{pids}{signd} }

sub signd_log {
    my ($self) = @_;
    my $f = "$self->{dir}/signd.log";
    return -e $f ? read_file($f) : '';
}

# SIGTERM and wait; returns the wait status

sub stop_signd {
    my ($self) = @_;
    my $pid = delete $self->{pids}{signd} or return;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    return $?;
}

# pids of the share workers (children of hpki-signd), keyed by share

sub worker_pids {
    my ($self) = @_;
    my $pid = $self->signd_pid;
    my %w = (a => [], b => []);
    for my $dir (glob '/proc/[0-9]*') {
        my $stat = eval { read_file("$dir/stat") } // next;
        next unless $stat =~ /^(\d+) \(.*\) \S+ (\d+)/ && $2 == $pid;
        my $cmd = eval { read_file("$dir/cmdline") } // next;
        my @argv = split /\0/, $cmd;
        next unless @argv >= 5 && $argv[3] eq '--worker';
        push @{ $w{ $argv[4] } }, $1;
    }
    return \%w;
}

sub admin {
    my ($self, @args) = @_;
    return run_cmd("$BUILD/hpki-admin", '-c', $self->conf, @args);
}

# (rc, stdout, stderr)

sub admin3 {
    my ($self, @args) = @_;
    return run_cmd3("$self->{dir}/admin.err", "$BUILD/hpki-admin", '-c',
                    $self->conf, @args);
}

# --- PKI ---------------------------------------------------------------

sub make_ca {
    my ($self) = @_;
    my $d = $self->{dir};
    write_file("$d/ca.ext", join("\n",
        '[ sign ]',
        'basicConstraints = critical,CA:false',
        'keyUsage = critical,nonRepudiation',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        'certificatePolicies = 1.2.392.100495.1.5.1.1.0.1',
        '[ auth ]',
        'basicConstraints = critical,CA:false',
        'keyUsage = critical,digitalSignature', ''));
    my ($rc, $out) = run_cmd('openssl', 'req', '-x509', '-newkey',
                             'rsa:2048', '-nodes', '-keyout', "$d/ca.key",
                             '-out', "$d/ca.pem", '-days', '30', '-subj',
                             '/C=JP/O=Test/CN=Test HPKI Sign CA',
                             '-addext', 'basicConstraints=critical,CA:true',
                             '-addext', 'keyUsage=critical,keyCertSign');
    die $out if $rc;
}

# issues a certificate for a CSR; $profile: sign (default) or auth

sub issue_cert {
    my ($self, $csr, $out, $profile) = @_;
    my $d = $self->{dir};
    my ($rc, $o) = run_cmd('openssl', 'x509', '-req', '-in', $csr, '-CA',
                           "$d/ca.pem", '-CAkey', "$d/ca.key",
                           '-CAcreateserial', '-days', '30', '-out', $out,
                           '-extfile', "$d/ca.ext", '-extensions',
                           $profile // 'sign');
    die $o if $rc;
    return $out;
}

# a user with a split key (generated or imported) and a signing cert;
# returns the public key PEM path

sub setup_user {
    my ($self, $user, %o) = @_;
    my $d = $self->{dir};
    my @bits = $o{bits} ? ('--bits', $o{bits}) : ();
    my ($rc, $out);

    if ($o{import}) {
        ($rc, $out) = $self->admin('key', 'import', '--user', $user,
                                   '--key', $o{import},
                                   '--csr-out', "$d/$user.csr");
    } else {
        ($rc, $out) = $self->admin('key', 'generate', '--user', $user,
                                   @bits, '--subject',
                                   "/C=JP/O=Test Clinic/CN=$user",
                                   '--csr-out', "$d/$user.csr");
    }
    die "key create: $out" if $rc;

    $self->issue_cert("$d/$user.csr", "$d/$user.crt");
    ($rc, $out) = $self->admin('cert', 'install', '--user', $user, '--cert',
                               "$d/$user.crt", '--chain', "$d/ca.pem");
    die "cert install: $out" if $rc;

    ($rc, $out) = run_cmd('openssl', 'x509', '-in', "$d/$user.crt",
                          '-pubkey', '-noout', '-out', "$d/$user.pub.pem");
    die $out if $rc;
    return "$d/$user.pub.pem";
}

# --- tokens ------------------------------------------------------------

sub b64url {
    my ($s) = @_;
    my $b = encode_base64($s, '');
    $b =~ tr{+/}{-_};
    $b =~ s/=+$//;
    return $b;
}

sub json_encode {
    my ($v) = @_;
    require JSON::PP;
    return JSON::PP->new->canonical->encode($v);
}

# token(sub => 'u', exp => ..., key => 'token'|'other', alg => ...);
# a claim given as undef is left out

sub token {
    my ($self, %c) = @_;
    my $now = time;
    my $key = delete $c{key} // 'token';
    my $alg = delete $c{alg} // 'RS256';
    my %claims = (iss => 'https://127.0.0.1:8443', aud => 'hpki',
                  iat => $now, nbf => $now, exp => $now + 3600,
                  jti => 'jti-' . unpack('H*', random_bytes(6)),
                  scope => 'openid sign', %c);
    delete $claims{$_} for grep { !defined $claims{$_} } keys %claims;

    my $input = b64url(json_encode({ alg => $alg, typ => 'JWT',
                                     kid => 'test' }))
                . '.' . b64url(json_encode(\%claims));
    my $d = $self->{dir};
    write_file("$d/jwt.in", $input);

    my $sig;
    if ($alg eq 'HS256') {
        # alg confusion: HMAC keyed with the daemon's public key PEM
        require Digest::SHA;
        $sig = Digest::SHA::hmac_sha256($input,
                                        read_file("$d/token.pub.pem"));
    } elsif ($alg eq 'none') {
        $sig = '';
    } else {
        my ($rc, $out) = run_cmd('openssl', 'dgst', '-sha256', '-sign',
                                 "$d/$key.key", '-out', "$d/jwt.sig",
                                 "$d/jwt.in");
        die $out if $rc;
        $sig = read_file("$d/jwt.sig");
    }
    return $input . '.' . b64url($sig);
}

# --- protocol client ----------------------------------------------------

sub connect {
    my ($self) = @_;
    return IO::Socket::UNIX->new(Type => SOCK_STREAM,
                                 Peer => $self->socket_path)
        // die "connect: $!";
}

sub frame {
    my ($type, @fields) = @_;
    my $body = pack('CC', 1, $type);
    while (@fields) {
        my ($tag, $val) = splice @fields, 0, 2;
        $tag = $TAG{$tag} // $tag;
        $body .= pack('Cn', $tag, length $val) . $val;
    }
    return pack('N', length $body) . $body;
}

sub read_exact {
    my ($s, $n) = @_;
    my $buf = '';
    while (length $buf < $n) {
        my $r = sysread($s, $buf, $n - length $buf, length $buf);
        return undef unless $r;
    }
    return $buf;
}

# { type => N, fields => { NAME => [values] }, code/error/message } or
# undef on EOF

sub read_reply {
    my ($s) = @_;
    my $hdr = read_exact($s, 4) // return undef;
    my $len = unpack('N', $hdr);
    my $body = read_exact($s, $len) // return undef;
    my ($ver, $type) = unpack('CC', $body);
    my %f;
    my $off = 2;
    while ($off < $len) {
        my ($tag, $l) = unpack('Cn', substr($body, $off, 3));
        my $v = substr($body, $off + 3, $l);
        push @{ $f{ $TAGNAME{$tag} // $tag } }, $v;
        $off += 3 + $l;
    }
    my $r = { type => $type, version => $ver, fields => \%f,
              error => '' };
    if ($type == 0xff) {
        $r->{code} = unpack('n', $f{CODE}[0]);
        $r->{error} = $CODENAME{ $r->{code} } // $r->{code};
        $r->{message} = $f{MESSAGE}[0];
    }
    return $r;
}

sub request {
    my ($self, $s, $frame) = @_;
    $s //= $self->connect;
    my $n = syswrite($s, $frame);
    die "write: $!" unless defined $n && $n == length $frame;
    return read_reply($s);
}

# sign_frame(user => U, token => T, hash => 1, sig => 1, digests => [...])

sub sign_frame {
    my (%o) = @_;
    my @f;
    push @f, TOKEN => $o{token} if defined $o{token};
    push @f, USER => $o{user} if defined $o{user};
    push @f, HASH_ALG => pack('C', $o{hash} // 1);
    push @f, SIG_ALG => pack('C', $o{sig} // 1);
    push @f, DIGEST => $_ for @{ $o{digests} };
    push @f, REQUEST_ID => $o{request_id} // 'req-' . int(rand(1e9));
    return frame(1, @f);
}

sub sign {
    my ($self, %o) = @_;
    return $self->request($o{socket}, sign_frame(%o));
}

# openssl pkeyutl -verify; $md: sha256|sha384|sha512

sub verify {
    my ($self, $pub, $digest, $sig, $md, $pss) = @_;
    my $d = $self->{dir};
    write_file("$d/v.dgst", $digest);
    write_file("$d/v.sig", $sig);
    my @pad = $pss ? ('-pkeyopt', 'rsa_padding_mode:pss', '-pkeyopt',
                      'rsa_pss_saltlen:digest') : ();
    my ($rc, $out) = run_cmd('openssl', 'pkeyutl', '-verify', '-pubin',
                             '-inkey', $pub, '-in', "$d/v.dgst", '-sigfile',
                             "$d/v.sig", '-pkeyopt', "digest:$md", @pad);
    return $rc == 0 && $out =~ /Signature Verified Successfully/;
}

sub cleanup {
    my ($self) = @_;
    return unless ($self->{owner} // 0) == $$;
    for my $name ('signd', 'redis') {
        my $pid = delete $self->{pids}{$name} or next;
        kill 'TERM', $pid;
        my $gone = 0;
        for (1 .. 100) {
            if (waitpid($pid, WNOHANG) != 0) { $gone = 1; last }
            sleep 0.05;
        }
        next if $gone;
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

sub DESTROY { $_[0]->cleanup }

END { $_->cleanup for @instances }

1;
