package Stress::Load;

# The load generator: K forked clients, each with one persistent HTTP
# connection. Odd-numbered clients check tokens, even-numbered ones sign (so
# that a stalled signing path cannot starve the token checks of load, nor
# the reverse), each sending its mix of
#
#   good     GET /whoami with the good token               expect 200
#   bad      GET /whoami with a bad token (rotating)       expect 401, never 200
#   badsign  POST /hpki/sign with a bad token              expect 401, never 200
#   sign     POST /hpki/sign, 1-3 random SHA-256 digests   expect 200 and
#            signatures that verify with the second certificate
#
# Every answer is checked in the client and written, one line per request,
# to DIR/client-N.log:
#
#   START END KIND VARIANT STATUS VERDICT [NOTE]
#
# VERDICT is "ok" (the expected answer), "err" (another status: allowed
# only during a fault, and then only 502/503) or "wrong" (a 200 for a bad
# token, a signature that does not verify, a 200 without signatures: never
# allowed). SIGUSR1 pauses the clients, SIGUSR2 resumes them, SIGTERM ends
# them.

use strict;
use warnings;

use Digest::SHA qw(sha256);
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

use Stress::Client;

my $JSON = JSON::PP->new;

sub new {
    my ($class, %o) = @_;
    return bless {
        clients  => $o{clients} // 6,
        port     => $o{port},
        dir      => $o{dir},
        good     => $o{good},
        bad      => $o{bad},                 # { variant => token }
        cert     => $o{cert},
        mixes    => $o{mixes} // [ { good => 75, bad => 25 },
                                       { sign => 85, badsign => 15 } ],
        pids     => [],
    }, $class;
}

sub start {
    my ($self) = @_;
    for my $i (1 .. $self->{clients}) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $rc = eval { $self->run_client($i); 0 } // do {
                warn "client $i: $@"; 1 };
            POSIX::_exit($rc);
        }
        push @{$self->{pids}}, $pid;
    }
    return $self;
}

sub pause  { kill 'USR1', @{$_[0]{pids}} }
sub resume { kill 'USR2', @{$_[0]{pids}} }

sub stop {
    my ($self) = @_;
    kill 'TERM', @{$self->{pids}};
    my @rc;
    for my $pid (@{$self->{pids}}) {
        waitpid($pid, 0);
        push @rc, $? >> 8;
    }
    $self->{pids} = [];
    return !grep { $_ } @rc;
}

sub logs { map { "$_[0]{dir}/client-$_.log" } 1 .. $_[0]{clients} }

sub run_client {
    my ($self, $i) = @_;
    my ($stop, $paused) = (0, 0);
    local $SIG{TERM} = sub { $stop = 1 };
    local $SIG{INT} = sub { $stop = 1 };
    local $SIG{USR1} = sub { $paused = 1 };
    local $SIG{USR2} = sub { $paused = 0 };

    srand($$ ^ time);
    my $c = Stress::Client->new(port => $self->{port});
    my $v = Stress::Verifier->new($self->{cert});
    my @variants = sort keys %{$self->{bad}};
    my %mix = %{$self->{mixes}[($i - 1) % @{$self->{mixes}}]};
    my $total = 0;
    $total += $_ for values %mix;
    my @order = qw(good bad badsign sign);
    my $n = 0;
    my $salt = "$$-" . time;

    open my $log, '>', "$self->{dir}/client-$i.log" or die $!;

    until ($stop) {
        if ($paused) {
            sleep 0.02;
            next;
        }
        my $r = rand $total;
        my $kind;
        for (grep { $mix{$_} } @order) {
            $kind = $_;
            last if ($r -= $mix{$_}) < 0;
        }
        my $variant = '-';
        my ($res, $verdict, $note);
        my $t0 = time;
        $n++;

        if ($kind eq 'good') {
            $res = $c->whoami($self->{good});
            ($verdict, $note) = check_good($res);
        } elsif ($kind eq 'bad' || $kind eq 'badsign') {
            $variant = $variants[$n % @variants];
            my $tok = $self->{bad}{$variant};
            $res = $kind eq 'bad' ? $c->whoami($tok)
                 : $c->sign($tok, sha256("bad $salt $n"));
            ($verdict, $note) = check_bad($res);
        } else {
            my @d = map { sha256("rx $salt $n $_") } 1 .. 1 + int rand 3;
            $variant = scalar @d;
            $res = $c->sign($self->{good}, @d);
            ($verdict, $note) = check_sign($res, $v, \@d);
        }

        printf $log "%.4f %.4f %s %s %d %s%s\n", $t0, time, $kind, $variant,
            $res->{status}, $verdict, defined $note ? " $note" : '';
    }
    printf $log "# connects=%d retries=%d\n", $c->{stats}{connects},
        $c->{stats}{retries};
    close $log;
}

sub json { my $b = $_[0]{body} // ''; eval { $JSON->decode($b) } }

sub no_answer_note {
    my ($res) = @_;
    return ($res->{error} // 'no answer') =~ s/\s+/_/gr;
}

sub check_good {
    my ($res) = @_;
    return ('err', no_answer_note($res)) if $res->{status} == 0;
    return ('err', error_note($res)) if $res->{status} != 200;
    my $j = json($res);
    return ('wrong', 'whoami_200_without_subject')
        unless $j && ($j->{sub} // '') eq 'demo-doctor';
    return ('ok');
}

sub check_bad {
    my ($res) = @_;
    return ('wrong', '200_for_a_bad_token') if $res->{status} == 200;
    my $j = json($res);
    return ('wrong', 'signatures_for_a_bad_token')
        if $j && ref $j eq 'HASH' && exists $j->{signatures};
    return ('ok') if $res->{status} == 401;
    return ('err', $res->{status} == 0 ? no_answer_note($res)
                                        : error_note($res));
}

sub check_sign {
    my ($res, $v, $digests) = @_;
    return ('err', no_answer_note($res)) if $res->{status} == 0;
    my $j = json($res);
    if ($res->{status} != 200) {
        return ('wrong', "signatures_with_$res->{status}")
            if $j && ref $j eq 'HASH' && exists $j->{signatures};
        return ('err', error_note($res));
    }
    return ('wrong', 'sign_200_not_json') unless $j && ref $j eq 'HASH';
    my $sigs = $j->{signatures};
    return ('wrong', 'sign_200_without_signatures')
        unless ref $sigs eq 'ARRAY' && @$sigs;
    return ('wrong', 'sign_200_wrong_number_of_signatures')
        unless @$sigs == @$digests;
    for my $k (0 .. $#$digests) {
        return ('wrong', "invalid_signature_$k")
            unless $v->verify_b64($digests->[$k], $sigs->[$k]);
    }
    return ('wrong', 'sign_200_other_certificate')
        unless $v->same_cert($j->{certificate});
    return ('ok');
}

sub error_note {
    my ($res) = @_;
    my $j = json($res);
    return ($j && ref $j eq 'HASH' && $j->{error}) ? $j->{error} : 'no_json';
}

1;
