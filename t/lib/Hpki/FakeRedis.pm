package Hpki::FakeRedis;

# A fake Redis for fault injection, in the style of nginx-tests'
# memcached_fake.t: a forked child speaking just enough RESP for the
# gateway (GET, MGET, SET key value [EX n], DEL, PING, and EVAL of the
# gateway's own scripts), from a hash the test
# fills, that can be told at run time to misbehave.
#
#     use Hpki::FakeRedis;
#
#     my $fake = Hpki::FakeRedis->new(
#         port => $t->port('redis'),             # what %%REDIS_ADDR%% names
#         dir  => $t->testdir,                   # fake-redis.log goes there
#         data => { 'hpki:cert:<x5t>' => 'demo-doctor' },
#     );
#
#     $fake->mode('fragments', 'bytes');         # every reply byte by byte
#     $fake->mode('garbage', 'http');            # not RESP at all
#     $fake->mode('error', only => 'SET');       # only SET misbehaves
#     $fake->mode('normal');
#
#     $fake->set('hpki:tok:abc', 'demo-doctor');
#     $fake->get('hpki:tok:abc');                # undef when absent
#     $fake->stats->{commands};                  # commands read so far
#
# Modes (the second word is the variant; "only => CMD" limits the fault to
# one command name, the others are answered normally):
#
#     normal                   correct answers
#     fragments bytes [PAUSE]  correct, one byte per write, PAUSE s apart
#                              (default 0.01)
#     fragments split [PAUSE]  correct, each reply cut in two at a boundary
#                              that moves on by one with every reply, so a
#                              run of replies covers every cut; the cuts made
#                              are in stats->{cuts}
#     garbage http             "HTTP/1.1 200 OK ..."
#     garbage neglen           "$-5\r\n": a bulk length below -1
#     garbage hugelen          "$9999999999\r\n" and nothing else
#     garbage binary           a binary blob that starts with a NUL
#     garbage negarray         "*-7\r\n": an array with a negative count
#     garbage extra            the correct reply and then one more, unasked
#     hang                     reads the command, never answers
#     close now                closes right after reading the command
#     close mid                sends the first half of the reply, closes
#     error [MESSAGE]          "-ERR something went wrong" (or MESSAGE)
#     wrongtype integer        ":1\r\n"
#     wrongtype array          the correct bulk wrapped in a 1-array
#     wrongtype status         "+<value>\r\n": a status, not a bulk
#     nil                      "$-1\r\n" to everything (a missing key)
#     slow [DELAY]             correct, but DELAY s late (default 1.5);
#                              once the client drops such a connection the
#                              fake goes back to normal by itself
#
# The child answers a line-based control protocol on a second port (MODE,
# SET, GET, DEL, STATS); it exits when stopped, when the test process goes
# away, or after "lifetime" seconds (default 300), whichever comes first.
# Every command it reads is logged to DIR/fake-redis.log.

use strict;
use warnings;

use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);

my @FAKES;                                    # live fakes, for END


