package Hpki::Test;

# A small test harness in the style of nginx-tests' Test::Nginx: each test
# file starts its own stack (redis-server, hpki-signd, nginx with the module)
# on free loopback ports in a private temporary directory, writes its nginx
# configuration inline, and the stack is stopped however the test ends.
#
#     use FindBin;
#     use lib "$FindBin::Bin/lib";
#     use Test::More;
#     use Hpki::Test;
#
#     my $t = Hpki::Test->new                 # skips unless module + signd built
#         ->start_redis
#         ->start_signd
#         ->enroll(id => 'doctor', auth => 'doctor_auth',
#                  role => 'Medical Doctor')
#         ->write_nginx_conf(<<'EOF')
#     %%TEST_GLOBALS%%
#     events { }
#     http {
#         %%TEST_GLOBALS_HTTP%%
#         hpki_redis %%REDIS_ADDR%%;
#         ...
#         server {
#             listen 127.0.0.1:%%HTTPS_PORT%% ssl;
#             ...
#         }
#     }
#     EOF
#         ->start_nginx;
#
#     plan tests => 2;
#
#     my $r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
#     is $r->{status}, 200, 'card login';
#     like $r->{json}{access_token}, qr/^ey/, 'a token';
#
# See docs/demo.md ("Test harness") for the whole API and the placeholders.
#
# Environment: HPKI_TEST_LEAVE=1 keeps the temporary directory (its path is
# printed); HPKI_TEST_TIMEOUT (seconds, default 15) bounds every wait;
# HPKI_TEST_PKI overrides the PKI cache (default build/t-pki);
# HPKI_NGINX (default nginx), HPKI_REDIS_SERVER (default redis-server).

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(sha256);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Test::More ();
use Time::HiRes qw(sleep time);

use Exporter qw(import);
our @EXPORT_OK = qw(b64 unb64 b64url unb64url sha256_b64 jwt_claims);

our $ROOT  = abs_path(dirname(__FILE__) . '/../../..');
our $BUILD = $ENV{HPKI_BUILD} // "$ROOT/build";

our %BIN = (
    module => "$BUILD/ngx_http_hpki_module.so",
    signd  => "$BUILD/hpki-signd",
    admin  => "$BUILD/hpki-admin",
);

my $TIMEOUT = $ENV{HPKI_TEST_TIMEOUT} || 15;
my $JSON    = JSON::PP->new->canonical->allow_nonref;
my @STACKS;                                   # every live harness, for END


=head1 CONSTRUCTOR

=head2 new(%opts)

    need   => [qw(module signd admin)] what must be built (default: module,
                                       signd); skip_all with a reason if not
    module => 0                        no load_module in %%TEST_GLOBALS%%
                                       (tests of stock nginx)

Makes the private temporary directory. Nothing is started yet.

=cut

sub new {
    my ($class, %opts) = @_;
    my $need = $opts{need} // [qw(module signd)];

    for my $what (@$need) {
        my $file = $BIN{$what} or croak "need: unknown component '$what'";
        next if -e $file;
        my $rel = $file =~ s{^\Q$ROOT/\E}{}r;
        Test::More::plan(skip_all => "$rel is not built yet (make)");
    }

    my $dir = tempdir('hpki-test-XXXXXXXX', TMPDIR => 1,
        CLEANUP => !$ENV{HPKI_TEST_LEAVE});
    chmod 0755, $dir;
    Test::More::diag("test directory: $dir") if $ENV{HPKI_TEST_LEAVE};

    my $self = bless {
        dir   => $dir,
        ports => {},
        procs => {},                          # name => pid
        order => [],                          # start order, for stop
        owner => $$,
        vars  => {},
        load_module => $opts{module} // 1,
    }, $class;

    push @STACKS, $self;
    return $self;
}


=head1 PATHS, PORTS, PKI

=head2 testdir, root

The private temporary directory; the repository root.

=head2 port(NAME)

A free loopback TCP port, picked once per NAME: C<https>, C<http>,
C<redis>, or any other name a test likes.

=cut

sub testdir { $_[0]{dir} }
sub root    { $ROOT }

sub port {
    my ($self, $name) = @_;
    return $self->{ports}{$name} //= $self->_free_port;
}

