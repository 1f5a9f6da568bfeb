# The browser test's Node packages (playwright-core, pinned by
# package-lock.json): npm ci in t/browser when node_modules is missing or
# older than the lock file.  No browser is downloaded: the test drives
# Debian's /usr/bin/chromium.  Included by the top Makefile; see
# docs/testing.md.
#
#   make browser-deps    install them (make test and make test-asan do)

BROWSER_DIR   := t/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.package-lock.json

.PHONY: browser-deps

browser-deps: $(BROWSER_STAMP)

# npm ci writes node_modules/.package-lock.json last: it is the stamp
$(BROWSER_STAMP): $(BROWSER_DIR)/package-lock.json $(BROWSER_DIR)/package.json | deps
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: browser-deps

# make test-asan runs prove in a copy of the tree without node_modules:
# fido.mjs finds playwright-core through NODE_PATH
test-asan: browser-deps
test-asan: export HPKI_NODE_MODULES := $(CURDIR)/$(BROWSER_DIR)/node_modules
