package Stress::Stack;

# The stack that `make stress` and `make soak` run: redis-server,
# hpki-signd (2 workers per share pool) and nginx with the module
# (worker_processes 2, hpki_token_cache on), started with the test harness
# (t/lib/Hpki/Test.pm) in a private temporary directory. Besides the usual
# TLS server (card login) nginx gets a plain-HTTP loopback listener with the
# token check (/whoami) and signing (/hpki/sign), so that the load
# generator can keep persistent connections without TLS.
#
# Also here: the good and bad tokens the load uses, the fake Redis
# (t/lib/Hpki/FakeRedis.pm) and the process figures (RSS, fds) of /proc.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our $ROOT;
BEGIN { $ROOT = abs_path(dirname(__FILE__) . '/../../..') }
use lib "$ROOT/t/lib", "$ROOT/t/module";

use Hpki::Test qw(jwt_claims b64url);
use Hpki::FakeRedis;
use HpkiModule qw(make_jwt x5t);

# the harness prints its plan/diag through Test::More; we do not run tests
# through it, so keep its END-time chatter away
Test::More->builder->no_ending(1);

my $CONF = <<'CONF';
daemon off;
master_process on;
worker_processes 2;
pid %%TESTDIR%%/nginx.pid;
error_log %%TESTDIR%%/error.log %%LOG_LEVEL%%;
%%USER%%
load_module %%MODULE%%;
worker_rlimit_nofile 4096;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path %%TESTDIR%%/client_body_temp;
    proxy_temp_path %%TESTDIR%%/proxy_temp;
    fastcgi_temp_path %%TESTDIR%%/fastcgi_temp;
    uwsgi_temp_path %%TESTDIR%%/uwsgi_temp;
    scgi_temp_path %%TESTDIR%%/scgi_temp;

    large_client_header_buffers 4 16k;
    keepalive_requests 1000000;
    keepalive_timeout 300s;

    hpki_redis           %%STRESS_REDIS%%;
    hpki_redis_timeout   1s;
    hpki_token_key       %%TOKEN_KEY%% kid=%%TOKEN_KID%%;
    hpki_token_issuer    %%TOKEN_ISSUER%%;
    hpki_token_audience  %%TOKEN_AUDIENCE%%;
    hpki_token_cache     1m valid=1s;

    upstream hpki_signd {
        server unix:%%SIGND_SOCKET%%;
        keepalive 8;
    }

    # card login (TLS client authentication), as conf/ sets it up
    server {
        listen 127.0.0.1:%%HTTPS_PORT%% ssl;
        server_name localhost;

        ssl_certificate        %%SERVER_CERT%%;
        ssl_certificate_key    %%SERVER_KEY%%;
        ssl_client_certificate %%CLIENT_CA%%;
        ssl_crl                %%CLIENT_CRL%%;
        ssl_verify_client      optional_no_ca;
        ssl_verify_depth       3;

        error_page 495 = @hpki_cert_error;
        location @hpki_cert_error { hpki_cert_error; }

        location = /hpki/login/card { hpki_login_card; }
    }

    # the load: plain HTTP on loopback, persistent connections
    server {
        listen 127.0.0.1:%%HTTP_PORT%%;
        server_name localhost;

        location = /whoami {
            hpki_auth on;
            hpki_whoami;
        }

        location = /hpki/sign {
            hpki_auth on;
            hpki_sign_pass hpki_signd;
        }
    }
}
CONF


sub new {
    my ($class, %o) = @_;
    my $self = bless {
        log_level => $o{log_level} // 'warn',
        workers   => $o{signd_workers} // 2,
        out       => $o{out},                 # where logs are copied at the end
    }, $class;

    my $t = Hpki::Test->new(need => [qw(module signd admin)]);
    $self->{t} = $t;
    $t->start_redis;
    $t->start_signd(conf => "workers $self->{workers}\nlog_level warn\n");
    $t->enroll(id => 'demo-doctor', auth => 'doctor_auth',
               role => 'Medical Doctor');
    $t->enroll(id => 'demo-pharmacist', auth => 'pharmacist_auth', key => 0);
    # a private copy of the module: a rebuild that rewrites
    # build/ngx_http_hpki_module.so in place (cp) while nginx has it mapped
    # would crash the workers of a long run
    $self->{module} = $t->testdir . '/ngx_http_hpki_module.so';
    copy($Hpki::Test::BIN{module}, $self->{module}) or die "copy module: $!";
    $self->write_conf($t->redis_addr);
    $t->start_nginx;

    $self->make_tokens;
    return $self;
}

