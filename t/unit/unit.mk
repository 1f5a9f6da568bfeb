# Unit tests of the module's pure C parts (no nginx needed).
#
# Included by the top Makefile; also works alone, from the repository root:
#     make -f t/unit/unit.mk module-unit        build build/t/unit-*
#     make -f t/unit/unit.mk module-unit-test   build and run them under prove
#
# Variables are prefixed MODULE_UNIT_ so as not to clash with the includer's.

module_unit_included := $(filter-out t/unit/unit.mk,$(MAKEFILE_LIST))
module_unit_saved_goal := $(.DEFAULT_GOAL)

MODULE_UNIT_CC      ?= $(CC)
MODULE_UNIT_CFLAGS  ?= -std=gnu11 -O2 -g -Wall -Wextra -Werror
MODULE_UNIT_LIBS    ?= -lcrypto -ljansson
MODULE_UNIT_SRC      = ngx_hpki_module/ngx_http_hpki_cert.c \
                       ngx_hpki_module/ngx_http_hpki_jws.c
MODULE_UNIT_DEPS     = $(MODULE_UNIT_SRC) t/unit/tap.h \
                       ngx_hpki_module/ngx_http_hpki_cert.h \
                       ngx_hpki_module/ngx_http_hpki_jws.h \
                       t/unit/unit.mk
MODULE_UNIT_BINS     = build/t/unit-cert build/t/unit-jws \
                       build/t/unit-inspect build/t/unit-webauthn \
                       build/t/unit-csc

.PHONY: module-unit module-unit-test

module-unit: $(MODULE_UNIT_BINS)

module-unit-test: module-unit
	prove t/unit/cert.t t/unit/jws.t t/unit/inspect.t t/unit/webauthn.t \
	    t/unit/csc.t

build/t/unit-cert: t/unit/cert.c $(MODULE_UNIT_DEPS)
	@mkdir -p $(@D)
	$(MODULE_UNIT_CC) $(MODULE_UNIT_CFLAGS) $(EXTRA_CFLAGS) \
	    -I ngx_hpki_module -o $@ t/unit/cert.c $(MODULE_UNIT_SRC) \
	    $(MODULE_UNIT_LIBS)

build/t/unit-jws: t/unit/jws.c $(MODULE_UNIT_DEPS)
	@mkdir -p $(@D)
	$(MODULE_UNIT_CC) $(MODULE_UNIT_CFLAGS) $(EXTRA_CFLAGS) \
	    -I ngx_hpki_module -o $@ t/unit/jws.c $(MODULE_UNIT_SRC) \
	    $(MODULE_UNIT_LIBS)

# ngx_http_hpki_inspect.c: /hpki/verify and hpki-admin cert inspect

MODULE_UNIT_INSPECT_SRC = ngx_hpki_module/ngx_http_hpki_inspect.c \
                          ngx_hpki_module/ngx_http_hpki_cert.c \
                          ngx_hpki_module/ngx_http_hpki_jws.c

build/t/unit-inspect: t/unit/inspect.c $(MODULE_UNIT_INSPECT_SRC) \
    ngx_hpki_module/ngx_http_hpki_inspect.h \
    ngx_hpki_module/ngx_http_hpki_cert.h t/unit/tap.h t/unit/unit.mk
	@mkdir -p $(@D)
	$(MODULE_UNIT_CC) $(MODULE_UNIT_CFLAGS) $(EXTRA_CFLAGS) \
	    -I ngx_hpki_module -o $@ t/unit/inspect.c \
	    $(MODULE_UNIT_INSPECT_SRC) $(MODULE_UNIT_LIBS)

# ngx_http_hpki_webauthn.c: FIDO (libcbor, libfido2); cases made by
# t/unit/webauthn_cases.py at test time

MODULE_UNIT_WEBAUTHN_SRC = ngx_hpki_module/ngx_http_hpki_webauthn.c \
                           ngx_hpki_module/ngx_http_hpki_jws.c

build/t/unit-webauthn: t/unit/webauthn.c t/unit/tap.h \
    $(MODULE_UNIT_WEBAUTHN_SRC) ngx_hpki_module/ngx_http_hpki_webauthn.h \
    t/unit/unit.mk
	@mkdir -p $(@D)
	$(MODULE_UNIT_CC) $(MODULE_UNIT_CFLAGS) $(EXTRA_CFLAGS) \
	    -I ngx_hpki_module -o $@ t/unit/webauthn.c \
	    $(MODULE_UNIT_WEBAUTHN_SRC) $(MODULE_UNIT_LIBS) -lfido2 -lcbor

# ngx_http_hpki_csc_request.c: the CSC API v2 request bodies

MODULE_UNIT_CSC_SRC = ngx_hpki_module/ngx_http_hpki_csc_request.c

build/t/unit-csc: t/unit/csc.c t/unit/tap.h $(MODULE_UNIT_CSC_SRC) \
    ngx_hpki_module/ngx_http_hpki_csc_request.h t/unit/unit.mk
	@mkdir -p $(@D)
	$(MODULE_UNIT_CC) $(MODULE_UNIT_CFLAGS) $(EXTRA_CFLAGS) \
	    -I ngx_hpki_module -o $@ t/unit/csc.c $(MODULE_UNIT_CSC_SRC) \
	    $(MODULE_UNIT_LIBS)

# when included, do not steal the includer's default goal
ifneq ($(module_unit_included),)
.DEFAULT_GOAL := $(module_unit_saved_goal)
endif
