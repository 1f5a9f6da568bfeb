#!/usr/bin/perl

# make install (docs/install.md), as an operator would check it:
# - staged with DESTDIR: the binaries, the module, the nginx snippet that
#   loads it, the docs, the systemd unit and the example configuration,
#   each where docs/install.md says and with its mode; a second install
#   keeps an edited example; make uninstall removes all but /etc/hpki;
# - installed under a private prefix: the unit passes systemd-analyze
#   verify with its real paths and its offline security review rates it
#   OK or better; Debian's nginx loads the module through the installed
#   snippet (nginx -t); the installed hpki-signd accepts the shipped
#   hpki-signd.conf (-t) once its paths point at files that exist.

use strict;
use warnings;

use FindBin;
use Test::More;
use File::Temp qw(tempdir);

my $root = "$FindBin::Bin/..";
my $tmp = tempdir('hpki-install-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub make_install {
    my ($log, @vars) = @_;
    return system("make -s -C $root install @vars >$tmp/$log 2>&1") == 0;
}

sub slurp {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return <$fh>;
}

sub mode { return sprintf '%04o', (stat $_[0])[2] & 07777 }

# --- staged with DESTDIR ------------------------------------------------------

my $dest = "$tmp/dest";
ok make_install('dest.log', "DESTDIR=$dest"), 'make install DESTDIR=...'
    or diag slurp("$tmp/dest.log");

my %want = (
    '/usr/local/sbin/hpki-signd'                           => '0755',
    '/usr/local/sbin/hpki-admin'                           => '0755',
    '/usr/lib/nginx/modules/ngx_http_hpki_module.so'       => '0644',
    '/usr/local/lib/systemd/system/hpki-signd.service'     => '0644',
    '/usr/local/share/doc/hpki-gateway/sidecar.md'         => '0644',
    '/usr/local/share/doc/hpki-gateway/install.md'         => '0644',
    '/etc/nginx/modules-available/50-mod-http-hpki.conf'   => '0644',
    '/etc/hpki/hpki.conf'                                  => '0644',
    '/etc/hpki/hpki-locations.conf'                        => '0644',
    '/etc/hpki/hpki-signd.conf'                            => '0644',
);

for my $f (sort keys %want) {
    is mode("$dest$f"), $want{$f}, "$f, mode $want{$f}";
}

my $enabled = "$dest/etc/nginx/modules-enabled/50-mod-http-hpki.conf";
is readlink($enabled), '../modules-available/50-mod-http-hpki.conf',
    'modules-enabled links to modules-available, as Debian\'s modules do';
is slurp($enabled),
    "load_module /usr/lib/nginx/modules/ngx_http_hpki_module.so;\n",
    '... which loads the module from Debian\'s module directory';

my $unit = slurp("$dest/usr/local/lib/systemd/system/hpki-signd.service");
like $unit,
    qr{^ExecStart=/usr/local/sbin/hpki-signd -c /etc/hpki/hpki-signd\.conf$}m,
    'the unit starts the installed hpki-signd with /etc/hpki/hpki-signd.conf';
unlike $unit, qr/@[A-Z]+@/, '... every placeholder filled in';

open my $fh, '>>', "$dest/etc/hpki/hpki-signd.conf" or die;
print $fh "# edited by the operator\n";
close $fh;
ok make_install('dest2.log', "DESTDIR=$dest"), 'make install again';
like slurp("$dest/etc/hpki/hpki-signd.conf"), qr/edited by the operator/,
    '... keeps the edited example';

ok system("make -s -C $root uninstall DESTDIR=$dest >$tmp/un.log 2>&1") == 0,
    'make uninstall';
ok !-e "$dest/usr/local/sbin/hpki-signd"
    && !-e "$dest/usr/lib/nginx/modules/ngx_http_hpki_module.so"
    && !-e "$dest/usr/local/lib/systemd/system/hpki-signd.service"
    && !-l $enabled,
    '... removes the binaries, the module, its snippet and the unit';
ok -e "$dest/etc/hpki/hpki-signd.conf", '... and keeps /etc/hpki';

# --- installed under a private prefix -----------------------------------------

my $p = "$tmp/prefix";
ok make_install('prefix.log', "PREFIX=$p/usr", "SYSCONFDIR=$p/etc",
                "MODULEDIR=$p/modules"),
    'make install PREFIX=... SYSCONFDIR=... MODULEDIR=...'
    or diag slurp("$tmp/prefix.log");

my $service = "$p/usr/lib/systemd/system/hpki-signd.service";
my $out = `systemd-analyze verify $service 2>&1`;
is $?, 0, 'systemd-analyze verify accepts the unit' or diag $out;
is $out, '', '... without a warning';

$out = `systemd-analyze security --offline=yes $service 2>&1`;
my ($exposure, $level) = $out =~ /Overall exposure level .*?: ([\d.]+) (\w+)/;
ok defined $level && $level =~ /^(SAFE|OK)$/,
    "its offline security review: @{[ $exposure // '?' ]} @{[ $level // '?' ]}"
    or diag $out;

mkdir "$tmp/nginx";
open $fh, '>', "$tmp/nginx/nginx.conf" or die;
print $fh <<"CONF";
include $p/etc/nginx/modules-enabled/*.conf;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { }
http {
    access_log off;
    server {
        listen 127.0.0.1:1;
        location / { hpki_auth off; return 204; }
    }
}
CONF
close $fh;
my $nginx = join ' ', $ENV{HPKI_NGINX} // 'nginx', '-t -q',
    "-p $tmp/nginx -e $tmp/nginx/error.log -c $tmp/nginx/nginx.conf";
$out = `$nginx 2>&1`;
is $?, 0, 'nginx -t: the installed snippet loads the module, '
          . 'whose directives are then known' or diag $out;

# the shipped hpki-signd.conf, its paths moved to files that exist

my $conf = slurp("$p/etc/hpki/hpki-signd.conf");
$conf =~ s{/etc/hpki/}{$tmp/etc/}g;
$conf =~ s{/run/hpki/}{$tmp/run/}g;
$conf =~ s{/var/log/hpki/}{$tmp/log/}g;
mkdir "$tmp/$_" for qw(etc run log);
open $fh, '>', "$tmp/hpki-signd.conf" or die;
print $fh $conf;
close $fh;

for my $kek (qw(kek-a kek-b)) {
    open $fh, '>', "$tmp/etc/$kek" or die;
    print $fh 'k' x 32;
    close $fh;
    chmod 0600, "$tmp/etc/$kek";
}
for my $pass (qw(redis-share-a.pass redis-share-b.pass)) {
    open $fh, '>', "$tmp/etc/$pass" or die;
    print $fh "secret\n";
    close $fh;
}
system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
       . "-out $tmp/token.key 2>/dev/null && openssl pkey -in $tmp/token.key "
       . "-pubout -out $tmp/etc/token.pub.pem 2>/dev/null") == 0 or die;

$out = `$p/usr/sbin/hpki-signd -t -c $tmp/hpki-signd.conf 2>&1`;
is $?, 0, 'the installed hpki-signd accepts the shipped hpki-signd.conf (-t)'
    or diag $out;

done_testing;