sub t        { $_[0]{t} }
sub dir      { $_[0]{t}->testdir }
sub http_port { $_[0]{t}->port('http') }
sub cert     { $_[0]{t}{enrolled}{'demo-doctor'}{cert} }

sub write_conf {
    my ($self, $redis) = @_;
    my $t = $self->{t};
    $t->write_nginx_conf($CONF,
        STRESS_REDIS => $redis,
        LOG_LEVEL    => $self->{log_level},
        MODULE       => $self->{module},
        USER         => $< == 0 ? 'user root;' : '');
    return $self;
}

# nginx -s reload, as an operator would; returns when the command did
sub reload {
    my ($self) = @_;
    my $t = $self->{t};
    my $d = $t->testdir;
    my $rc = system($ENV{HPKI_NGINX} // 'nginx', '-q', '-p', "$d/",
        '-c', $t->nginx_conf, '-e', "$d/error.log", '-s', 'reload');
    die "nginx -s reload failed\n" if $rc != 0;
}


# --- tokens --------------------------------------------------------------------

# good: a card login. Bad: signed with the gateway key but expired (state in
# Redis), unknown jti, revoked (a real login whose state was deleted before
# first use), tampered (claims changed, signature kept), forged (another
# key, same kid), alg none.

sub make_tokens {
    my ($self) = @_;
    my $t = $self->{t};
    my $good = $t->login('doctor_auth');
    my $c = jwt_claims($good);
    my $hdr = { alg => 'RS256', typ => 'JWT', kid => $t->token_kid };
    my $now = time;

    my %bad;
    $bad{expired} = make_jwt($t, $hdr, { %$c, jti => 'stress-expired',
        iat => int($now) - 7200, nbf => int($now) - 7200,
        exp => int($now) - 3600 });
    $t->redis('SET', 'hpki:tok:stress-expired', $t->redis('GET',
        "hpki:tok:$c->{jti}"));

    $bad{unknown_jti} = make_jwt($t, $hdr, { %$c, jti => 'stress-unknown' });

    my $revoked = $t->login('doctor_auth');
    $t->redis('DEL', 'hpki:tok:' . jwt_claims($revoked)->{jti});
    $bad{revoked} = $revoked;

    my ($h, $p, $s) = split /\./, $good;
    $bad{tampered} = join '.', $h,
        b64url(JSON::PP->new->canonical->encode({ %$c,
            sub => 'demo-pharmacist' })), $s;

    my $other = $t->testdir . '/forger.key';
    system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
        . "-out '$other' 2>/dev/null") == 0 or die "openssl genpkey failed\n";
    $bad{forged} = make_jwt($t, $hdr, { %$c, jti => 'stress-forged' },
        key => $other);
    $t->redis('SET', 'hpki:tok:stress-forged', 'demo-doctor');

    $bad{alg_none} = b64url('{"alg":"none","typ":"JWT"}') . '.'
        . (split /\./, $good)[1] . '.';

    $self->{good} = $good;
    $self->{bad} = \%bad;
    return $self;
}

sub good_token { $_[0]{good} }
sub bad_tokens { $_[0]{bad} }


# --- Redis faults -----------------------------------------------------------------

sub redis_pid { $_[0]{t}->pid('redis') }

# SIGKILL, and reap it through the harness
sub kill_redis {
    my ($self) = @_;
    my $t = $self->{t};
    kill 'KILL', $t->pid('redis');
    $t->stop('redis');
}

