# PerpuSeru Hotspot: the two commands a new user runs are `make demo` and `make test`.
# Both need root (the lab builds network namespaces) on Debian 12.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian's python3 (not a per-user one) so the unprivileged portal can run the venv too
SYSTEM_PYTHON ?= /usr/bin/python3
APT_PACKAGES := nftables iproute2 procps redis-server dnsmasq-base iperf3 busybox udhcpc \
	curl python3-venv chromium chromium-driver zbar-tools freeradius freeradius-postgresql freeradius-utils \
	postgresql-15 \
	debhelper dpkg-dev fakeroot lintian groff-base prometheus prometheus-alertmanager \
	prometheus-node-exporter openssh-server openssh-client mmdebstrap
# libfaketime: the lab's clock-fault test runs the gateway at another time (tests/lab/test_faults.py)
APT_PACKAGES += faketime
PYTEST_ARGS ?=

.PHONY: help deps venv demo test test-fast lab-up lab-down lab-status lint bench clean translations \
	install uninstall deb

help:
	@echo "make demo      bring the lab up and walk a phone through a visit (root)"
	@echo "make test      run the whole test suite (root; builds its own lab)"
	@echo "make lab-down  stop the demo lab"
	@echo "make deps      install the Debian packages the lab needs"
	@echo "make install   install on this router (root; DESTDIR=/tmp/x to stage it elsewhere)"
	@echo "make uninstall remove it again (keeps config, state and the session logs)"
	@echo "make deb       build dist/perpuseru-hotspot_<version>_<arch>.deb (docs/fleet-ops.md)"

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(SYSTEM_PYTHON) || { echo "$(SYSTEM_PYTHON) missing: make deps"; exit 1; }
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

demo: deps venv
	$(PY) -m gateway.lab.demo

test: deps venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not lab" $(PYTEST_ARGS)

lab-up: venv
	$(VENV)/bin/hotspotctl lab up

lab-down: venv
	$(VENV)/bin/hotspotctl lab down

lab-status: venv
	$(VENV)/bin/hotspotctl lab status

# ruff, then the architecture contracts in pyproject.toml [tool.importlinter] (see CONTRIBUTING.md)
lint: venv
	$(VENV)/bin/ruff check gateway portal tests bench
	$(VENV)/bin/lint-imports --no-logo

bench: deps venv
	$(PY) -m bench

# Extract visitor (messages) and desk strings, merge them into the .po files, compile the .mo
# files the portal loads. Translate in portal/translations/<lang>/LC_MESSAGES/*.po, then run again.
TRANSLATIONS := portal/translations
translations: venv
	$(VENV)/bin/pybabel -q extract -F babel.cfg --ignore-dirs='desk .* _*' --no-location --sort-output \
		--project=perpuseru-hotspot -o $(TRANSLATIONS)/messages.pot portal
	$(VENV)/bin/pybabel -q extract -F babel-desk.cfg --no-location --sort-output \
		--project=perpuseru-hotspot -o $(TRANSLATIONS)/desk.pot portal
	for domain in messages desk; do \
		$(VENV)/bin/pybabel -q update --no-fuzzy-matching -i $(TRANSLATIONS)/$$domain.pot -d $(TRANSLATIONS) -D $$domain && \
		$(VENV)/bin/pybabel -q compile --statistics -d $(TRANSLATIONS) -D $$domain; \
	done
	# the HQ page (hqweb/, runs at HQ): its own catalog "hq" under hqweb/translations
	$(VENV)/bin/pybabel -q extract -F babel-hq.cfg --no-location --sort-output \
		--project=perpuseru-hotspot -o hqweb/translations/hq.pot hqweb
	for lang in id en; do \
		test -f hqweb/translations/$$lang/LC_MESSAGES/hq.po || \
			$(VENV)/bin/pybabel -q init -i hqweb/translations/hq.pot -d hqweb/translations -D hq -l $$lang; \
	done
	$(VENV)/bin/pybabel -q update --no-fuzzy-matching -i hqweb/translations/hq.pot -d hqweb/translations -D hq && \
		$(VENV)/bin/pybabel -q compile --statistics -d hqweb/translations -D hq

# On a router (Debian 12, as root): a venv under /opt, the units, the config, dnsmasq and
# Redis set up; see docs/install.md. DESTDIR stages it under another folder (tests, packaging).
DESTDIR ?=
install:
	$(SYSTEM_PYTHON) -m gateway.ops.install install $(if $(DESTDIR),--destdir "$(DESTDIR)")

uninstall:
	$(SYSTEM_PYTHON) -m gateway.ops.install uninstall $(if $(DESTDIR),--destdir "$(DESTDIR)") $(if $(PURGE),--purge)

# The Debian package, built with debhelper in a copy of the tree (build/deb) so the checkout
# stays clean; the .deb, .buildinfo and .changes land in dist/. See docs/fleet-ops.md.
# DEB_VERSION=0.1.1 builds the tree as that version (a pilot or test build; an upgrade test
# builds N and N+1 from one tree): the copy's gateway.__version__ and a changelog entry say it.
# It must be a version Python (PEP 440) and Debian both accept, e.g. 0.1.1 or 0.1.0+pilot1.
DEB_BUILD ?= build/deb
DIST ?= dist
DEB_VERSION ?=
deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "dpkg-buildpackage missing: make deps"; exit 1; }
	rm -rf $(DEB_BUILD) && mkdir -p $(DEB_BUILD)/src $(DIST)
	git ls-files -z --cached --others --exclude-standard -- . ':!tests' ':!bench' \
		| tar --null --ignore-failed-read -cf - -T - | tar -xf - -C $(DEB_BUILD)/src
	$(if $(DEB_VERSION),cd $(DEB_BUILD)/src && $(SYSTEM_PYTHON) -m gateway.ops.debversion "$(DEB_VERSION)")
	cd $(DEB_BUILD)/src && env -u PYTHONPATH dpkg-buildpackage -b -us -uc -rfakeroot
	mv $(DEB_BUILD)/*.deb $(DEB_BUILD)/*.buildinfo $(DEB_BUILD)/*.changes $(DIST)/
	@ls -l $(DIST)/*.deb

clean:
	rm -rf $(VENV) build dist *.egg-info tests/artifacts
