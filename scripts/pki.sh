#!/bin/sh
# Generate a demo PKI that mirrors HPKI (shared/domain/HPKI.md section 2).
#
#   scripts/pki.sh OUTDIR [--jpki]            generate (once: skipped if OUTDIR/.done)
#   scripts/pki.sh OUTDIR sign-csr CSR OUT ROLE
#                                             issue an HPKI *signing* certificate
#                                             (the "second certificate") from CSR
#   scripts/pki.sh OUTDIR auth-csr CSR OUT ROLE
#                                             issue an HPKI authentication
#                                             certificate from CSR
#
# ROLE is the hcRole free text ("Medical Doctor", "Pharmacist", ...) or "-" for
# none. OUTDIR/manifest lists every file as NAME=FILE (relative to OUTDIR);
# docs/demo.md describes them. Private keys are mode 0600.
#
# Environment (all optional):
#   HPKI_AUTH_POLICY  EE authentication policy, default 1.2.392.100495.1.5.1.2.0.1
#                     (the exact EE arc is unverified, so it is a parameter)
#   HPKI_SIGN_POLICY  EE signing policy, default 1.2.392.100495.1.5.1.1.0.1
#   HPKI_EE_DAYS      end-entity validity, default 1826 (about 5 years)
#   OPENSSL           the openssl binary, default openssl
set -eu

OPENSSL=${OPENSSL:-openssl}
AUTH_POLICY=${HPKI_AUTH_POLICY:-1.2.392.100495.1.5.1.2.0.1}
SIGN_POLICY=${HPKI_SIGN_POLICY:-1.2.392.100495.1.5.1.1.0.1}
AUTH_CA_POLICY=1.2.392.100495.1.5.1.2.3.1
SIGN_CA_POLICY=1.2.392.100495.1.5.1.1.3.1
JPKI_AUTH_POLICY=1.2.392.200149.8.5.1.3
JPKI_SIGN_POLICY=1.2.392.200149.8.5.1.1
HCROLE_ATTR=1.0.17090.0.1
HCROLE_SCHEME=1.2.392.100495.1.6.1.1
EE_DAYS=${HPKI_EE_DAYS:-1826}
CA_DAYS=7300

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "pki.sh: $*" >&2
    exit 1
}

