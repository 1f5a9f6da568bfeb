package Cms;

# Just enough DER and CMS (RFC 5652) in pure Perl to wrap a signature value
# from POST /hpki/sign into a detached SignedData that any CMS verifier
# (openssl cms -verify) accepts. Core modules only. Not a general ASN.1
# library: definite lengths, the handful of types CMS needs, nothing more.
#
#     my $attrs = Cms::signed_attrs(digest => sha256($content),
#                                   time => time);
#     my $tbs = sha256($attrs);              # what the gateway signs
#     ...                                    # POST /hpki/sign {hashes:[$tbs]}
#     my $cms = Cms::signed_data(cert => $cert_der, attrs => $attrs,
#                                signature => $sig);

use strict;
use warnings;

use Carp qw(croak);
use MIME::Base64 qw(decode_base64);
use POSIX qw(strftime);

use Exporter qw(import);
our @EXPORT_OK = qw(pem_to_der der_read der_children);


# --- object identifiers (RFC 5652 section 14, RFC 5754, RFC 8017) -------------

our %OID = (
    data                    => '1.2.840.113549.1.7.1',
    signedData              => '1.2.840.113549.1.7.2',
    contentType             => '1.2.840.113549.1.9.3',
    messageDigest           => '1.2.840.113549.1.9.4',
    signingTime             => '1.2.840.113549.1.9.5',
    sha256                  => '2.16.840.1.101.3.4.2.1',
    rsaEncryption           => '1.2.840.113549.1.1.1',
    sha256WithRSAEncryption => '1.2.840.113549.1.1.11',
);


# --- DER encoding (X.690) ------------------------------------------------------

# length octets: short form below 128, else 0x80|n followed by n octets
sub der_length {
    my ($n) = @_;
    return chr($n) if $n < 0x80;
    my $bytes = '';
    while ($n) { $bytes = chr($n & 0xff) . $bytes; $n >>= 8 }
    return chr(0x80 | length $bytes) . $bytes;
}

# one tag-length-value; TAG is the identifier octet (0x30, 0xA0, ...)
sub tlv {
    my ($tag, $value) = @_;
    return chr($tag) . der_length(length $value) . $value;
}

sub sequence { tlv(0x30, join '', @_) }

# SET OF: DER wants the encodings in ascending order (X.690 11.6)
sub set_of { tlv(0x31, join '', sort @_) }

sub null { tlv(0x05, '') }

sub octet_string { tlv(0x04, $_[0]) }

# a non-negative INTEGER (a leading 0x00 keeps it positive)
sub integer {
    my ($n) = @_;
    croak 'integer: negative' if $n < 0;
    my $bytes = '';
    do { $bytes = chr($n & 0xff) . $bytes; $n >>= 8 } while $n;
    $bytes = "\0$bytes" if ord($bytes) & 0x80;
    return tlv(0x02, $bytes);
}

# OBJECT IDENTIFIER: first two arcs as 40*a+b, then base-128 big-endian
sub oid {
    my ($dotted) = @_;
    $dotted = $OID{$dotted} // $dotted;
    my @arc = split /\./, $dotted;
    croak "oid: bad '$dotted'" if @arc < 2 || grep { !/^\d+$/ } @arc;
    my $out = '';
    for my $n (40 * shift(@arc) + shift(@arc), @arc) {
        my $chunk = chr($n & 0x7f);
        $n >>= 7;
        while ($n) { $chunk = chr(0x80 | ($n & 0x7f)) . $chunk; $n >>= 7 }
        $out .= $chunk;
    }
    return tlv(0x06, $out);
}

# UTCTime YYMMDDHHMMSSZ (RFC 5652 11.3: dates 1950-2049 as UTCTime)
sub utc_time {
    my ($epoch) = @_;
    return tlv(0x17, strftime('%y%m%d%H%M%SZ', gmtime $epoch));
}

# [n] EXPLICIT: a constructed context tag around the whole inner encoding
sub explicit { my ($n, $inner) = @_; tlv(0xA0 | $n, $inner) }

# [n] IMPLICIT on a constructed type: same contents, the tag replaced
sub implicit {
    my ($n, $encoding) = @_;
    my $el = der_read($encoding);
    return tlv(0xA0 | $n, $el->{value});
}

# AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
sub algorithm {
    my ($name, %o) = @_;
    return sequence(oid($name), $o{params} // ());
}


# --- DER reading -----------------------------------------------------------------

# the element at POS in BUF: { tag, value, tlv, end }
sub der_read {
    my ($buf, $pos) = @_;
    $pos //= 0;
    croak 'der_read: past the end' if $pos + 2 > length $buf;
    my $tag = ord substr($buf, $pos, 1);
    croak 'der_read: multi-byte tags are not supported' if ($tag & 0x1f) == 0x1f;
    my $len = ord substr($buf, $pos + 1, 1);
    my $hdr = 2;
    if ($len & 0x80) {
        my $n = $len & 0x7f;
        croak 'der_read: indefinite or huge length' if $n == 0 || $n > 4;
        $len = 0;
        $len = ($len << 8) | ord substr($buf, $pos + 2 + $_, 1) for 0 .. $n - 1;
        $hdr += $n;
    }
    croak 'der_read: truncated' if $pos + $hdr + $len > length $buf;
    return {
        tag   => $tag,
        value => substr($buf, $pos + $hdr, $len),
        tlv   => substr($buf, $pos, $hdr + $len),
        end   => $pos + $hdr + $len,
    };
}

# the elements inside a constructed value, in order
sub der_children {
    my ($value) = @_;
    my (@el, $pos);
    for ($pos = 0; $pos < length $value; ) {
        my $el = der_read($value, $pos);
        push @el, $el;
        $pos = $el->{end};
    }
    return @el;
}

sub pem_to_der {
    my ($pem) = @_;
    $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/s
        or croak 'pem_to_der: no certificate';
    return decode_base64($1);
}

# From a Certificate (RFC 5280 4.1):
#   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
#   TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL,
#       serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name, ... }
# the issuer Name and the serialNumber, each as its DER encoding.
sub issuer_and_serial {
    my ($cert_der) = @_;
    my ($tbs) = der_children(der_read($cert_der)->{value});
    my @f = der_children($tbs->{value});
    shift @f if $f[0]{tag} == 0xA0;                   # version, v3
    my ($serial, undef, $issuer) = @f;
    croak 'certificate: no serialNumber' unless $serial->{tag} == 0x02;
    croak 'certificate: no issuer' unless $issuer->{tag} == 0x30;
    return ($issuer->{tlv}, $serial->{tlv});
}


# --- CMS (RFC 5652) -----------------------------------------------------------------

# SignedAttributes ::= SET SIZE (1..MAX) OF Attribute       (5.3)
# Attribute ::= SEQUENCE { attrType OID, attrValues SET OF AttributeValue }
#
# contentType (11.1) and messageDigest (11.2) are mandatory when there are
# signed attributes; signingTime (11.3) is the usual third. Returns the DER
# SET OF encoding (tag 0x31): its SHA-256 is the hash to sign (5.4).
sub signed_attrs {
    my (%o) = @_;
    defined $o{digest} or croak 'signed_attrs: digest';
    my @attrs = (
        sequence(oid('contentType'), set_of(oid('data'))),
        sequence(oid('messageDigest'), set_of(octet_string($o{digest}))),
        sequence(oid('signingTime'), set_of(utc_time($o{time} // time))),
    );
    return set_of(@attrs);
}

# ContentInfo ::= SEQUENCE { contentType id-signedData,
#                            content [0] EXPLICIT SignedData }       (3)
#
# SignedData ::= SEQUENCE {                                          (5.1)
#     version CMSVersion,                       -- 1: only IssuerAndSerial
#     digestAlgorithms SET OF DigestAlgorithmIdentifier,
#     encapContentInfo EncapsulatedContentInfo, -- id-data, no eContent
#     certificates [0] IMPLICIT CertificateSet OPTIONAL,
#     signerInfos SET OF SignerInfo }
#
# SignerInfo ::= SEQUENCE {                                          (5.3)
#     version CMSVersion,                       -- 1: sid is IssuerAndSerial
#     sid IssuerAndSerialNumber,                -- SEQUENCE { issuer, serial }
#     digestAlgorithm DigestAlgorithmIdentifier,
#     signedAttrs [0] IMPLICIT SignedAttributes,
#     signatureAlgorithm SignatureAlgorithmIdentifier,
#     signature OCTET STRING }
#
# cert => signer's certificate (DER); extra_certs => [DER, ...];
# attrs => signed_attrs() as signed; signature => the raw value;
# sig_alg => 'rsaEncryption' (default, NULL params, RFC 3370 3.2) or
# 'sha256WithRSAEncryption' (RFC 4056 / 5754).
sub signed_data {
    my (%o) = @_;
    my ($issuer, $serial) = issuer_and_serial($o{cert});
    my $sha256 = algorithm('sha256');          # parameters absent (RFC 5754 2)
    my $sig_alg = algorithm($o{sig_alg} // 'rsaEncryption', params => null());

    my $signer_info = sequence(
        integer(1),
        sequence($issuer, $serial),
        $sha256,
        implicit(0, $o{attrs}),                # SET OF ... re-tagged 0xA0
        $sig_alg,
        octet_string($o{signature}),
    );

    my $signed_data = sequence(
        integer(1),
        set_of($sha256),
        sequence(oid('data')),                 # detached: eContent absent
        tlv(0xA0, join '', $o{cert}, @{$o{extra_certs} // []}),
        set_of($signer_info),
    );

    return sequence(oid('signedData'), explicit(0, $signed_data));
}

1;
