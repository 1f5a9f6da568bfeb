#!/usr/bin/perl

# hpki_lockout: misuse that only a holder of a genuine token can commit
# (a bound token with another card; a revoked token replayed) counts against
# its subject in Redis, atomically, also under parallel requests. At the
# limit the subject's tokens and card logins are refused. Forged tokens
# never count, so nobody can lock someone else out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Test::More;
use POSIX qw(_exit);

use Hpki::Test qw(jwt_claims);
use HpkiModule qw(gateway_conf link_card make_jwt);

my $t = Hpki::Test->new(need => ['module'])->start_redis
    ->write_nginx_conf(gateway_conf(http => "    hpki_lockout 5 15m;\n"))
    ->start_nginx;

plan tests => 14;

link_card($t, 'demo-doctor', 'doctor_auth');
link_card($t, 'demo-pharmacist', 'pharmacist_auth');

my $doctor = $t->login('doctor_auth');
my $claims = jwt_claims($doctor);
my $r;

# forged: the doctor's claims, a signature that is not the gateway's
my $other = $t->testdir . '/other.key';
system("openssl genrsa -out '$other' 2048 2>/dev/null") == 0 or die;
my $forged = make_jwt($t, { alg => 'RS256', typ => 'JWT',
    kid => $t->token_kid }, $claims, key => $other);

is_deeply [ parallel(8, sub { $t->http(GET => '/whoami',
    token => $forged)->{status} }) ], [ (401) x 8 ],
    'forged tokens of the doctor: 401';
is $t->redis('GET', 'hpki:fail:demo-doctor'), undef,
    '... and they count for nothing';

# the genuine token with the pharmacist's card: misuse, counted
is $t->http(GET => '/whoami', token => $doctor, cert => 'pharmacist_auth')
    ->{status}, 401, "the doctor's bound token with another card: 401";
is counter('demo-doctor', 1), 1, 'counted once';

is $t->http(GET => '/whoami', token => $doctor)->{status}, 200,
    'under the limit the token still works';

is_deeply [ parallel(6, sub { $t->http(GET => '/whoami', token => $doctor,
    cert => 'pharmacist_auth')->{status} }) ], [ (401) x 6 ],
    'six more at once: 401';
is counter('demo-doctor', 7), 7,
    'the counter is exact under parallel requests (1 + 6)';

$r = $t->http(GET => '/whoami', token => $doctor);
is $r->{status}, 403, 'at the limit the genuine token is refused: 403';
like $r->{json}{error_description}, qr/locked/, '... locked, it says';

$r = $t->http(POST => '/hpki/login/card', cert => 'doctor_auth');
is $r->{status}, 403, 'and the card login too';

is $t->http(GET => '/whoami', token => $t->login('pharmacist_auth'))
    ->{status}, 200, 'another user is not affected';

# a revoked token replayed: counted against its subject too
my $ph = $t->login('pharmacist_auth');
$t->redis('DEL', 'hpki:tok:' . jwt_claims($ph)->{jti});
is_deeply [ parallel(4, sub { $t->http(GET => '/whoami',
    token => $ph)->{status} }) ], [ (401) x 4 ],
    "the pharmacist's revoked token replayed 4 times: 401";
is counter('demo-pharmacist', 4), 4, '... counted 4 times';

# the operator unlocks by deleting the counter
$t->redis('DEL', 'hpki:fail:demo-doctor');
is $t->http(GET => '/whoami', token => $doctor)->{status}, 200,
    'unlocked: the token works again';


# the counter is written in the background, after the answer: wait for it
# (bounded), then report what it is

sub counter {
    my ($sub, $want) = @_;
    my $n;
    for (1 .. 50) {
        $n = $t->redis('GET', "hpki:fail:$sub") // 0;
        last if $n >= $want;
        select undef, undef, undef, 0.05;
    }
    return $n;
}


# N requests at once, each in its own process; their results in order

sub parallel {
    my ($n, $code) = @_;
    my @pipes;
    for my $i (1 .. $n) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            print $wr $code->();
            close $wr;
            _exit(0);
        }
        close $wr;
        push @pipes, [$pid, $rd];
    }
    my @out;
    for my $p (@pipes) {
        my ($pid, $rd) = @$p;
        local $/;
        push @out, scalar <$rd>;
        waitpid $pid, 0;
    }
    return @out;
}