sub _free_port {
    my ($self) = @_;
    my %taken = map { $_ => 1 } grep { defined } values %{$self->{ports}};
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
            LocalPort => 0, Proto => 'tcp', ReuseAddr => 0)
            or croak "cannot find a free port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $taken{$port};
    }
    croak "cannot find a free port";
}

=head2 pki([NAME])

Without NAME: the PKI directory, a private copy of the one that
scripts/pki.sh generates once per version of pki.sh under build/t-pki/.
With NAME: the absolute path of that manifest entry, e.g.
C<pki('doctor_auth_cert')>. See docs/demo.md for the manifest.

=cut

sub pki {
    my ($self, $name) = @_;

    unless ($self->{pki}) {
        # one cache per version of pki.sh, so that a changed script
        # never meets a stale PKI
        my $v = substr(Digest::SHA::sha1_hex(_slurp("$ROOT/scripts/pki.sh")),
            0, 12);
        my $cache = $ENV{HPKI_TEST_PKI} // "$BUILD/t-pki/$v";
        _run_or_die("$ROOT/scripts/pki.sh", $cache, '--jpki');
        my $dir = "$self->{dir}/pki";
        _run_or_die('cp', '-a', $cache, $dir);
        $self->{pki} = $dir;
        $self->{manifest} = _read_manifest("$dir/manifest");
    }

    return $self->{pki} unless defined $name;
    my $file = $self->{manifest}{$name}
        // croak "pki: no '$name' in the manifest";
    return "$self->{pki}/$file";
}