# the same redis.conf and ACL file again (start_redis would make new share
# passwords, which hpki-signd's workers do not know); AOF brings the data
sub restart_redis {
    my ($self) = @_;
    my $t = $self->{t};
    my $dir = $t->testdir . '/redis';
    $t->_spawn('redis', "$dir/redis.log",
        $ENV{HPKI_REDIS_SERVER} // 'redis-server', "$dir/redis.conf");
    $t->_wait_for('redis', "$dir/redis.log", sub {
        my $r = eval { $t->redis('PING') };
        defined $r && $r eq 'PONG';
    });
}

# a fake Redis with the token state the load needs
sub start_fake {
    my ($self, $lifetime) = @_;
    my $t = $self->{t};
    my %data;
    for my $jti (jwt_claims($self->{good})->{jti}, 'stress-expired',
                 'stress-forged') {
        $data{"hpki:tok:$jti"} = $t->redis('GET', "hpki:tok:$jti");
    }
    $data{'hpki:cert:' . x5t($t->pki('doctor_auth_cert'))} = 'demo-doctor';
    $self->{fake} = Hpki::FakeRedis->new(port => $t->port('fake-redis'),
        dir => $t->testdir, data => \%data, lifetime => $lifetime);
    return $self->{fake};
}

sub fake { $_[0]{fake} }


# --- hpki-signd --------------------------------------------------------------------

sub signd_pid { $_[0]{t}->pid('signd') }

# { a => [pids], b => [pids] }: the combiner's share workers
sub signd_workers {
    my ($self) = @_;
    my $pid = $self->signd_pid // return { a => [], b => [] };
    my %w = (a => [], b => []);
    for my $c (children($pid)) {
        my @argv = split /\0/, slurp("/proc/$c/cmdline") // '';
        my ($i) = grep { $argv[$_] eq '--worker' } 0 .. $#argv;
        push @{$w{$argv[$i + 1]}}, $c if defined $i && defined $argv[$i + 1];
    }
    return \%w;
}

sub kill_signd {
    my ($self) = @_;
    my $t = $self->{t};
    my $pid = $t->pid('signd');
    my $w = $self->signd_workers;
    $self->{old_signd_workers} = [ @{$w->{a}}, @{$w->{b}} ];
    kill 'KILL', $pid;
    $t->stop('signd');
}

# share workers of a killed combiner still alive (they should notice the
# closed socketpair and exit); returns their pids
sub orphans {
    my ($self) = @_;
    return grep { -e "/proc/$_" && (slurp("/proc/$_/cmdline") // '')
                  =~ /hpki-signd/ } @{$self->{old_signd_workers} // []};
}

sub restart_signd {
    my ($self) = @_;
    $self->{t}->start_signd(conf => "workers $self->{workers}\nlog_level warn\n");
}


# --- nginx ---------------------------------------------------------------------------

sub nginx_master { $_[0]{t}->pid('nginx') }
sub nginx_workers { children($_[0]->nginx_master) }


# --- /proc -------------------------------------------------------------------------------

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    return scalar <$fh>;
}

sub children {
    my ($ppid) = @_;
    return () unless $ppid;
    my @c;
    for my $dir (glob '/proc/[0-9]*') {
        my $stat = slurp("$dir/stat") // next;
        push @c, $1 if $stat =~ /^(\d+) \(.*\) \S+ (\d+)/s && $2 == $ppid;
    }
    return sort { $a <=> $b } @c;
}

# { rss_kb, fds, sockets, files => [targets] } of one process
sub proc_figures {
    my ($pid) = @_;
    my $status = slurp("/proc/$pid/status") // return undef;
    my ($rss) = $status =~ /^VmRSS:\s+(\d+)/m;
    my (@files, $sockets);
    opendir my $dh, "/proc/$pid/fd" or return undef;
    for my $fd (grep { /^\d+$/ } readdir $dh) {
        my $target = readlink("/proc/$pid/fd/$fd") // next;
        if ($target =~ /^(socket|anon_inode|pipe):/) { $sockets++ if $1 eq 'socket' }
        push @files, "$fd -> $target";
    }
    return { pid => $pid, rss_kb => $rss // 0, fds => scalar @files,
             sockets => $sockets // 0, files => [ sort @files ] };
}


# --- logs ------------------------------------------------------------------------------

sub error_log { $_[0]{t}->error_log }
sub signd_log { $_[0]{t}->signd_log }

# keep the logs where the run's figures are (the test directory goes)
sub save_logs {
    my ($self) = @_;
    my $out = $self->{out} or return;
    make_path($out);
    my $d = $self->dir;
    for my $f (qw(error.log signd.log fake-redis.log redis/redis.log
                  nginx.conf hpki-signd.conf)) {
        next unless -e "$d/$f";
        copy("$d/$f", "$out/" . ($f =~ s{/}{-}gr));
    }
}

sub stop {
    my ($self) = @_;
    $self->{fake}->stop if $self->{fake};
    $self->{t}->stop;
}

1;