[ $# -ge 1 ] || usage
OUT=$1
shift


# --- helpers ---------------------------------------------------------------

# newkey FILE: an RSA-2048 private key, mode 0600
newkey() {
    (umask 077 && "$OPENSSL" genpkey -algorithm RSA \
        -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null)
    chmod 600 "$1"
}

# check_role ROLE: the role goes into an openssl config file verbatim
check_role() {
    case $1 in
    -) ;;
    *[!A-Za-z0-9\ .,\'\(\)/-]* | "") die "role '$1': use letters, digits, space and .,'()/-" ;;
    esac
}

# hcrole_sections NAME ROLE SHAPE [CODE]: ASN1_generate_nconf sections for a
# subjectDirectoryAttributes value holding one hcRole attribute.
#   SHAPE field:    Attribute = SEQUENCE { OID, SET { SET { HCActor } } }
#                   (what HPKI certificates in the field carry)
#   SHAPE standard: Attribute = SEQUENCE { OID, SET { HCActor } }
#   CODE: optional codeDataValue (NumericString), "do not use" in Japan
hcrole_sections() {
    _n=$1 _role=$2 _shape=$3 _code=${4:-}
    cat <<EOF

[${_n}_sda]
attr = SEQUENCE:${_n}_attr

[${_n}_attr]
type = OID:$HCROLE_ATTR
EOF
    if [ "$_shape" = field ]; then
        cat <<EOF
values = SET:${_n}_values

[${_n}_values]
extra = SET:${_n}_set
EOF
    else
        cat <<EOF
values = SET:${_n}_set
EOF
    fi
    cat <<EOF

[${_n}_set]
actor = SEQUENCE:${_n}_actor

[${_n}_actor]
codedData = EXPLICIT:0,SET:${_n}_coded

[${_n}_coded]
scheme = EXPLICIT:0,OID:$HCROLE_SCHEME
EOF
    if [ -n "$_code" ]; then
        echo "value = EXPLICIT:1,NUMERICSTRING:$_code"
    fi
    echo "text = EXPLICIT:2,FORMAT:UTF8,UTF8String:$_role"
}

# kanji_san NAME KANJI_NAME KANJI_ORG: subjectAltName with a directoryName
# holding the kanji name and institution, as HPKI certificates do.
# Written with ASN1 syntax because openssl's dirName: parser is ASCII-only.
kanji_san_sections() {
    cat <<EOF

[${1}_san]
dirName = EXPLICIT:4,SEQUENCE:${1}_dn

[${1}_dn]
o = SET:${1}_rdn_o
cn = SET:${1}_rdn_cn

[${1}_rdn_o]
atv = SEQUENCE:${1}_atv_o

[${1}_atv_o]
type = OID:organizationName
value = FORMAT:UTF8,UTF8String:$3

[${1}_rdn_cn]
atv = SEQUENCE:${1}_atv_cn

[${1}_atv_cn]
type = OID:commonName
value = FORMAT:UTF8,UTF8String:$2
EOF
}

# ca_init DIR: an `openssl ca` database (lets tests revoke and make CRLs)
ca_init() {
    mkdir -p "$1/newcerts"
    : > "$1/index.txt"
    echo "unique_subject = no" > "$1/index.txt.attr"
    "$OPENSSL" rand -hex 16 > "$1/serial"
    echo 1000 > "$1/crlnumber"
    cat > "$1/ca.cnf" <<'EOF'
# `openssl ca` configuration; dir comes from the environment so that the
# PKI directory can be moved.
[ ca ]
default_ca = demo_ca

[ demo_ca ]
dir              = $ENV::HPKI_CA_DIR
database         = $dir/index.txt
new_certs_dir    = $dir/newcerts
serial           = $dir/serial
crlnumber        = $dir/crlnumber
default_md       = sha256
default_days     = 1826
default_crl_days = 30
policy           = policy_any
preserve         = yes
email_in_dn      = no
unique_subject   = no
copy_extensions  = none
name_opt         = ca_default
cert_opt         = ca_default

[ policy_any ]
countryName            = optional
stateOrProvinceName    = optional
localityName           = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = optional
serialNumber           = optional
EOF
}

# ca_issue CA CSR OUT EXTFILE SECTION [-days N | -startdate S -enddate E] [-subj S]
ca_issue() {
    _ca=$1 _csr=$2 _out=$3 _ext=$4 _sect=$5
    shift 5
    case "$*" in *-startdate* | *-days*) ;; *) set -- -days "$EE_DAYS" "$@" ;; esac
    HPKI_CA_DIR="$OUT/ca/$_ca" "$OPENSSL" ca -batch -notext \
        -config "$OUT/ca/$_ca/ca.cnf" \
        -cert "$OUT/$_ca-ca.pem" -keyfile "$OUT/$_ca-ca.key" \
        -extfile "$_ext" -extensions "$_sect" \
        -in "$_csr" -out "$_out" "$@" 2>"$OUT/.openssl.err" ||
        { cat "$OUT/.openssl.err" >&2; die "issuing $_out failed"; }
    rm -f "$OUT/.openssl.err"
}

# ca_revoke CA CERT
ca_revoke() {
    HPKI_CA_DIR="$OUT/ca/$1" "$OPENSSL" ca -batch -config "$OUT/ca/$1/ca.cnf" \
        -cert "$OUT/$1-ca.pem" -keyfile "$OUT/$1-ca.key" \
        -revoke "$2" -crl_reason keyCompromise 2>/dev/null
}

# ca_crl CA: write CA-ca.crl (PEM)
ca_crl() {
    HPKI_CA_DIR="$OUT/ca/$1" "$OPENSSL" ca -batch -config "$OUT/ca/$1/ca.cnf" \
        -cert "$OUT/$1-ca.pem" -keyfile "$OUT/$1-ca.key" \
        -gencrl -out "$OUT/$1-ca.crl" 2>/dev/null
}

# csr KEY SUBJECT OUT
csr() {
    "$OPENSSL" req -new -key "$1" -subj "$2" -utf8 -out "$3"
}