sub _read_manifest {
    my ($file) = @_;
    my %m;
    open my $fh, '<', $file or croak "$file: $!";
    while (<$fh>) {
        next if /^\s*(#|$)/;
        chomp;
        my ($k, $v) = split /=/, $_, 2;
        $m{$k} = $v;
    }
    return \%m;
}

=head2 issue_signing_cert(CSR, OUT, ROLE) / issue_auth_cert(CSR, OUT, ROLE)

Issue an HPKI signing (second) or authentication certificate from a CSR with
the demo CAs (scripts/pki.sh sign-csr / auth-csr). ROLE "-" for no hcRole.

=cut

sub issue_signing_cert {
    my ($self, $csr, $out, $role) = @_;
    _run_or_die("$ROOT/scripts/pki.sh", $self->pki, 'sign-csr', $csr, $out,
        $role);
    return $out;
}

sub issue_auth_cert {
    my ($self, $csr, $out, $role) = @_;
    _run_or_die("$ROOT/scripts/pki.sh", $self->pki, 'auth-csr', $csr, $out,
        $role);
    return $out;
}

=head2 token_key, token_public_key, token_kid

The gateway's token signing key (RSA-2048 PEM, made on first use, mode
0600), its public half (for hpki-signd's token_public_key) and its kid.

=cut

sub token_key {
    my ($self) = @_;
    my $key = "$self->{dir}/token.key";
    unless (-e $key) {
        _genrsa($key);
        _run_or_die('openssl', 'pkey', '-in', $key, '-pubout', '-out',
            "$self->{dir}/token.pub.pem");
    }
    return $key;
}

sub token_public_key {
    my ($self) = @_;
    $self->token_key;
    return "$self->{dir}/token.pub.pem";
}

sub token_kid      { 'test-1' }
sub token_issuer   { 'https://127.0.0.1:' . $_[0]->port('https') }
sub token_audience { 'hpki' }

=head2 kek(a|b)

A 32-byte key-encryption key file for share store A or B (mode 0600).

=cut

sub kek {
    my ($self, $which) = @_;
    my $file = "$self->{dir}/kek-$which";
    unless (-e $file) {
        open my $rnd, '<:raw', '/dev/urandom' or croak "urandom: $!";
        read($rnd, my $bytes, 32) == 32 or croak "urandom: short read";
        _write_secret($file, $bytes);
    }
    return $file;
}


=head1 REDIS

=head2 start_redis(%opts)

Starts redis-server on C<port('redis')>, data in the test directory,
appendonly yes. ACL: the default user is the gateway, with full access;
C<share-a> may touch only C<hpki:a:*>, C<share-b> only C<hpki:b:*>; their
random passwords are in files (mode 0600), see C<redis_password_file>.
C<conf =E<gt> "extra lines"> appends to redis.conf. Waits for PING.

=head2 redis(@command) / redis_as(USER, @command)

A tiny RESP client: runs one command and returns the reply (string, number,
array ref, undef for nil; an error reply comes back as C<"ERR ..."> with
C<$t-E<gt>{redis_error}> set).

=cut

sub start_redis {
    my ($self, %opts) = @_;
    my $dir = "$self->{dir}/redis";
    make_path($dir);

    my %pass = map { $_ => _random_hex(24) } qw(share-a share-b);
    for my $u (keys %pass) {
        _write_secret("$self->{dir}/redis-$u.pass", $pass{$u});
    }

    _write_file("$dir/users.acl", <<"EOF");
user default on nopass resetkeys ~hpki:tok:* ~hpki:cert:* ~hpki:jpki:* ~hpki:user:* ~hpki:key:* ~hpki:sad:* ~hpki:rate:* ~hpki:fail:* ~hpki:code:* ~hpki:rt:* ~hpki:sid:* ~hpki:jti:* ~hpki:enroll:* ~hpki:fido:* ~hpki:fidouser:* ~hpki:chal:* ~hpki:authz:* &* +\@all
user share-a on >$pass{'share-a'} resetkeys ~hpki:a:* resetchannels -\@all +\@read +\@write +\@keyspace +\@transaction +\@connection -\@dangerous
user share-b on >$pass{'share-b'} resetkeys ~hpki:b:* resetchannels -\@all +\@read +\@write +\@keyspace +\@transaction +\@connection -\@dangerous
EOF

    my $port = $self->port('redis');
    _write_file("$dir/redis.conf", <<"EOF" . ($opts{conf} // ''));
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
dir $dir
logfile ""
save ""
appendonly yes
appendfsync everysec
aclfile $dir/users.acl
EOF

    $self->_spawn('redis', "$dir/redis.log",
        $ENV{HPKI_REDIS_SERVER} // 'redis-server', "$dir/redis.conf");
    $self->_wait_for('redis', "$dir/redis.log", sub {
        my $r = eval { $self->redis('PING') };
        defined $r && $r eq 'PONG';
    });
    return $self;
}

sub redis_addr          { '127.0.0.1:' . $_[0]->port('redis') }
sub redis_url           { 'redis://' . $_[0]->redis_addr }
sub redis_password_file { "$_[0]{dir}/redis-$_[1].pass" }

sub redis {
    my ($self, @cmd) = @_;
    return $self->redis_as(undef, @cmd);
}

sub redis_as {
    my ($self, $user, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $self->redis_addr,
        Proto => 'tcp', Timeout => 5) or die "redis: connect: $!\n";
    if (defined $user) {
        my $pass = _slurp($self->redis_password_file($user));
        print $s _resp('AUTH', $user, $pass);
        my $ok = _resp_read($s);
        die "redis: AUTH $user: $ok\n" unless $ok eq 'OK';
    }
    print $s _resp(@cmd);
    my $reply = _resp_read($s, \$self->{redis_error});
    close $s;
    return $reply;
}

sub _resp {
    my @a = @_;
    return "*" . @a . "\r\n" . join '', map { '$' . length($_) . "\r\n$_\r\n" } @a;
}

sub _resp_read {
    my ($s, $err) = @_;
    my $line = <$s> // die "redis: connection closed\n";
    $line =~ s/\r\n$//;
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
    if ($type eq '+') { return $rest }
    if ($type eq '-') { $$err = $rest if $err; return $rest }
    if ($type eq ':') { return 0 + $rest }
    if ($type eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length $buf < $rest + 2) {
            read($s, $buf, $rest + 2 - length $buf, length $buf) or last;
        }
        return substr($buf, 0, $rest);
    }
    if ($type eq '*') {
        return undef if $rest < 0;
        return [map { _resp_read($s, $err) } 1 .. $rest];
    }
    die "redis: bad reply '$line'\n";
}


=head1 HPKI-SIGND

=head2 start_signd(%opts)

Writes hpki-signd.conf (see C<signd_conf>) and starts build/hpki-signd in
the foreground with C<-c>; waits until it answers PING with PONG on its
socket. Starts Redis first if the test has not. C<conf =E<gt> "lines">
appends directives (e.g. C<"log_level debug\n">).

=head2 signd_conf, signd_socket, signd_ping

The config file path, the unix socket path, and one PING/PONG round trip
(true when the daemon answered PONG).

=cut

sub signd_conf   { "$_[0]{dir}/hpki-signd.conf" }
sub signd_socket { "$_[0]{dir}/signd.sock" }

sub write_signd_conf {
    my ($self, %opts) = @_;
    my $d = $self->{dir};
    my $uids = $< == 0 ? '0' : "0 $<";
    my $redis = $self->redis_addr;

    _write_file($self->signd_conf, <<"EOF" . ($opts{conf} // ''));
# written by Hpki::Test
listen               ${\ $self->signd_socket }
socket_mode          0660
allow_uid            $uids
pid_file             $d/signd.pid
workers              1
redis                $redis
store_a_redis        $redis
store_a_user         share-a
store_a_password_file ${\ $self->redis_password_file('share-a') }
store_a_kek          ${\ $self->kek('a') }
store_b_redis        $redis
store_b_user         share-b
store_b_password_file ${\ $self->redis_password_file('share-b') }
store_b_kek          ${\ $self->kek('b') }
token_public_key     ${\ $self->token_public_key }
token_issuer         ${\ $self->token_issuer }
token_audience       ${\ $self->token_audience }
audit_log            $d/audit.log
log_level            debug
EOF
    return $self;
}

sub start_signd {
    my ($self, %opts) = @_;
    $self->start_redis unless $self->{procs}{redis};
    $self->write_signd_conf(%opts);
    unlink $self->signd_socket;
    $self->_spawn('signd', "$self->{dir}/signd.log", $BIN{signd}, '-c',
        $self->signd_conf);
    $self->_wait_for('signd', "$self->{dir}/signd.log",
        sub { $self->signd_ping });
    return $self;
}

sub signd_ping {
    my ($self) = @_;
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM,
        Peer => $self->signd_socket) or return 0;
    # frame: length 2, version 1, type PING
    print $s pack('N C C', 2, 1, 0x02);
    my $got = '';
    my $deadline = time + 2;
    while (length $got < 6 && time < $deadline) {
        my $n = sysread($s, $got, 6 - length $got, length $got);
        last unless $n;
    }
    close $s;
    return $got eq pack('N C C', 2, 1, 0x82);
}


=head1 HPKI-ADMIN

=head2 admin(@args)

Runs C<build/hpki-admin -c hpki-signd.conf @args> and returns
C<{ rc =E<gt> EXIT, out =E<gt> STDOUT, err =E<gt> STDERR }>.

=head2 admin_ok(@args)

Same, but dies with stderr unless the exit code is 0; returns stdout.

=head2 enroll(id =E<gt> ID, auth =E<gt> NAME, role =E<gt> ROLE)

Gives a user everything the spine needs: C<user add> with the HPKI
authentication certificate (a manifest name such as C<doctor_auth>, or a
file), a split second key (C<key generate --csr-out>), a signing certificate
issued from that CSR by the demo signing CA, installed with C<cert install>.
C<key =E<gt> 0> stops after C<user add>. Returns $t; the certificate is at
C<$t-E<gt>{enrolled}{ID}{cert}>.

=cut

sub admin {
    my ($self, @args) = @_;
    croak 'admin: build/hpki-admin is not built' unless -x $BIN{admin};
    $self->write_signd_conf unless -e $self->signd_conf;
    return _capture($BIN{admin}, '-c', $self->signd_conf, @args);
}

sub admin_ok {
    my ($self, @args) = @_;
    my $r = $self->admin(@args);
    die "hpki-admin @args: exit $r->{rc}\n$r->{err}" if $r->{rc} != 0;
    return $r->{out};
}

sub enroll {
    my ($self, %o) = @_;
    my $id = $o{id} // croak 'enroll: id';
    my $auth = $self->_cert_file($o{auth} // croak 'enroll: auth');
    my $role = $o{role} // 'Medical Doctor';

    $self->admin_ok('user', 'add', '--id', $id, '--cert', $auth,
        defined $o{name} ? ('--name', $o{name}) : ());
    $self->{enrolled}{$id} = { auth => $auth };
    return $self if defined $o{key} && !$o{key};

    my $subject = _capture('openssl', 'x509', '-in', $auth, '-noout',
        '-subject', '-nameopt', 'compat')->{out};
    $subject =~ s/^subject=\s*//;
    chomp $subject;

    my $csr = "$self->{dir}/$id-second.csr";
    my $cert = "$self->{dir}/$id-second.pem";
    $self->admin_ok('key', 'generate', '--user', $id, '--subject', $subject,
        '--csr-out', $csr);
    $self->issue_signing_cert($csr, $cert, $role);
    $self->admin_ok('cert', 'install', '--user', $id, '--cert', $cert,
        '--chain', $self->pki('sign_chain'));
    $self->{enrolled}{$id}{cert} = $cert;
    return $self;
}

sub _cert_file {
    my ($self, $what) = @_;
    return $what if $what =~ m{/};
    return $self->pki($what) if $what =~ /_cert$/;
    return $self->pki("${what}_cert");
}


=head1 NGINX

=head2 write_nginx_conf(TEMPLATE, %vars) / write_nginx_conf_file(FILE, %vars)

Writes nginx.conf from an inline template (or a template file such as
conf/demo/nginx.conf.in), replacing C<%%NAME%%> placeholders; %vars adds or
overrides placeholders. An unknown placeholder is an error. See
C<placeholders> and docs/demo.md for the list.

=head2 start_nginx

Starts C<nginx -p DIR -c DIR/nginx.conf -e DIR/error.log> in the
foreground (C<daemon off> is in %%TEST_GLOBALS%%) and waits until the https
port (and the http port, if the config uses it) accepts connections.

=cut

sub placeholders {
    my ($self) = @_;
    my $d = $self->{dir};
    my %p = (
        TESTDIR          => $d,
        ROOT             => $ROOT,
        CONF             => "$ROOT/conf",
        MODULE           => $BIN{module},
        HTTPS_PORT       => $self->port('https'),
        HTTP_PORT        => $self->port('http'),
        REDIS_PORT       => $self->port('redis'),
        REDIS_ADDR       => $self->redis_addr,
        SIGND_SOCKET     => $self->signd_socket,
        PKI              => $self->pki,
        SERVER_CERT      => $self->pki('server_cert'),
        SERVER_KEY       => $self->pki('server_key'),
        CLIENT_CA        => $self->pki('client_ca_bundle'),
        CLIENT_CRL       => $self->pki('client_crl_bundle'),
        TOKEN_KEY        => $self->token_key,
        TOKEN_PUBLIC_KEY => $self->token_public_key,
        TOKEN_KID        => $self->token_kid,
        TOKEN_ISSUER     => $self->token_issuer,
        TOKEN_AUDIENCE   => $self->token_audience,
        TEST_GLOBALS     => $self->_test_globals,
        TEST_GLOBALS_HTTP => $self->_test_globals_http,
        OIDC_CLIENTS     => $self->_oidc_clients,
    );
    # every manifest entry too: %%PKI_DOCTOR_AUTH_CERT%% and so on
    for my $k (keys %{$self->{manifest}}) {
        $p{'PKI_' . uc $k} = "$self->{pki}/$self->{manifest}{$k}";
    }
    return { %p, %{$self->{vars}} };
}

# an OpenID Connect clients file for %%OIDC_CLIENTS%% (the demo's one
# client), written once; tests of the provider write their own

sub _oidc_clients {
    my ($self) = @_;
    my $file = "$self->{dir}/oidc-clients.json";
    _write_file($file, <<"EOF") unless -e $file;
{"clients": [{"client_id": "demo-ehr",
  "client_secret": "${\ _random_hex(24)}",
  "redirect_uris": ["http://127.0.0.1:9/callback"],
  "login": "hpki_card"}]}
EOF
    return $file;
}

sub _test_globals {
    my ($self) = @_;
    my $d = $self->{dir};
    my $g = "daemon off;\nmaster_process on;\nworker_processes 1;\n"
        . "pid $d/nginx.pid;\nerror_log $d/error.log debug;\n";
    $g .= "user root;\n" if $< == 0;
    $g .= "load_module $BIN{module};\n"
        if $self->{load_module} && -e $BIN{module};
    return $g;
}

sub _test_globals_http {
    my ($self) = @_;
    my $d = $self->{dir};
    return join '', map { "$_\n" }
        "access_log $d/access.log;",
        "client_body_temp_path $d/client_body_temp;",
        "proxy_temp_path $d/proxy_temp;",
        "fastcgi_temp_path $d/fastcgi_temp;",
        "uwsgi_temp_path $d/uwsgi_temp;",
        "scgi_temp_path $d/scgi_temp;";
}

sub expand {
    my ($self, $text, %vars) = @_;
    my $p = { %{$self->placeholders}, %vars };
    $text =~ s{%%([A-Z0-9_]+)%%}{
        defined $p->{$1} ? $p->{$1} : croak "unknown placeholder %%$1%%"
    }ge;
    return $text;
}

sub write_nginx_conf {
    my ($self, $template, %vars) = @_;
    my $conf = $self->expand($template, %vars);
    _write_file("$self->{dir}/nginx.conf", $conf);
    $self->{nginx_uses_http} = $template =~ /%%HTTP_PORT%%/;
    return $self;
}

sub write_nginx_conf_file {
    my ($self, $file, %vars) = @_;
    return $self->write_nginx_conf(_slurp($file), %vars);
}

sub nginx_conf { "$_[0]{dir}/nginx.conf" }

sub start_nginx {
    my ($self) = @_;
    my $d = $self->{dir};
    croak 'start_nginx: write_nginx_conf first' unless -e $self->nginx_conf;
    my @ports = ($self->port('https'));
    push @ports, $self->port('http') if $self->{nginx_uses_http};

    $self->_spawn('nginx', "$d/nginx.stderr",
        $ENV{HPKI_NGINX} // 'nginx', '-p', "$d/", '-c', $self->nginx_conf,
        '-e', "$d/error.log");
    $self->_wait_for('nginx', "$d/error.log", sub {
        for my $p (@ports) {
            IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Proto => 'tcp')
                or return 0;
        }
        1;
    });
    return $self;
}

=head2 nginx_test_conf

Runs C<nginx -t> on the written configuration; returns
C<{ rc, out, err }> (for tests of configuration errors).

=cut

sub nginx_test_conf {
    my ($self) = @_;
    my $d = $self->{dir};
    return _capture($ENV{HPKI_NGINX} // 'nginx', '-t', '-p', "$d/", '-c',
        $self->nginx_conf, '-e', "$d/error.log");
}


=head1 REQUESTS

=head2 http(METHOD, PATH, %opts)

One request with curl to C<https://127.0.0.1:port('https')PATH> (trusting
the demo server CA). Options:

    cert    => 'doctor_auth'        client certificate: a manifest prefix
                                    (doctor_auth -> doctor_auth_cert/_key)
                                    or a PEM file (then give key => FILE)
    key     => FILE
    token   => TOKEN                adds Authorization: Bearer TOKEN
    headers => { Name => 'value' }  or [ 'Name: value', ... ]
    body    => STRING | REF         a REF is sent as JSON
    json    => REF                  the same, always JSON
    scheme  => 'http'               plain HTTP on port('http')
    port    => PORT, url => URL     override the target

Returns C<{ status, headers =E<gt> {lowercase name =E<gt> value}, body,
json }>; C<json> is the decoded body when it parses as JSON.

=cut

sub http {
    my ($self, $method, $path, %o) = @_;
    my $d = $self->{dir};
    my $n = ++$self->{requests};
    my ($hdr, $out, $in) = map { "$d/http-$n.$_" } qw(headers body request);

    my $scheme = $o{scheme} // 'https';
    my $port = $o{port} // $self->port($scheme);
    my $url = $o{url} // "$scheme://127.0.0.1:$port$path";

    my @cmd = ('curl', '-sS', '--max-time', $TIMEOUT, '-X', $method,
        '-D', $hdr, '-o', $out, '-w', '%{http_code}');
    push @cmd, '--cacert', $self->pki('server_ca_cert') if $url =~ /^https/;

    if (defined $o{cert}) {
        my ($cert, $key) = ($o{cert}, $o{key});
        if ($cert !~ m{/}) {
            ($cert, $key) = ($self->pki("$o{cert}_cert"),
                $self->pki("$o{cert}_key"));
        }
        push @cmd, '--cert', $cert, ($key ? ('--key', $key) : ());
    }

    my @h = ref $o{headers} eq 'HASH'
        ? map { "$_: $o{headers}{$_}" } sort keys %{$o{headers}}
        : @{$o{headers} // []};
    push @h, "Authorization: Bearer $o{token}" if defined $o{token};

    my $body = $o{json} // $o{body};
    if (defined $body) {
        if (ref $body) {
            $body = $JSON->encode($body);
            push @h, 'Content-Type: application/json'
                unless grep { /^content-type:/i } @h;
        }
        _write_file($in, $body);
        push @cmd, '--data-binary', "\@$in";
    }
    push @cmd, map { ('-H', $_) } @h;
    push @cmd, $url;

    my $r = _capture(@cmd);
    my $res = { status => 0 + ($r->{out} || 0), headers => {}, body => '',
        curl_error => $r->{err} };
    $res->{body} = _slurp($out) if -e $out;

    if (-e $hdr) {
        # the last header block (after any 100 Continue)
        my @blocks = split /\r?\n\r?\n/, _slurp($hdr);
        my @lines = split /\r?\n/, $blocks[-1] // '';
        shift @lines;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
            $res->{headers}{lc $k} = $v;
        }
    }
    $res->{json} = eval { $JSON->decode($res->{body}) }
        if length $res->{body};
    unlink grep { -e } $hdr, $out, $in;
    return $res;
}

=head2 login(CERT) -> TOKEN

C<POST /hpki/login/card> with that client certificate; dies unless 200.

=cut

sub login {
    my ($self, $cert) = @_;
    my $r = $self->http(POST => '/hpki/login/card', cert => $cert);
    die "login with $cert: $r->{status} $r->{body}$r->{curl_error}\n"
        unless $r->{status} == 200 && $r->{json};
    return $r->{json}{access_token};
}

=head2 verify_signature(cert =E<gt> PEM|FILE, digest =E<gt> RAW, signature =E<gt> BASE64)

True when C<openssl pkeyutl -verify> (PKCS#1 v1.5, SHA-256) accepts the
signature over the digest with the certificate's public key.

=cut

sub verify_signature {
    my ($self, %o) = @_;
    my $d = $self->{dir};
    my $n = ++$self->{verifies};
    my $cert = $o{cert};
    if ($cert =~ /-----BEGIN/) {
        _write_file("$d/verify-$n.pem", $cert);
        $cert = "$d/verify-$n.pem";
    }
    _run_or_die('openssl', 'x509', '-in', $cert, '-pubkey', '-noout',
        '-out', "$d/verify-$n.pub");
    _write_file("$d/verify-$n.dgst", $o{digest});
    _write_file("$d/verify-$n.sig", decode_base64($o{signature}));
    my $r = _capture('openssl', 'pkeyutl', '-verify', '-pubin', '-inkey',
        "$d/verify-$n.pub", '-pkeyopt', 'digest:' . ($o{hash} // 'sha256'),
        '-in', "$d/verify-$n.dgst", '-sigfile', "$d/verify-$n.sig");
    return $r->{rc} == 0 && $r->{out} =~ /Verified Successfully/;
}


=head1 LOGS

=head2 error_log, signd_log, audit_log, read_file(NAME)

The contents of a file in the test directory.

=head2 error_log_like(QR, NAME) / error_log_unlike(QR, NAME)

Test::More like/unlike on nginx's error.log. signd_log_like is the same for
hpki-signd's stderr.

=cut

sub read_file {
    my ($self, $name) = @_;
    my $f = "$self->{dir}/$name";
    return -e $f ? _slurp($f) : '';
}

sub error_log { $_[0]->read_file('error.log') }
sub signd_log { $_[0]->read_file('signd.log') }
sub audit_log { $_[0]->read_file('audit.log') }

sub error_log_like {
    my ($self, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::like($self->error_log, $re, $name);
}

sub error_log_unlike {
    my ($self, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::unlike($self->error_log, $re, $name);
}

sub signd_log_like {
    my ($self, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Test::More::like($self->signd_log, $re, $name);
}


=head1 PROCESSES

=head2 stop([NAME])

Stops one component (C<nginx>, C<signd>, C<redis>), or all of them in the
reverse order of starting: SIGTERM, a bounded wait, then SIGKILL. Runs by
itself when the test ends (END block, also after die or a signal).

=head2 pid(NAME), running(NAME)

=cut

sub pid { $_[0]{procs}{$_[1]} }

sub running {
    my ($self, $name) = @_;
    my $pid = $self->{procs}{$name} or return 0;
    return waitpid($pid, WNOHANG) == 0;
}

sub stop {
    my ($self, $name) = @_;
    return $self if $$ != $self->{owner};
    my @names = defined $name ? ($name) : reverse @{$self->{order}};
    for my $n (@names) {
        my $pid = delete $self->{procs}{$n} or next;
        @{$self->{order}} = grep { $_ ne $n } @{$self->{order}};
        _terminate($pid);
    }
    return $self;
}

sub _terminate {
    my ($pid) = @_;
    return if waitpid($pid, WNOHANG) != 0;
    kill 'TERM', $pid;
    my $deadline = time + $TIMEOUT;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) != 0;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub _spawn {
    my ($self, $name, $log, @cmd) = @_;
    croak "$name is already running" if $self->{procs}{$name};
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{procs}{$name} = $pid;
    push @{$self->{order}}, $name;
    $self->{logs}{$name} = $log;
    return $pid;
}

sub _wait_for {
    my ($self, $name, $log, $ready) = @_;
    my $pid = $self->{procs}{$name};
    my $deadline = time + $TIMEOUT;
    while (time < $deadline) {
        return 1 if $ready->();
        if (waitpid($pid, WNOHANG) != 0) {
            my $rc = $? >> 8;
            delete $self->{procs}{$name};
            die "$name exited with status $rc while starting:\n"
                . _tail($log) . _tail($self->{logs}{$name});
        }
        sleep 0.05;
    }
    die "$name did not become ready within ${TIMEOUT}s:\n" . _tail($log)
        . ($log ne $self->{logs}{$name} ? _tail($self->{logs}{$name}) : '');
}

sub _tail {
    my ($file) = @_;
    return '' unless defined $file && -e $file;
    my @l = split /\n/, _slurp($file);
    splice @l, 0, @l - 20 if @l > 20;
    return join '', map { "  | $_\n" } "--- $file", @l;
}

END {
    my $rc = $?;
    $_->stop for grep { defined } @STACKS;
    $? = $rc;
}

# let END run on ^C and on SIGTERM from prove
$SIG{INT} = $SIG{TERM} = sub { exit 1 };

sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    $self->stop;
}


=head1 FUNCTIONS (exported on request)

b64, unb64, b64url, unb64url, sha256_b64(DATA) (base64 of the SHA-256 of
DATA), jwt_claims(TOKEN) (the payload, decoded, B<not> verified).

=cut

sub b64      { encode_base64($_[0], '') }
sub unb64    { decode_base64($_[0]) }
sub b64url   { my $s = encode_base64($_[0], ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }
sub unb64url { my $s = $_[0]; $s =~ tr{-_}{+/}; $s .= '=' x (-length($s) % 4); decode_base64($s) }
sub sha256_b64 { b64(sha256($_[0])) }

sub jwt_claims {
    my ($jwt) = @_;
    my (undef, $payload) = split /\./, $jwt // '';
    return undef unless defined $payload;
    return eval { $JSON->decode(unb64url($payload)) };
}


# --- small utilities --------------------------------------------------------

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or croak "$file: $!";
    local $/;
    return scalar <$fh>;
}

sub _write_file {
    my ($file, $data) = @_;
    open my $fh, '>:raw', $file or croak "$file: $!";
    print $fh $data;
    close $fh or croak "$file: $!";
}

sub _write_secret {
    my ($file, $data) = @_;
    my $old = umask 077;
    _write_file($file, $data);
    umask $old;
    chmod 0600, $file;
}

sub _random_hex {
    my ($n) = @_;
    open my $rnd, '<:raw', '/dev/urandom' or croak "urandom: $!";
    read($rnd, my $bytes, $n);
    return unpack "H*", $bytes;
}

sub _genrsa {
    my ($file) = @_;
    my $old = umask 077;
    _run_or_die('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
        'rsa_keygen_bits:2048', '-out', $file);
    umask $old;
    chmod 0600, $file;
}

# _capture(@cmd): run without a shell; { rc, out, err }
sub _capture {
    my (@cmd) = @_;
    my $errf = File::Temp->new;
    my $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>', $errf->filename or POSIX::_exit(127);
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8;
    return { rc => $rc, out => $out, err => _slurp($errf->filename) };
}

sub _run_or_die {
    my (@cmd) = @_;
    my $r = _capture(@cmd);
    die "@cmd: exit $r->{rc}\n$r->{err}" if $r->{rc} != 0;
    return $r->{out};
}

1;