sub new {
    my ($class, %o) = @_;
    my $port = $o{port} // croak 'FakeRedis: port';
    my $dir = $o{dir} // croak 'FakeRedis: dir';

    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Proto => 'tcp', Listen => 16, ReuseAddr => 1)
        or croak "FakeRedis: listen on $port: $!";
    my $control = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', Listen => 4, ReuseAddr => 1)
        or croak "FakeRedis: control listen: $!";

    my $self = bless {
        port     => $port,
        cport    => $control->sockport,
        dir      => $dir,
        owner    => $$,
        lifetime => $o{lifetime} // 300,
    }, $class;

    my $parent = $$;
    my $pid = fork // croak "FakeRedis: fork: $!";

    if ($pid == 0) {
        # the child: no END blocks of the test, no Test::More output
        $SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
        $SIG{PIPE} = 'IGNORE';
        alarm($self->{lifetime} + 5);
        eval {
            Hpki::FakeRedis::Server->new(listen => $listen,
                control => $control, parent => $parent,
                data => { %{$o{data} // {}} },
                log => "$dir/fake-redis.log",
                deadline => time + $self->{lifetime})->run;
        };
        if ($@) {
            if (open my $fh, '>>', "$dir/fake-redis.log") {
                print $fh "fake redis died: $@";
            }
        }
        POSIX::_exit(0);
    }

    close $listen;
    close $control;
    $self->{pid} = $pid;
    push @FAKES, $self;

    $self->control('PING') eq 'PONG' or croak 'FakeRedis: no PONG';
    return $self;
}

sub port { $_[0]{port} }
sub addr { '127.0.0.1:' . $_[0]{port} }
sub pid  { $_[0]{pid} }


# --- control ----------------------------------------------------------------

sub control {
    my ($self, @words) = @_;
    for my $w (@words) {
        croak "FakeRedis: control word '$w' has blanks" if $w =~ /[\s]/;
    }

    my $deadline = time + 5;
    my $s;
    until ($s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{cport}",
                                      Proto => 'tcp', Timeout => 2))
    {
        croak "FakeRedis: control connect: $!" if time > $deadline;
        sleep 0.02;
    }

    print $s join(' ', @words), "\n";
    my $sel = IO::Select->new($s);
    my $line = '';
    while ($line !~ /\n/) {
        croak 'FakeRedis: control timed out' unless $sel->can_read(5);
        my $n = sysread($s, $line, 4096, length $line);
        croak 'FakeRedis: control closed' unless $n;
    }
    close $s;
    chomp $line;
    croak "FakeRedis: @words: $line" if $line =~ /^ERR/;
    return $line;
}

sub mode {
    my ($self, $mode, @args) = @_;
    my $only = '*';
    if (@args >= 2 && $args[-2] eq 'only') {
        $only = uc $args[-1];
        splice @args, -2;
    }
    $self->control('MODE', $only, $mode, @args);
    return $self;
}

sub set {
    my ($self, $key, $value) = @_;
    $self->control('SET', $key, $value);
    return $self;
}

sub get {
    my ($self, $key) = @_;
    my $r = $self->control('GET', $key);
    return $r eq '(nil)' ? undef : $r =~ s/^=//r;
}

sub del {
    my ($self, $key) = @_;
    $self->control('DEL', $key);
    return $self;
}

sub ttl {
    my ($self, $key) = @_;
    return $self->control('TTL', $key);
}

# { commands, accepted, clients, replies, writes, mode, cuts => [...] }

sub stats {
    my ($self) = @_;
    my %s = map { split /=/, $_, 2 } split / /, $self->control('STATS');
    $s{cuts} = [ grep { length } split /,/, $s{cuts} // '' ];
    return \%s;
}


# --- lifetime ---------------------------------------------------------------

sub running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return waitpid($self->{pid}, WNOHANG) == 0;
}

sub stop {
    my ($self) = @_;
    return $self if $$ != $self->{owner};
    my $pid = delete $self->{pid} or return $self;
    return $self if waitpid($pid, WNOHANG) != 0;
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return $self if waitpid($pid, WNOHANG) != 0;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    $self->stop;
}

END {
    my $rc = $?;
    $_->stop for grep { defined } @FAKES;
    $? = $rc;
}


# --- the child ----------------------------------------------------------------

package Hpki::FakeRedis::Server;

use strict;
use warnings;

use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        %o,
        conns    => {},                      # fileno => connection
        mode     => 'normal',
        args     => [],
        only     => '*',
        ttl      => {},
        n        => 0,                       # replies in this mode
        cuts     => [],
        stats    => { commands => 0, accepted => 0, replies => 0,
                      writes => 0 },
        seq      => 0,
    }, $class;
    open $self->{logfh}, '>>', $o{log} or die "$o{log}: $!";
    $self->{logfh}->autoflush(1);
    return $self;
}

sub log {
    my ($self, $msg) = @_;
    printf { $self->{logfh} } "%.3f %s\n", time, $msg;
}

