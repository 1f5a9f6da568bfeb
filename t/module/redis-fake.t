#!/usr/bin/perl

# The module against a Redis that misbehaves (t/lib/Hpki/FakeRedis.pm): a
# reply in fragments is still a reply; garbage, a closed connection, an
# error, a reply of the wrong type, a hang or a late reply is never a pass;
# the worker never hangs or dies; and after each fault the service comes
# back on the same nginx. Every case runs twice, so that nothing leaks from
# one request (or one broken connection) into the next.
#
# What is right, decided here:
#   nil bulk ($-1)               the key is missing: token 401 invalid_token,
#                                card 403 access_denied
#   -ERR, garbage, closed, hang,
#   late, wrong reply type       the store is broken: 503
#                                temporarily_unavailable (docs/module.md:
#                                "Redis down, slow or broken")
#
# A reply nobody asked for would trip an assert() in hiredis 0.14 (async.c
# redisProcessCallbacks) and kill the worker; the module's reader refuses
# it first, so the connection is dropped and comes back instead.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);

use Hpki::Test;
use Hpki::FakeRedis;
use HpkiModule qw(gateway_conf x5t);

my $t = Hpki::Test->new(need => ['module']);

my $fake = Hpki::FakeRedis->new(
    port => $t->port('redis'),
    dir  => $t->testdir,
    data => { 'hpki:cert:' . x5t($t->pki('doctor_auth_cert'))
                  => 'demo-doctor' },
);

# gateway_conf's 1s, shortened so that the hang cases stay quick
$t->write_nginx_conf(gateway_conf()
        =~ s/hpki_redis_timeout\s+\S+;/hpki_redis_timeout   500ms;/r)
    ->start_nginx;

my $ADDR = quotemeta $fake->addr;


# --- normal: the fake is a Redis ---------------------------------------------

my $r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 200, 'normal: card login 200';
my $token = $r->{json}{access_token};
my $jti = Hpki::Test::jwt_claims($token)->{jti};

is $fake->get("hpki:tok:$jti"), 'demo-doctor',
    'normal: the login SET the token state in the fake';
is $fake->ttl("hpki:tok:$jti"), 18 * 3600, '... with EX = the token ttl';
is whoami()->{status}, 200, 'normal: token check 200';


# --- fragments: the reply parser across partial reads -------------------------

for my $run (1, 2) {
    $fake->mode('fragments', 'bytes');
    my $w = $fake->stats->{writes};
    $r = whoami();
    is $r->{status}, 200, "fragments bytes (run $run): token check 200";
    is $r->{json}{sub}, 'demo-doctor', "fragments bytes (run $run): subject";
    # the token check's MGET: the token's state and its subject's counter
    is $fake->stats->{writes} - $w,
        length("*2\r\n" . bulk('demo-doctor') . "\$-1\r\n"),
        "fragments bytes (run $run): the reply went out one byte a write";

    $r = $t->http(GET => '/whoami',
        token => HpkiModule::make_jwt($t,
            { alg => 'RS256', typ => 'JWT', kid => $t->token_kid },
            { %{Hpki::Test::jwt_claims($token)}, jti => "unknown-$run" }));
    is $r->{status}, 401,
        "fragments bytes (run $run): a nil reply in bytes is unknown: 401";

    $r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
    is $r->{status}, 200, "fragments bytes (run $run): card login 200";
    my $tok = $r->{json}{access_token} // '';
    is $t->http(GET => '/whoami', token => $tok)->{status}, 200,
        "fragments bytes (run $run): the new token passes";
}

for my $run (1, 2) {
    # every cut of the GET reply, 1 .. len-1, one per request
    my $cuts = length(bulk('demo-doctor')) - 1;
    $fake->mode('fragments', 'split');
    my @status = map { whoami()->{status} } 1 .. $cuts;
    is_deeply \@status, [ (200) x $cuts ],
        "fragments split (run $run): 200 for each of $cuts cuts";
    is_deeply [ sort { $a <=> $b } @{$fake->stats->{cuts}} ], [ 1 .. $cuts ],
        "fragments split (run $run): the reply was cut at every boundary";

    $fake->mode('fragments', 'split');
    my @login = map {
        $t->http(POST => '/hpki/login/card', cert => 'doctor_auth')->{status}
    } 1 .. 4;
    is_deeply \@login, [ (200) x 4 ], "fragments split (run $run): card login";
}

$fake->mode('normal');


# --- nil is "unknown", not "unavailable" ---------------------------------------

