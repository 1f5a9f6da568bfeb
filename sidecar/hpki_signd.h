/*
 * hpki-signd: the two-share RSA signing daemon.
 */

#ifndef HPKI_SIGND_H
#define HPKI_SIGND_H

#include "hpki_conf.h"


#define HPKI_SIGND_WORKER_FD    3


int hpki_signd_worker_main(hpki_conf_t *cf, int share);

#endif /* HPKI_SIGND_H */
