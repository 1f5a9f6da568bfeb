# libFuzzer targets (clang -fsanitize=fuzzer,address,undefined); included
# by mk/check.mk.  Binaries in build/fuzz/, seed corpora in
# fuzz/corpus/<target>/ (committed), crash reproducers that must keep
# passing in fuzz/regressions/<target>/, new inputs found while fuzzing in
# build/fuzz/corpus/<target>/ (not committed).  See docs/security.md.
#
#   make fuzz              each target FUZZ_SECONDS (60) seconds
#   make fuzz-short        each target 10 seconds (CI)
#   make fuzz-build        build only
#   make fuzz-seeds        rewrite fuzz/corpus/ from fuzz/seeds.c (needs the
#                          demo PKI: run make test or prove t/pki.t first)
#   FUZZ_TARGETS="frame jws" make fuzz    a subset

FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_CFLAGS   := -std=gnu11 -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined \
                 -Wall -Wextra -Werror -Wno-unused-parameter \
                 -DFUZZ_KEYS='"$(CURDIR)/fuzz/keys"' \
                 -D_GNU_SOURCE -DOPENSSL_API_COMPAT=10101 \
                 -Ingx_hpki_module -Isidecar
FUZZ_ALL      := hcrole cert base64url jws jwt_claims json_body frame \
                 signd_token csc webauthn
FUZZ_TARGETS  ?= $(FUZZ_ALL)
FUZZ_BINS     := $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_ALL))

FUZZ_MOD_CERT := ngx_hpki_module/ngx_http_hpki_cert.c
FUZZ_MOD_JWS  := ngx_hpki_module/ngx_http_hpki_jws.c
FUZZ_MOD_CSC  := ngx_hpki_module/ngx_http_hpki_csc_request.c
FUZZ_MOD_WA   := ngx_hpki_module/ngx_http_hpki_webauthn.c
FUZZ_SC_CORE  := sidecar/hpki_core.c
FUZZ_SC_FRAME := sidecar/hpki_frame.c $(FUZZ_SC_CORE)
FUZZ_SC_TOKEN := sidecar/hpki_token.c $(FUZZ_SC_CORE)

# sources and libraries per target
fuzz_src_hcrole      := $(FUZZ_MOD_CERT) $(FUZZ_MOD_JWS)
fuzz_src_cert        := $(FUZZ_MOD_CERT) $(FUZZ_MOD_JWS)
fuzz_src_base64url   := $(FUZZ_MOD_JWS)
fuzz_src_jws         := $(FUZZ_MOD_JWS)
fuzz_src_jwt_claims  := $(FUZZ_MOD_JWS)
fuzz_src_json_body   :=
fuzz_src_frame       := $(FUZZ_SC_FRAME)
fuzz_src_signd_token := $(FUZZ_SC_TOKEN)
fuzz_src_csc         := $(FUZZ_MOD_CSC)
fuzz_src_webauthn    := $(FUZZ_MOD_WA)
fuzz_libs_webauthn   := -lfido2 -lcbor
FUZZ_LIBS            := -ljansson -lcrypto

# max input length per target: a little over each parser's own limit
fuzz_len_hcrole      := 9000
fuzz_len_cert        := 16384
fuzz_len_base64url   := 12000
fuzz_len_jws         := 8300
fuzz_len_jwt_claims  := 8192
fuzz_len_json_body   := 66000
fuzz_len_frame       := 70000
fuzz_len_signd_token := 8300
fuzz_len_csc         := 66000
fuzz_len_webauthn    := 17000

.PHONY: fuzz-build fuzz-seeds

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.mk $(wildcard ngx_hpki_module/*.h \
                    sidecar/*.h) $(FUZZ_MOD_CERT) $(FUZZ_MOD_JWS) \
                    $(FUZZ_MOD_CSC) $(FUZZ_MOD_WA) $(FUZZ_SC_FRAME) \
                    $(FUZZ_SC_TOKEN) | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(fuzz_src_$*) $(FUZZ_LIBS) \
	    $(fuzz_libs_$*)

fuzz: deps $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))
	@fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: deps $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))
	@fuzz/run.sh $(FUZZ_DIR) 10 $(FUZZ_TARGETS)

# max_len per target, for fuzz/run.sh
$(FUZZ_DIR)/max_len: fuzz/fuzz.mk
	@mkdir -p $(@D)
	@: > $@
	@$(foreach t,$(FUZZ_ALL),echo "$(t) $(fuzz_len_$(t))" >> $@;)

fuzz fuzz-short: $(FUZZ_DIR)/max_len

fuzz-seeds: $(FUZZ_DIR)/seeds
	rm -rf fuzz/corpus
	mkdir -p $(addprefix fuzz/corpus/,$(FUZZ_ALL))
	$(FUZZ_DIR)/seeds fuzz/corpus fuzz/keys \
	    $$(ls -d build/t-pki/*/ | head -1)*.pem \
	    $(wildcard ../shared/pki/*.pem)
	/usr/bin/python3 t/unit/webauthn_cases.py $(FUZZ_DIR)/webauthn-cases.json \
	    fuzz/corpus/webauthn

$(FUZZ_DIR)/seeds: fuzz/seeds.c $(FUZZ_MOD_JWS) $(FUZZ_SC_FRAME) | deps
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE \
	    -Ingx_hpki_module -Isidecar -o $@ fuzz/seeds.c $(FUZZ_MOD_JWS) \
	    $(FUZZ_SC_FRAME) $(FUZZ_LIBS)
