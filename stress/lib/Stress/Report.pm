package Stress::Report;

# Reading the load generator's logs back: events, per-second counts and
# latencies, per-window summaries; and a small TAP-like checker that ends
# with "N passed, N failed".

use strict;
use warnings;

use Exporter qw(import);
our @EXPORT_OK = qw(read_events per_second pct summarize);

# [ { t0, t1, kind, variant, status, verdict, note } ] sorted by t1,
# and { connects, retries } summed over the clients
sub read_events {
    my (@files) = @_;
    my (@ev, %meta);
    for my $f (@files) {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            if (/^# (.*)/) {
                for (split ' ', $1) { my ($k, $v) = split /=/; $meta{$k} += $v }
                next;
            }
            my ($t0, $t1, $kind, $variant, $status, $verdict, $note) = split ' ';
            next unless defined $verdict;
            push @ev, { t0 => $t0, t1 => $t1, kind => $kind,
                variant => $variant, status => $status, verdict => $verdict,
                note => $note // '' };
        }
    }
    @ev = sort { $a->{t1} <=> $b->{t1} } @ev;
    return (\@ev, \%meta);
}

sub pct {
    my ($sorted, $p) = @_;
    return 0 unless @$sorted;
    my $i = int($p / 100 * $#$sorted + 0.5);
    return $sorted->[$i];
}

# per-second rows: second since T0, counts per kind:status, p50/p99 ms
sub per_second {
    my ($ev, $t0, $file, $phase_at) = @_;
    my %sec;
    for my $e (@$ev) {
        my $s = int($e->{t1} - $t0);
        $sec{$s}{"$e->{kind}:$e->{status}"}++;
        push @{$sec{$s}{lat}}, 1000 * ($e->{t1} - $e->{t0});
    }
    my %cols;
    for my $s (values %sec) { $cols{$_} = 1 for grep { $_ ne 'lat' } keys %$s }
    my @cols = sort keys %cols;
    open my $fh, '>', $file or die "$file: $!";
    print $fh join("\t", 'second', 'phase', @cols, 'p50_ms', 'p99_ms'), "\n";
    for my $s (sort { $a <=> $b } keys %sec) {
        my @l = sort { $a <=> $b } @{$sec{$s}{lat}};
        print $fh join("\t", $s, $phase_at ? $phase_at->($t0 + $s) : '-',
            (map { $sec{$s}{$_} // 0 } @cols),
            sprintf('%.1f', pct(\@l, 50)), sprintf('%.1f', pct(\@l, 99))),
            "\n";
    }
    close $fh;
}

# counts and latencies of a list of events
sub summarize {
    my ($ev) = @_;
    my %s = (n => scalar @$ev, ok => 0, err => 0, wrong => 0);
    my (%lat, %status);
    for my $e (@$ev) {
        $s{$e->{verdict}}++;
        $status{"$e->{kind}:$e->{status}"}++;
        push @{$lat{$e->{kind}}}, 1000 * ($e->{t1} - $e->{t0});
    }
    for my $k (keys %lat) {
        my @l = sort { $a <=> $b } @{$lat{$k}};
        $s{lat}{$k} = { p50 => pct(\@l, 50), p99 => pct(\@l, 99),
                        max => $l[-1], n => scalar @l };
    }
    $s{status} = \%status;
    return \%s;
}


# --- checks -------------------------------------------------------------------------

package Stress::Checks;

sub new { bless { n => 0, failed => 0, fails => [] }, shift }

sub ok {
    my ($self, $ok, $name, @diag) = @_;
    $self->{n}++;
    printf "%s %d - %s\n", $ok ? 'ok' : 'not ok', $self->{n}, $name;
    unless ($ok) {
        $self->{failed}++;
        push @{$self->{fails}}, $name;
        print "#   $_\n" for map { split /\n/ } @diag;
    }
    return $ok;
}

sub done {
    my ($self) = @_;
    my $passed = $self->{n} - $self->{failed};
    print "1..$self->{n}\n";
    print "# failed: $_\n" for @{$self->{fails}};
    print "$passed passed, $self->{failed} failed\n";
    return $self->{failed} ? 1 : 0;
}

1;