sub run {
    my ($self) = @_;
    my $sel = IO::Select->new($self->{listen}, $self->{control});
    $self->{sel} = $sel;
    $self->log("listening on " . $self->{listen}->sockport);

    while (time < $self->{deadline}) {
        return if getppid() != $self->{parent};

        my $wait = 0.2;
        for my $c (values %{$self->{conns}}) {
            next unless @{$c->{out}};
            my $d = $c->{out}[0]{at} - time;
            $wait = $d if $d < $wait;
        }
        $wait = 0 if $wait < 0;

        for my $fh ($sel->can_read($wait)) {
            if ($fh == $self->{listen}) {
                $self->accept_conn('redis');
            } elsif ($fh == $self->{control}) {
                $self->accept_conn('control');
            } else {
                $self->read_conn($self->{conns}{fileno $fh});
            }
        }

        $self->flush;
    }
    $self->log('lifetime over');
}

sub accept_conn {
    my ($self, $kind) = @_;
    my $l = $kind eq 'redis' ? $self->{listen} : $self->{control};
    my $s = $l->accept or return;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $c = { sock => $s, kind => $kind, in => '', out => [],
              id => ++$self->{seq} };
    $self->{conns}{fileno $s} = $c;
    $self->{sel}->add($s);
    if ($kind eq 'redis') {
        $self->{stats}{accepted}++;
        $self->log("conn $c->{id}: accepted");
    }
}

sub close_conn {
    my ($self, $c, $why) = @_;
    return if $c->{closed};
    $c->{closed} = 1;
    $self->{sel}->remove($c->{sock});
    delete $self->{conns}{fileno $c->{sock}};
    close $c->{sock};
    return unless $c->{kind} eq 'redis';
    $self->log("conn $c->{id}: closed ($why)");

    # "slow" lasts until the client gives up on a slow connection
    if ($c->{slow} && $self->{mode} eq 'slow') {
        $self->set_mode('*', 'normal');
        $self->log('slow connection dropped: back to normal');
    }
}

