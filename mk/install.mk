# make install: the binaries, the nginx module, example configuration and
# the systemd unit (docs/install.md).  DESTDIR for staging; the files in
# $(SYSCONFDIR) are examples and an existing one is never overwritten.

PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
DOCDIR      ?= $(PREFIX)/share/doc/hpki-gateway
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR  ?= /etc
MODULEDIR   ?= /usr/lib/nginx/modules
NGINXCONFDIR ?= $(SYSCONFDIR)/nginx

.PHONY: install uninstall

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MODULEDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/hpki \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-available \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-enabled
	install -m 0755 $(BUILD)/hpki-signd $(BUILD)/hpki-admin \
	    $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(MODULE) $(DESTDIR)$(MODULEDIR)/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	    -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    conf/systemd/hpki-signd.service.in > $(BUILD)/hpki-signd.service
	install -m 0644 $(BUILD)/hpki-signd.service $(DESTDIR)$(UNITDIR)/
	echo 'load_module $(MODULEDIR)/ngx_http_hpki_module.so;' \
	    > $(BUILD)/50-mod-http-hpki.conf
	install -m 0644 $(BUILD)/50-mod-http-hpki.conf \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-available/
	ln -sfn ../modules-available/50-mod-http-hpki.conf \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-enabled/50-mod-http-hpki.conf
	for f in hpki.conf hpki-locations.conf hpki-signd.conf; do \
	    [ -e $(DESTDIR)$(SYSCONFDIR)/hpki/$$f ] \
	    || install -m 0644 conf/$$f $(DESTDIR)$(SYSCONFDIR)/hpki/ \
	    || exit 1; \
	done

# the examples in $(SYSCONFDIR)/hpki stay: they may have been edited
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/hpki-signd $(DESTDIR)$(SBINDIR)/hpki-admin \
	    $(DESTDIR)$(MODULEDIR)/ngx_http_hpki_module.so \
	    $(DESTDIR)$(UNITDIR)/hpki-signd.service \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-enabled/50-mod-http-hpki.conf \
	    $(DESTDIR)$(NGINXCONFDIR)/modules-available/50-mod-http-hpki.conf
	rm -rf $(DESTDIR)$(DOCDIR)
