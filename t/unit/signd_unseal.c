/*
 * Test helper (not a test): opens a sealed share with its KEK and prints
 * the share in hex, so that t/sidecar/secrets.t can search every store and
 * file for the shares in clear.
 *
 *   signd_unseal KEK_FILE AAD N_HEX < BLOB
 */

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "hpki_rsa.h"


int
main(int argc, char **argv)
{
    u_char   kek[HPKI_KEK_LEN], blob[4096];
    size_t   len;
    char    *hex;
    BIGNUM  *n, *share;

    if (argc != 4) {
        fprintf(stderr, "usage: signd_unseal KEK_FILE AAD N_HEX < BLOB\n");
        return 2;
    }

    n = NULL;
    share = BN_new();
    len = fread(blob, 1, sizeof(blob), stdin);

    if (hpki_kek_load(argv[1], kek) != 0 || BN_hex2bn(&n, argv[3]) == 0
        || hpki_share_open(kek, argv[2], blob, len, n, share) != 0)
    {
        fprintf(stderr, "signd_unseal: cannot open\n");
        return 1;
    }

    hex = BN_bn2hex(share);
    printf("%s\n", hex);
    OPENSSL_free(hex);
    BN_clear_free(share);
    BN_free(n);
    return 0;
}
