# hpki-signd, hpki-admin, hpki-signd-bench and their unit tests.
# Included by the top Makefile; also usable alone:
#   make -f sidecar/sidecar.mk build/hpki-signd build/hpki-admin sidecar-unit

# standalone (make -f sidecar/sidecar.mk) or included: do not steal the
# includer's default goal
SIDECAR_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),yes)
SIDECAR_SAVED_GOAL := $(.DEFAULT_GOAL)

SIDECAR_CFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra -Werror $(EXTRA_CFLAGS)
SIDECAR_CPPFLAGS = -Isidecar -D_GNU_SOURCE -DOPENSSL_API_COMPAT=10101
SIDECAR_LIBS = -lhiredis -ljansson -lcrypto

SIDECAR_COMMON = sidecar/hpki_core.c sidecar/hpki_conf.c \
                 sidecar/hpki_frame.c sidecar/hpki_rsa.c \
                 sidecar/hpki_store.c sidecar/hpki_token.c \
                 sidecar/hpki_audit.c
SIDECAR_HEADERS = $(wildcard sidecar/*.h)

SIDECAR_UNIT = build/t/signd_frame build/t/signd_split build/t/signd_unseal \
               build/t/signd_token

.PHONY: sidecar sidecar-unit

sidecar: build/hpki-signd build/hpki-admin build/hpki-signd-bench

build/hpki-signd: sidecar/hpki_signd.c sidecar/hpki_signd_worker.c \
                  $(SIDECAR_COMMON) $(SIDECAR_HEADERS)
	@mkdir -p build
	$(CC) $(SIDECAR_CFLAGS) $(SIDECAR_CPPFLAGS) -o $@ \
	    sidecar/hpki_signd.c sidecar/hpki_signd_worker.c \
	    $(SIDECAR_COMMON) $(SIDECAR_LIBS) -lpthread

# hpki-admin cert inspect shares the module's pure C core of /hpki/verify
SIDECAR_ADMIN_INSPECT = ngx_hpki_module/ngx_http_hpki_inspect.c \
                        ngx_hpki_module/ngx_http_hpki_cert.c \
                        ngx_hpki_module/ngx_http_hpki_jws.c
SIDECAR_ADMIN_INSPECT_H = ngx_hpki_module/ngx_http_hpki_inspect.h \
                          ngx_hpki_module/ngx_http_hpki_cert.h \
                          ngx_hpki_module/ngx_http_hpki_jws.h

# hpki-admin enroll-code draws the QR code on the terminal and in a PNG
SIDECAR_ADMIN_LIBS = -lqrencode -lpng

build/hpki-admin: sidecar/hpki_admin.c $(SIDECAR_COMMON) $(SIDECAR_HEADERS) \
                  $(SIDECAR_ADMIN_INSPECT) $(SIDECAR_ADMIN_INSPECT_H)
	@mkdir -p build
	$(CC) $(SIDECAR_CFLAGS) $(SIDECAR_CPPFLAGS) -Ingx_hpki_module -o $@ \
	    sidecar/hpki_admin.c $(SIDECAR_COMMON) $(SIDECAR_ADMIN_INSPECT) \
	    $(SIDECAR_LIBS) $(SIDECAR_ADMIN_LIBS)

build/hpki-signd-bench: sidecar/hpki_bench.c $(SIDECAR_COMMON) \
                        $(SIDECAR_HEADERS)
	@mkdir -p build
	$(CC) $(SIDECAR_CFLAGS) $(SIDECAR_CPPFLAGS) -o $@ \
	    sidecar/hpki_bench.c $(SIDECAR_COMMON) $(SIDECAR_LIBS) -lpthread

sidecar-unit: $(SIDECAR_UNIT)

build/t/signd_%: t/unit/signd_%.c $(SIDECAR_COMMON) $(SIDECAR_HEADERS)
	@mkdir -p build/t
	$(CC) $(SIDECAR_CFLAGS) $(SIDECAR_CPPFLAGS) -o $@ $< \
	    $(SIDECAR_COMMON) $(SIDECAR_LIBS) -lpthread

ifeq ($(SIDECAR_STANDALONE),yes)
.DEFAULT_GOAL := sidecar
else
.DEFAULT_GOAL := $(SIDECAR_SAVED_GOAL)
endif