for my $run (1, 2) {
    $fake->mode('nil');
    $r = whoami();
    is $r->{status}, 401, "nil (run $run): token check 401";
    is $r->{json}{error}, 'invalid_token', "nil (run $run): invalid_token";
    $r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
    is $r->{status}, 403, "nil (run $run): card login 403 (not registered)";
    $fake->mode('normal');
    is whoami()->{status}, 200, "nil (run $run): back to normal, 200";
}


# --- faults: 503, never 200, the worker goes on -------------------------------

my $timeout = qr/hpki: redis $ADDR timed out, reconnecting/;
my $closed = qr/hpki: redis $ADDR: no reply: Server closed the connection/;
my $protocol = qr/hpki: redis $ADDR: no reply: Protocol error/;

my @faults = (
    # name                mode                        log
    [ 'garbage http',     [qw(garbage http)],         $protocol ],
    [ 'garbage binary',   [qw(garbage binary)],       $protocol ],
    [ 'garbage hugelen',  [qw(garbage hugelen)],      $timeout ],
    [ 'garbage neglen',   [qw(garbage neglen)],       qr/no reply: Bulk string length out of range/ ],
    [ 'garbage negarray', [qw(garbage negarray)],     qr/no reply: Multi-bulk length out of range/ ],
    [ 'hang',             ['hang'],                   $timeout ],
    [ 'close now',        [qw(close now)],            $closed ],
    [ 'close mid-reply',  [qw(close mid)],            $closed ],
    [ 'error',            ['error'],                  qr/hpki: redis.*ERR something went wrong/ ],
    [ 'slow',             ['slow'],                   $timeout ],
);

for my $f (@faults) {
    my ($name, $mode, $log) = @$f;

    for my $run (1, 2) {
        my $mark = length $t->error_log;
        $fake->mode(@$mode);

        my ($res, @seen) = through_fake(\&whoami);
        fault_ok("$name (run $run)", $res, \@seen, 503);

        log_like($mark, $log, "$name (run $run): the error log names the fault");

        # "slow" turns itself off once the module gives up on it
        $fake->mode('normal') unless $mode->[0] eq 'slow';
        recovers("$name (run $run)");
    }
}


# --- a reply of the wrong type, or a malformed bulk, is a broken store ------

# fail closed today (never 200), but 401 tells the EHR that a good token is
# revoked: it drops it and sends the doctor back to the card reader, and the
# log blames the token. See the report: ngx_http_hpki_auth_state.

my @wrong = (
    [ 'wrongtype integer', [qw(wrongtype integer)] ],
    [ 'wrongtype array',   [qw(wrongtype array)] ],
    [ 'wrongtype status',  [qw(wrongtype status)] ],
);

for my $f (@wrong) {
    my ($name, $mode) = @$f;

    for my $run (1, 2) {
        $fake->mode(@$mode);
        my ($res, @seen) = through_fake(\&whoami);

        ok defined $res && !grep({ $_ == 200 || $_ == 0 } @seen),
            "$name (run $run): never 200, always an answer";

                is $res && $res->{status}, 503, "$name (run $run): 503";

        $fake->mode('normal');
        recovers("$name (run $run)");
    }
}


# --- card login under faults --------------------------------------------------

for my $run (1, 2) {
    my $mark = length $t->error_log;
    $fake->mode('garbage', 'http');
    my ($res, @seen) = through_fake(\&login);
    fault_ok("card login, garbage (run $run)", $res, \@seen, 503);
    log_like($mark, $protocol,
        "card login, garbage (run $run): the error log names the fault");
    $fake->mode('normal');
    recovers("card login, garbage (run $run)", \&login);
}

for my $run (1, 2) {
    # the user is found, the token state cannot be written: no token
    my $mark = length $t->error_log;
    $fake->mode('error', only => 'EVAL');
    my ($res, @seen) = through_fake(\&login);
    fault_ok("card login, SET fails (run $run)", $res, \@seen, 503);
    ok !defined $res->{json}{access_token},
        "card login, SET fails (run $run): no token handed out";
        log_like($mark, qr/ERR something went wrong/,
        "card login, SET fails (run $run): the log has Redis' error");
    $fake->mode('normal');
    recovers("card login, SET fails (run $run)", \&login);
}

for my $run (1, 2) {
    $fake->mode('hang', only => 'EVAL');
    my ($res, @seen) = through_fake(\&login);
    fault_ok("card login, SET hangs (run $run)", $res, \@seen, 503);
    $fake->mode('normal');
    recovers("card login, SET hangs (run $run)", \&login);
}