sub read_conn {
    my ($self, $c) = @_;
    my $n = sysread($c->{sock}, $c->{in}, 65536, length $c->{in});
    if (!$n) {
        $self->close_conn($c, defined $n ? 'eof' : "read: $!");
        return;
    }
    if ($c->{kind} eq 'control') {
        $self->control_line($c) if $c->{in} =~ /\n/;
        return;
    }
    while (!$c->{closed}) {
        my $cmd = eval { parse_command(\$c->{in}) };
        if ($@) {
            $self->close_conn($c, "not RESP: $@" =~ s/\n//r);
            last;
        }
        last unless $cmd;
        eval { $self->command($c, $cmd) };
        if ($@) {
            $self->log("fake error: $@");
            $self->close_conn($c, 'fake error');
        }
    }
}

# one RESP array of bulk strings (or an inline command) off the buffer

sub parse_command {
    my ($buf) = @_;
    return undef unless length $$buf;

    if (substr($$buf, 0, 1) ne '*') {
        $$buf =~ s/^([^\n]*)\r?\n// or return undef;
        return [ split ' ', $1 ];
    }

    my $pos = 0;
    my $line = sub {
        my $i = index($$buf, "\r\n", $pos);
        return undef if $i < 0;
        my $l = substr($$buf, $pos, $i - $pos);
        $pos = $i + 2;
        return $l;
    };

    my $head = $line->() // return undef;
    my ($count) = $head =~ /^\*(\d+)$/ or die "bad command header '$head'\n";
    my @args;
    for (1 .. $count) {
        my $h = $line->() // return undef;
        my ($len) = $h =~ /^\$(\d+)$/ or die "bad bulk header '$h'\n";
        return undef if length($$buf) < $pos + $len + 2;
        push @args, substr($$buf, $pos, $len);
        $pos += $len + 2;
    }
    substr($$buf, 0, $pos) = '';
    return \@args;
}

sub control_line {
    my ($self, $c) = @_;
    my ($line) = $c->{in} =~ /^([^\n]*)\n/;
    my ($op, @w) = split ' ', $line;
    my $d = $self->{data};
    my $r;
    $op //= '';

    if ($op eq 'PING') {
        $r = 'PONG';
    } elsif ($op eq 'MODE' && @w >= 2 && $w[1] !~ /^(normal|fragments|garbage
                 |hang|close|error|wrongtype|nil|slow)$/x) {
        $r = "ERR unknown mode '$w[1]'";
    } elsif ($op eq 'MODE' && @w >= 2) {
        $self->set_mode(@w);
        $r = 'OK';
    } elsif ($op eq 'SET' && @w == 2) {
        $d->{$w[0]} = $w[1];
        delete $self->{ttl}{$w[0]};
        $r = 'OK';
    } elsif ($op eq 'GET' && @w == 1) {
        $r = defined $d->{$w[0]} ? "=$d->{$w[0]}" : '(nil)';
    } elsif ($op eq 'DEL' && @w == 1) {
        $r = delete $d->{$w[0]} ? 1 : 0;
    } elsif ($op eq 'TTL' && @w == 1) {
        $r = $self->{ttl}{$w[0]} // -1;
    } elsif ($op eq 'STATS') {
        my $s = $self->{stats};
        my $clients = grep { $_->{kind} eq 'redis' }
                      values %{$self->{conns}};
        $r = join ' ', (map { "$_=$s->{$_}" } sort keys %$s),
             "clients=$clients", "mode=$self->{mode}",
             'cuts=' . join(',', @{$self->{cuts}});
    } else {
        $r = "ERR unknown control '$line'";
    }

    my $s = $c->{sock};
    syswrite $s, "$r\n";
    $self->close_conn($c, 'control done');
}

sub set_mode {
    my ($self, $only, $mode, @args) = @_;
    $self->{only} = uc $only;
    $self->{mode} = $mode;
    $self->{args} = \@args;
    $self->{n} = 0;
    $self->{cuts} = [];
    $self->log("mode $mode @args (only $self->{only})");
}


# --- replies ----------------------------------------------------------------

sub bulk { defined $_[0] ? '$' . length($_[0]) . "\r\n$_[0]\r\n" : "\$-1\r\n" }

# what a real Redis would answer, and the value itself for wrongtype

sub answer {
    my ($self, $cmd) = @_;
    my ($name, @a) = @$cmd;
    $name = uc($name // '');
    my $d = $self->{data};

    if ($name eq 'GET' && @a == 1) {
        return (bulk($d->{$a[0]}), $d->{$a[0]});
    }
    if ($name eq 'SET' && @a >= 2) {
        $d->{$a[0]} = $a[1];
        delete $self->{ttl}{$a[0]};
        if (@a == 4 && uc $a[2] eq 'EX') {
            $self->{ttl}{$a[0]} = $a[3];
        }
        return ("+OK\r\n", 'OK');
    }
    if ($name eq 'MGET') {
        return ('*' . @a . "\r\n" . join('', map { bulk($d->{$_}) } @a),
                $d->{$a[0]});
    }
    if ($name eq 'EVAL' && @a >= 2) {
        return $self->script(@a);
    }
    if ($name eq 'DEL') {
        my $n = grep { defined delete $d->{$_} } @a;
        return (":$n\r\n", $n);
    }
    if ($name eq 'PING') {
        return ("+PONG\r\n", 'PONG');
    }
    return ("-ERR unknown command '$name'\r\n", undef);
}

# the gateway's Lua scripts, recognised by what they do: the card login's
# token store (refused when locked out) and the misuse counter

sub script {
    my ($self, $text, $nkeys, @rest) = @_;
    my @keys = splice @rest, 0, $nkeys;
    my $d = $self->{data};

    if ($text =~ /'locked'/) {
        my ($sub, $ttl, $limit) = @rest;
        return (bulk('locked'), 'locked')
            if $limit && ($d->{$keys[1]} // 0) >= $limit;
        $d->{$keys[0]} = $sub;
        $self->{ttl}{$keys[0]} = $ttl;
        return (bulk('ok'), 'ok');
    }
    if ($text =~ /INCR/) {
        my $n = ++$d->{$keys[0]};
        return (":$n\r\n", $n);
    }
    return ("-ERR unknown script\r\n", undef);
}

sub command {
    my ($self, $c, $cmd) = @_;
    my $name = uc($cmd->[0] // '');
    my $mode = $self->{mode};
    my @args = @{$self->{args}};

    $self->{stats}{commands}++;

    $mode = 'normal' if $self->{only} ne '*' && $self->{only} ne $name;

    my $shown = join ' ', map { length > 48 ? substr($_, 0, 45) . '...' : $_ }
                @$cmd;
    $self->log("conn $c->{id}: $shown [$mode @args]");

    if ($mode eq 'hang') {
        return;
    }

    if ($mode eq 'close' && ($args[0] // 'now') eq 'now') {
        $self->close_conn($c, 'close now');
        return;
    }

    my ($reply, $value) = $self->answer($cmd);
    my $now = time;

    if ($mode eq 'normal') {
        $self->queue($c, $now, $reply);

    } elsif ($mode eq 'fragments') {
        my $variant = $args[0] // 'bytes';
        my $pause = $args[1] // ($variant eq 'split' ? 0.05 : 0.01);
        if ($variant eq 'split') {
            # cuts 1 .. len-1, one per reply, round and round
            my $cut = 1 + $self->{n} % (length($reply) - 1);
            push @{$self->{cuts}}, $cut;
            $self->queue($c, $now, substr($reply, 0, $cut));
            $self->queue($c, $now + $pause, substr($reply, $cut));
        } else {
            my $i = 0;
            $self->queue($c, $now + $pause * $i++, $_)
                for split //, $reply;
        }

    } elsif ($mode eq 'garbage') {
        my $variant = $args[0] // 'http';
        my %g = (
            http     => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            neglen   => "\$-5\r\n",
            hugelen  => "\$9999999999\r\n",
            binary   => join('', map { chr((($_ * 73) + 0) % 256) } 0 .. 63),
            negarray => "*-7\r\n",
            extra    => $reply . "+OK\r\n",
        );
        die "unknown garbage '$variant'\n" unless exists $g{$variant};
        $self->queue($c, $now, $g{$variant});

    } elsif ($mode eq 'close') {
        # "mid": the first half of the reply, then the connection goes
        my $half = substr($reply, 0, int(length($reply) / 2) || 1);
        $self->queue($c, $now, $half);
        $self->queue($c, $now + 0.05, undef);

    } elsif ($mode eq 'error') {
        my $msg = @args ? join(' ', @args) : 'ERR something went wrong';
        $self->queue($c, $now, "-$msg\r\n");

    } elsif ($mode eq 'wrongtype') {
        my $variant = $args[0] // 'integer';
        my $r = $variant eq 'integer' ? ":1\r\n"
              : $variant eq 'array'   ? "*1\r\n" . $reply
              : $variant eq 'status'  ? '+' . ($value // 'OK') . "\r\n"
              : die "unknown wrongtype '$variant'\n";
        $self->queue($c, $now, $r);

    } elsif ($mode eq 'nil') {
        # no such key: MGET answers an array of nils
        my $n = @$cmd - 1;
        $self->queue($c, $now, $name eq 'MGET' ? "*$n\r\n" . "\$-1\r\n" x $n
                                               : "\$-1\r\n");

    } elsif ($mode eq 'slow') {
        $c->{slow} = 1;
        $self->queue($c, $now + ($args[0] // 1.5), $reply);

    } else {
        die "unknown mode '$mode'\n";
    }

    $self->{n}++;
    $self->{stats}{replies}++;
}

# writes go out in order, each no earlier than the one before it; undef
# data closes the connection

sub queue {
    my ($self, $c, $at, $data) = @_;
    my $q = $c->{out};
    $at = $q->[-1]{at} if @$q && $q->[-1]{at} > $at;
    push @$q, { at => $at, data => $data };
}

sub flush {
    my ($self) = @_;
    my $now = time;
    for my $c (values %{$self->{conns}}) {
        my $q = $c->{out};
        while (@$q && $q->[0]{at} <= $now && !$c->{closed}) {
            my $w = shift @$q;
            if (!defined $w->{data}) {
                $self->close_conn($c, 'close mid-reply');
                last;
            }
            my $n = syswrite $c->{sock}, $w->{data};
            if (!defined $n) {
                $self->close_conn($c, "write: $!");
                last;
            }
            $self->{stats}{writes}++;
        }
    }
}

1;
