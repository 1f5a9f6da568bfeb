# HPKI remote-signing gateway: see README.md.

SHELL        := /bin/bash
NGINX_SRC    ?= /usr/share/nginx/src
BUILD        := build
NGINX_BUILD  := $(BUILD)/nginx
MODULE       := $(BUILD)/ngx_http_hpki_module.so
EXTRA_CFLAGS ?=
PROVE_ARGS   ?= -r t/

MODULE_SRCS  := config $(wildcard ngx_hpki_module/*.c ngx_hpki_module/*.h)

.PHONY: all deps module sidecar unit run stop test bench clean distclean

all: module sidecar unit

deps:
	@scripts/deps.sh

include sidecar/sidecar.mk
include t/unit/unit.mk
-include mk/check.mk
-include stress/stress.mk
-include t/browser/browser.mk
include mk/install.mk

module: $(MODULE)

sidecar: $(BUILD)/hpki-signd $(BUILD)/hpki-admin

unit: sidecar-unit module-unit

# Debian's nginx-dev ships the configured headers; configure a copy of it
# with Debian's own flags so that the module is binary-compatible.
$(NGINX_BUILD)/objs/Makefile: config | deps
	rm -rf $(NGINX_BUILD)
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(NGINX_BUILD)
	cd $(NGINX_BUILD) && . ./conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$(EXTRA_CFLAGS)" \
	    --with-ld-opt="$(EXTRA_LDFLAGS)" \
	    --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(MODULE): $(NGINX_BUILD)/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -s -C $(NGINX_BUILD) -f objs/Makefile modules
	cp $(NGINX_BUILD)/objs/ngx_http_hpki_module.so $@.tmp
	mv -f $@.tmp $@

run: all
	@scripts/run.sh

stop:
	@scripts/stop.sh

test: all
	prove $(PROVE_ARGS)

# every bench/*.sh, each printing its figures; see docs/benchmarks.md
bench: all
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

clean:
	rm -rf $(BUILD)

distclean: stop clean
	rm -rf run