# root NAME SUBJECT: a self-signed root CA
root() {
    newkey "$OUT/$1-ca.key"
    cat > "$OUT/ca/$1.ext" <<EOF
[ req ]
distinguished_name = dn
[ dn ]
[ v3 ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
EOF
    ca_init "$OUT/ca/$1"
    "$OPENSSL" req -x509 -new -key "$OUT/$1-ca.key" -subj "$2" -sha256 \
        -days $CA_DAYS -set_serial "0x$("$OPENSSL" rand -hex 8)" \
        -config "$OUT/ca/$1.ext" -extensions v3 -out "$OUT/$1-ca.pem"
}

# intermediate NAME PARENT SUBJECT POLICY: a CA under PARENT
intermediate() {
    newkey "$OUT/$1-ca.key"
    cat > "$OUT/ca/$1.ext" <<EOF
[ v3 ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
certificatePolicies    = critical, $4
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
    ca_init "$OUT/ca/$1"
    csr "$OUT/$1-ca.key" "$3" "$OUT/ca/$1.csr"
    ca_issue "$2" "$OUT/ca/$1.csr" "$OUT/$1-ca.pem" "$OUT/ca/$1.ext" v3 \
        -days $CA_DAYS
}

# ee_ext NAME KIND ROLE SHAPE [CODE] [KANJI_NAME KANJI_ORG]: an extension file
# for an HPKI end entity; KIND is auth or sign; ROLE "-" for no hcRole.
ee_ext() {
    _n=$1 _kind=$2 _r=$3 _shape=$4 _code=${5:-} _kn=${6:-} _ko=${7:-}
    {
        echo "[ v3 ]"
        echo "basicConstraints       = critical, CA:FALSE"
        if [ "$_kind" = auth ]; then
            echo "keyUsage               = critical, digitalSignature"
            echo "extendedKeyUsage       = clientAuth"
            echo "certificatePolicies    = critical, $AUTH_POLICY"
        else
            echo "keyUsage               = critical, nonRepudiation"
            echo "certificatePolicies    = critical, $SIGN_POLICY"
        fi
        echo "subjectKeyIdentifier   = hash"
        echo "authorityKeyIdentifier = keyid:always"
        [ -n "$_kn" ] && echo "subjectAltName         = ASN1:SEQUENCE:${_n}_san"
        [ "$_r" != - ] &&
            echo "2.5.29.9               = ASN1:SEQUENCE:${_n}_sda"
        [ -n "$_kn" ] && kanji_san_sections "$_n" "$_kn" "$_ko"
        [ "$_r" != - ] && hcrole_sections "$_n" "$_r" "$_shape" "$_code"
        true
    } > "$OUT/ca/$_n.ext"
}

# person NAME CA KIND ROLE SHAPE CODE SUBJECT KANJI_NAME KANJI_ORG [ca args]
person() {
    _p=$1 _pca=$2 _pkind=$3 _prole=$4 _pshape=$5 _pcode=$6 _psubj=$7
    _pkn=$8 _pko=$9
    shift 9
    newkey "$OUT/$_p.key"
    ee_ext "$_p" "$_pkind" "$_prole" "$_pshape" "$_pcode" "$_pkn" "$_pko"
    csr "$OUT/$_p.key" "$_psubj" "$OUT/ca/$_p.csr"
    ca_issue "$_pca" "$OUT/ca/$_p.csr" "$OUT/$_p.pem" "$OUT/ca/$_p.ext" v3 "$@"
}


# --- sign-csr / auth-csr: issue from a CSR ----------------------------------

if [ $# -ge 1 ] && { [ "$1" = sign-csr ] || [ "$1" = auth-csr ]; }; then
    [ $# -eq 4 ] || usage
    mode=$1 in=$2 out=$3 role=$4
    [ -f "$OUT/.done" ] || die "$OUT: no PKI here (run scripts/pki.sh $OUT first)"
    [ -r "$in" ] || die "$in: cannot read the CSR"
    check_role "$role"
    OUT=$(cd "$OUT" && pwd)
    kind=sign ca=sign
    [ "$mode" = auth-csr ] && kind=auth ca=auth
    (
        # one issuer at a time: `openssl ca` keeps a database
        flock 9
        n=csr-$$
        ee_ext "$n" "$kind" "$role" field
        ca_issue "$ca" "$in" "$out.tmp" "$OUT/ca/$n.ext" v3
        rm -f "$OUT/ca/$n.ext"
    ) 9>"$OUT/.lock"
    mv -f "$out.tmp" "$out"
    exit 0
fi


# --- generate the demo PKI -------------------------------------------------

jpki=no
while [ $# -gt 0 ]; do
    case $1 in
    --jpki) jpki=yes ;;
    *) usage ;;
    esac
    shift
done

command -v "$OPENSSL" >/dev/null || die "openssl not found"

# Build JPKI parts into an existing PKI on request.
gen_jpki() {
    root jpki "/C=JP/O=Demo JPKI/OU=Demo JPKI Root CA/CN=Demo JPKI CA"
    # user authentication (利用者証明用): no name, only the certificate itself
    newkey "$OUT/jpki-auth.key"
    cat > "$OUT/ca/jpki-auth.ext" <<EOF
[ v3 ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
certificatePolicies    = critical, $JPKI_AUTH_POLICY
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
    csr "$OUT/jpki-auth.key" "/C=JP/CN=JPKI-AUTH-$("$OPENSSL" rand -hex 6 |
        tr a-f A-F)" "$OUT/ca/jpki-auth.csr"
    ca_issue jpki "$OUT/ca/jpki-auth.csr" "$OUT/jpki-auth.pem" \
        "$OUT/ca/jpki-auth.ext" v3
    # signing (署名用): name, birth date, sex and home address in otherNames
    newkey "$OUT/jpki-sign.key"
    cat > "$OUT/ca/jpki-sign.ext" <<EOF
[ v3 ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, nonRepudiation
certificatePolicies    = critical, $JPKI_SIGN_POLICY
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
subjectAltName         = @jpki_san

[ jpki_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8String:山田 太郎
otherName.2 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8String:19800101
otherName.3 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8String:1
otherName.4 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8String:東京都千代田区霞が関1-2-2
EOF
    csr "$OUT/jpki-sign.key" "/C=JP/L=Tokyo/CN=JPKI-SIGN-$("$OPENSSL" rand -hex 6 |
        tr a-f A-F)" "$OUT/ca/jpki-sign.csr"
    ca_issue jpki "$OUT/ca/jpki-sign.csr" "$OUT/jpki-sign.pem" \
        "$OUT/ca/jpki-sign.ext" v3
    cat >> "$OUT/manifest" <<EOF
# JPKI (My Number card), --jpki
jpki_ca_cert=jpki-ca.pem
jpki_ca_key=jpki-ca.key
jpki_auth_cert=jpki-auth.pem
jpki_auth_key=jpki-auth.key
jpki_sign_cert=jpki-sign.pem
jpki_sign_key=jpki-sign.key
EOF
    touch "$OUT/.done-jpki"
}

if [ -f "$OUT/.done" ]; then
    if [ $jpki = yes ] && [ ! -f "$OUT/.done-jpki" ]; then
        OUT=$(cd "$OUT" && pwd)
        ( flock 9; [ -f "$OUT/.done-jpki" ] || gen_jpki ) 9>"$OUT/.lock"
    fi
    exit 0
fi

# Generate into a private directory, then rename it into place, so that
# concurrent runs (prove -j) never see half a PKI.
final=$OUT
parent=$(dirname "$final")
mkdir -p "$parent"
parent=$(cd "$parent" && pwd)
final=$parent/$(basename "$final")
OUT=$(mktemp -d "$final.tmp.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
chmod 755 "$OUT"
mkdir -p "$OUT/ca"

# Roots: the HPKI root, and a separate root for the gateway's server certificate
root root "/C=JP/O=Demo HPKI/OU=Demo HPKI Root CA/CN=Demo HPKI Root CA"
root server "/C=JP/O=Demo HPKI Gateway/CN=Demo Server CA"

# HPKI CAs: authentication and signing, with the real CA policy arcs
intermediate auth root \
    "/C=JP/O=Demo HPKI/OU=Demo HPKI CA/CN=Demo-HPKI-AuthCA-forAuthentication-forIndividual" \
    "$AUTH_CA_POLICY"
intermediate sign root \
    "/C=JP/O=Demo HPKI/OU=Demo HPKI CA/CN=Demo-HPKI-SignCA-forNonRepudiation" \
    "$SIGN_CA_POLICY"

DOCTOR="/C=JP/O=Demo Clinic/CN=Taro Yamada/serialNumber=HPKI-D-00000001"
PHARMACIST="/C=JP/O=Demo Pharmacy/CN=Hanako Suzuki/serialNumber=HPKI-P-00000002"

# The demo doctor's HPKI card: authentication and signing certificates
person doctor-auth auth auth "Medical Doctor" field "" "$DOCTOR" \
    "山田 太郎" "デモクリニック"
person doctor-sign sign sign "Medical Doctor" field "" "$DOCTOR" \
    "山田 太郎" "デモクリニック"
# The demo pharmacist; its hcRole carries a codeDataValue, like the second
# test vector of HPKI.md, so the parser meets the optional field too
person pharmacist-auth auth auth "Pharmacist" field 123 "$PHARMACIST" \
    "鈴木 花子" "デモ薬局"

# Negative and compatibility cases
person doctor-auth-norole auth auth - field "" \
    "/C=JP/O=Demo Clinic/CN=Jiro Norole/serialNumber=HPKI-D-00000003" "" ""
person doctor-auth-std auth auth "Medical Doctor" standard "" \
    "/C=JP/O=Demo Clinic/CN=Saburo Standard/serialNumber=HPKI-D-00000004" "" ""
person doctor-auth-expired auth auth "Medical Doctor" field "" \
    "/C=JP/O=Demo Clinic/CN=Shiro Expired/serialNumber=HPKI-D-00000005" "" "" \
    -startdate 200101000000Z -enddate 210101000000Z
person doctor-auth-revoked auth auth "Medical Doctor" field "" \
    "/C=JP/O=Demo Clinic/CN=Goro Revoked/serialNumber=HPKI-D-00000006" "" ""
ca_revoke auth "$OUT/doctor-auth-revoked.pem"
ca_crl auth
ca_crl sign
ca_crl root
# An authentication certificate from a CA the gateway does not trust
root rogue "/C=JP/O=Rogue/CN=Rogue Root CA"
person rogue-auth rogue auth "Medical Doctor" field "" \
    "/C=JP/O=Rogue Clinic/CN=Mallory/serialNumber=HPKI-D-99999999" "" ""

# A whole second-certificate key (for `hpki-admin key import`, and to check
# that a split-key signature equals OpenSSL's, byte for byte)
person doctor-second sign sign "Medical Doctor" field "" "$DOCTOR" "" ""

# The gateway's TLS server certificate
newkey "$OUT/server.key"
cat > "$OUT/ca/server-ee.ext" <<EOF
[ v3 ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
csr "$OUT/server.key" "/C=JP/O=Demo HPKI Gateway/CN=localhost" "$OUT/ca/server.csr"
ca_issue server "$OUT/ca/server.csr" "$OUT/server.pem" "$OUT/ca/server-ee.ext" v3

# Bundles
cat "$OUT/auth-ca.pem" "$OUT/root-ca.pem" > "$OUT/client-ca-bundle.pem"
cat "$OUT/sign-ca.pem" "$OUT/root-ca.pem" > "$OUT/sign-chain.pem"
cat "$OUT/server.pem" "$OUT/server-ca.pem" > "$OUT/server-fullchain.pem"
cat "$OUT/auth-ca.crl" "$OUT/root-ca.crl" > "$OUT/client-crl-bundle.pem"

cat > "$OUT/manifest" <<EOF
# Demo HPKI PKI made by scripts/pki.sh: NAME=FILE, relative to this directory.
# See docs/demo.md. Keys are RSA-2048, mode 0600.
root_ca_cert=root-ca.pem
root_ca_key=root-ca.key
root_ca_crl=root-ca.crl
auth_ca_cert=auth-ca.pem
auth_ca_key=auth-ca.key
auth_ca_crl=auth-ca.crl
sign_ca_cert=sign-ca.pem
sign_ca_key=sign-ca.key
sign_ca_crl=sign-ca.crl
server_ca_cert=server-ca.pem
server_ca_key=server-ca.key
server_cert=server.pem
server_key=server.key
server_fullchain=server-fullchain.pem
client_ca_bundle=client-ca-bundle.pem
client_crl_bundle=client-crl-bundle.pem
sign_chain=sign-chain.pem
doctor_auth_cert=doctor-auth.pem
doctor_auth_key=doctor-auth.key
doctor_sign_cert=doctor-sign.pem
doctor_sign_key=doctor-sign.key
doctor_second_cert=doctor-second.pem
doctor_second_key=doctor-second.key
pharmacist_auth_cert=pharmacist-auth.pem
pharmacist_auth_key=pharmacist-auth.key
norole_auth_cert=doctor-auth-norole.pem
norole_auth_key=doctor-auth-norole.key
std_auth_cert=doctor-auth-std.pem
std_auth_key=doctor-auth-std.key
expired_auth_cert=doctor-auth-expired.pem
expired_auth_key=doctor-auth-expired.key
revoked_auth_cert=doctor-auth-revoked.pem
revoked_auth_key=doctor-auth-revoked.key
rogue_ca_cert=rogue-ca.pem
rogue_auth_cert=rogue-auth.pem
rogue_auth_key=rogue-auth.key
EOF

[ $jpki = yes ] && gen_jpki

rm -f "$OUT"/ca/*.csr
touch "$OUT/.done"

# Move into place; if another run got there first, keep its PKI.
if mv -T "$OUT" "$final" 2>/dev/null; then
    trap - EXIT
    OUT=$final
elif [ -f "$final/.done" ]; then
    exit 0
else
    die "$final exists and is not a finished PKI; remove it"
fi