for my $run (1, 2) {
    $fake->mode('wrongtype', 'integer', only => 'GET');
    my ($res, @seen) = through_fake(\&login);
    ok defined $res && !grep({ $_ == 200 || $_ == 0 } @seen),
        "card login, GET wrongtype (run $run): never 200";
        is $res && $res->{status}, 503,
        "card login, GET wrongtype (run $run): 503";
    $fake->mode('normal');
    recovers("card login, GET wrongtype (run $run)", \&login);
}


# --- several requests behind one hung command ---------------------------------

for my $run (1, 2) {
    $fake->mode('hang');
    my @status = parallel(4, \&whoami);
    is_deeply \@status, [ (503) x 4 ],
        "hang, 4 at once (run $run): every one 503, none left hanging";
    $fake->mode('normal');
    recovers("hang, 4 at once (run $run)");
}


# --- a second reply nobody asked for -------------------------------------------

# the right reply and then "+OK": hiredis finds no callback for the second
# and, the context being neither subscribed nor monitoring, asserts. Last,
# because it takes the worker down (the master starts another).

my $mark_extra = length $t->error_log;

log_unlike(0, qr/exited on signal/,
    'no worker crashed in any of the cases above');

{
    $fake->mode('garbage', 'extra');
    my ($res, @seen) = through_fake(\&whoami);
    ok defined $res && !grep({ $_ == 0 } @seen),
        'garbage extra: the request completed';
    $fake->mode('normal');
    recovers('garbage extra');
    log_unlike($mark_extra, qr/exited on signal|Assertion/,
        'garbage extra: the worker survives an unasked reply');
}

ok $fake->running, 'the fake is still up';

done_testing;


# --- helpers ------------------------------------------------------------------

sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }

sub whoami { $t->http(GET => '/whoami', token => $token) }

sub login { $t->http(POST => '/hpki/login/card', cert => 'doctor_auth') }

# one request that reaches the fake: right after a fault the worker may
# still be reconnecting (backoff), and such a request is refused at once
# with 503 without a word to Redis; it is tried again. Returns the
# response that went through the fake and every status seen on the way.

sub through_fake {
    my ($req) = @_;
    my @seen;
    for (1 .. 60) {
        my $before = $fake->stats->{commands};
        my $res = $req->();
        push @seen, $res->{status};
        return ($res, @seen) if $fake->stats->{commands} > $before;
        sleep 0.1;
    }
    return (undef, @seen);
}

sub fault_ok {
    my ($name, $res, $seen, $want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    ok defined $res, "$name: a request reached the fake";
    $res //= { status => 0, json => {} };
    ok !grep({ $_ == 200 } @$seen), "$name: never 200";
    ok !grep({ $_ == 0 } @$seen), "$name: every request completed"
        or diag explain $seen;
    is $res->{status}, $want, "$name: $want";
    is $res->{json} && $res->{json}{error}, 'temporarily_unavailable',
        "$name: JSON temporarily_unavailable";
}

# the service comes back: bounded polling, no timing asserted

sub recovers {
    my ($name, $req) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $req //= \&whoami;
    my $status;
    for (1 .. 100) {
        $status = $req->()->{status};
        last if $status == 200;
        sleep 0.1;
    }
    is $status, 200, "$name: recovers, 200 again";
}

# N requests at once, from forked children; their statuses in order

sub parallel {
    my ($n, $req) = @_;
    my $dir = $t->testdir;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $t->{requests} = 100000 * $i;        # own temporary file names
            my $st = eval { $req->()->{status} } // 0;
            open my $fh, '>', "$dir/parallel-$i" or POSIX::_exit(1);
            print $fh $st;
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid($_, 0) for @pids;
    return map {
        open my $fh, '<', "$dir/parallel-$_" or return 0;
        my $s = <$fh>;
        unlink "$dir/parallel-$_";
        0 + ($s // 0);
    } 1 .. $n;
}

# the error log from MARK on, without debug lines; failures show only the
# lines that matter

sub log_lines {
    my ($mark) = @_;
    return join '', grep { !/\[debug\]/ } split /^/m,
        substr($t->error_log, $mark);
}

sub log_like {
    my ($mark, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $log = log_lines($mark);
    ok $log =~ $re, $name or diag "no $re in:\n" . join '',
        grep { /hpki|alert|emerg|crit/ } split /^/m, $log;
}

sub log_unlike {
    my ($mark, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @hits = grep { $_ =~ $re } split /^/m, log_lines($mark);
    ok !@hits, $name or diag @hits;
}
