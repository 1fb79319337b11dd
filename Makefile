# jit: the two commands for a fresh machine are `make demo` and `make test` (see README.md).
# Both need root, the Debian packages that .ci/run installs, and Rust 1.88 or newer (rustup's
# toolchain; `make toolchain` says what is missing).
CARGO ?= cargo

.PHONY: all toolchain build test test-all test-postgres demo lint bench bench-server clean install-local \
    playwright portal-screenshots fuzz

all: build

# Fails early, with what to install, when cargo is missing or older than Cargo.toml's rust-version.
toolchain:
	@CARGO="$(CARGO)" scripts/check-toolchain.sh

build: toolchain
	$(CARGO) build --workspace --all-targets

# Every test: unit tests, and end-to-end tests against the real server, jitd, libpam (through
# a bind-mounted /etc/pam.d in a private mount namespace), glibc NSS (a
# bind-mounted nsswitch.conf), OpenSSH and Chromium (the portal), and the package tests. Needs
# root for unshare.
# It runs under scripts/no-leftovers.sh, which fails the run if a test leaves a process running or
# a file in /tmp, /var/tmp, /run or /dev/shm (and keeps them off the machine either way).
test: toolchain
	scripts/no-leftovers.sh $(MAKE) --no-print-directory test-all

# The tests themselves, without that check.
test-all: build playwright test-packages
	$(CARGO) test --workspace
	$(MAKE) --no-print-directory test-postgres
	scripts/fuzz.sh short

# The fuzz targets (fuzz/, docs/security.md): 30 s each, as in make test. For the long runs whose
# figures docs/security.md records: scripts/fuzz.sh runs 10000000.
fuzz: toolchain
	scripts/fuzz.sh short

# The server's end-to-end tests (tests/tests/central_*.rs) once more, on PostgreSQL: each test
# server gets a private PostgreSQL 15 cluster, run as nobody on a unix socket in a temporary
# directory (tests/src/postgres.rs; Debian's postgresql-15). central_replicas runs on
# PostgreSQL in either run, so it is not repeated here.
CENTRAL_TESTS := $(filter-out central_replicas,$(patsubst tests/tests/%.rs,%,$(wildcard tests/tests/central_*.rs)))
test-postgres: build
	JIT_TEST_DATABASE=postgres $(CARGO) test -p jit_tests $(addprefix --test ,$(CENTRAL_TESTS))

# Playwright (PyPI, pinned) in a virtualenv inside the checkout, for the portal's browser test
# (tests/tests/portal_browser.rs drives Debian's /usr/bin/chromium; no browser is downloaded).
PLAYWRIGHT_VENV := $(CURDIR)/target/playwright-venv
PLAYWRIGHT_VERSION := 1.65.2
playwright: $(PLAYWRIGHT_VENV)/.installed-$(PLAYWRIGHT_VERSION)
$(PLAYWRIGHT_VENV)/.installed-$(PLAYWRIGHT_VERSION):
	python3 -m venv $(PLAYWRIGHT_VENV)
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PLAYWRIGHT_VENV)/bin/pip install --quiet --no-cache-dir \
	    playwright==$(PLAYWRIGHT_VERSION)
	touch $@

# The screenshots in docs/portal/ (docs/portal.md), taken by the browser test.
portal-screenshots: build playwright
	JIT_PORTAL_SCREENSHOTS=$(CURDIR)/docs/portal $(CARGO) test -p jit_tests --test portal_browser

# The main job end to end with the embedded defaults: a SQLite server on loopback, a host that
# joins it, a person who reserves `admin` and logs in with a TOTP code through real libpam.
demo: build
	scripts/no-leftovers.sh scripts/demo.sh

lint:
	@CARGO="$(CARGO)" scripts/check-toolchain.sh lint
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: toolchain
	$(CARGO) bench -p nss_jit --bench getpwnam

clean:
	$(CARGO) clean

# The server's figures in docs/benchmarks.md, SQLite and PostgreSQL side by side in one run
# (release builds; as root: a private PostgreSQL cluster per server, jitd in a mount namespace):
# writes and logins (tests/src/bin/bench_server.rs), then 10,000 watching hosts on each database
# (tests/src/bin/bench_watch.rs). A few minutes; not part of `make test`.
# The databases go on the disk (TMPDIR), as a server's would: under no-leftovers.sh /tmp is a
# tmpfs, where a commit's flush costs nothing.
RELEASE_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release
BENCH_TMP := $(RELEASE_DIR)/bench-tmp
bench-server: toolchain
	$(CARGO) build --release -p nss_jit -p pam_jit
	$(CARGO) build --release -p jit_server -p jitctl -p jitd -p jit_tests --bins
	mkdir -p $(BENCH_TMP)
	TMPDIR=$(BENCH_TMP) scripts/no-leftovers.sh $(RELEASE_DIR)/bench_server \
	    --database sqlite --database postgres
	ulimit -n 20000 && TMPDIR=$(BENCH_TMP) scripts/no-leftovers.sh $(RELEASE_DIR)/bench_watch 10000
	ulimit -n 20000 && TMPDIR=$(BENCH_TMP) JIT_TEST_DATABASE=postgres scripts/no-leftovers.sh \
	    $(RELEASE_DIR)/bench_watch 10000
	rmdir $(BENCH_TMP)

# A trial without packages: jit-server, jitctl and jitd in $(PREFIX)/bin, the modules, man pages
# and shell completions beside them, and a jitd.toml that keeps all of jitd's files under
# $(PREFIX): nothing is written to /etc, /run or /var (scripts/install-local.sh).
PREFIX ?= $(HOME)/jit-trial
install-local: build
	scripts/install-local.sh "$(PREFIX)" "$(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug"

# ---- Packages (docs/packaging.md) ---------------------------------------------------------
# `make packages`: release .deb and .rpm files of jit-host and jit-server in target/packages/.
# The packaging tools are installed once into target/tools (pinned versions, cargo install).
# PKG_PROFILE=dev packages the debug build of `make build` into target/packages-dev/ instead;
# the package tests use that, so CI does not compile everything a second time.
PKG_PROFILE ?= release
PKG_TARGET := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
PKG_BUILD := $(PKG_TARGET)/$(if $(filter dev,$(PKG_PROFILE)),debug,$(PKG_PROFILE))
PKG_OUT := $(PKG_TARGET)/packages$(if $(filter dev,$(PKG_PROFILE)),-dev)
PKG_EPOCH := $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),$(shell date +%s))
# release: debug symbols go to a -dbgsym.ddeb, RPM payload in zstd (as Fedora/RHEL 9 do);
# dev: stripped, quick compression (zstd alone would take 20 s per RPM).
PKG_DEB_FLAGS := $(if $(filter dev,$(PKG_PROFILE)),--strip --fast,--dbgsym)
# cargo-deb warns about a profile named dev (it is meant for releases). The package tests package
# the debug build on purpose, so cargo-deb gets it as `packaged-dev`, a link to target/debug.
PKG_DEB_PROFILE := $(if $(filter dev,$(PKG_PROFILE)),packaged-dev,$(PKG_PROFILE))
PKG_RPM_FLAGS := $(if $(filter dev,$(PKG_PROFILE)),--payload-compress gzip,--payload-compress zstd)
PKG_TOOLS := $(CURDIR)/target/tools
CARGO_DEB_VERSION := 3.8.0
CARGO_GENERATE_RPM_VERSION := 0.21.1
PKG_TOOLS_STAMP := $(PKG_TOOLS)/.installed-cargo-deb-$(CARGO_DEB_VERSION)-cargo-generate-rpm-$(CARGO_GENERATE_RPM_VERSION)
PKG_CARGO := PATH="$(PKG_TOOLS)/bin:$$PATH" SOURCE_DATE_EPOCH=$(PKG_EPOCH) $(CARGO)

.PHONY: packages packaging-tools package-build package-files test-packages

packaging-tools: $(PKG_TOOLS_STAMP)

# One shared build directory for both tools (they share dependencies), deleted afterwards.
# opt-level 1, no LTO: builds in ~60% of the time of their own release profiles (which matters
# on a fresh CI machine), and packages just as fast except for zstd (see PKG_RPM_FLAGS).
PKG_TOOLS_ENV := CARGO_TARGET_DIR=$(PKG_TOOLS)/build CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false
$(PKG_TOOLS_STAMP): | toolchain
	@echo "Installing cargo-deb and cargo-generate-rpm into $(PKG_TOOLS) (once; the Makefile runs them from there, whatever cargo says about PATH)"
	mkdir -p $(PKG_TOOLS)
	$(PKG_TOOLS_ENV) $(CARGO) install --locked --root $(PKG_TOOLS) \
	    --version $(CARGO_DEB_VERSION) cargo-deb
	$(PKG_TOOLS_ENV) $(CARGO) install --locked --root $(PKG_TOOLS) \
	    --version $(CARGO_GENERATE_RPM_VERSION) cargo-generate-rpm
	rm -rf $(PKG_TOOLS)/build
	touch $@

ifeq ($(PKG_PROFILE),dev)
package-build: build
else
package-build: toolchain
	$(CARGO) build --profile $(PKG_PROFILE) -p jitd -p jitctl -p pam_jit -p nss_jit -p jit_server -p jit_man
endif

# Man pages (gzipped, for both formats), shell completions (bash, zsh, fish) and stripped copies
# of the binaries: the RPMs use them all (cargo-generate-rpm does not strip), the .deb only
# libnss_jit.so (cargo-deb strips the rest itself, and keeps their debug symbols in the -dbgsym
# package).
package-files: package-build
	rm -rf $(PKG_BUILD)/man $(PKG_BUILD)/completions $(PKG_BUILD)/stripped
	SOURCE_DATE_EPOCH=$(PKG_EPOCH) $(PKG_BUILD)/jit-man man $(PKG_BUILD)/man >/dev/null
	gzip -9n $(PKG_BUILD)/man/*
	$(PKG_BUILD)/jit-man completions $(PKG_BUILD)/completions >/dev/null
	mkdir -p $(PKG_BUILD)/stripped
	for f in jitd jitctl jit-server; do \
	    strip -R .comment -o $(PKG_BUILD)/stripped/$$f $(PKG_BUILD)/$$f; done
	for f in libpam_jit.so libnss_jit.so; do \
	    strip --strip-unneeded -R .comment -o $(PKG_BUILD)/stripped/$$f $(PKG_BUILD)/$$f; done

packages: package-files $(PKG_TOOLS_STAMP)
	rm -rf $(PKG_OUT)
	mkdir -p $(PKG_OUT)
ifeq ($(PKG_PROFILE),dev)
	ln -sfn debug $(PKG_TARGET)/$(PKG_DEB_PROFILE)
endif
	$(PKG_CARGO) deb -p jitd --no-build --profile $(PKG_DEB_PROFILE) $(PKG_DEB_FLAGS) -o $(PKG_OUT)/
	$(PKG_CARGO) deb -p jit_server --no-build --profile $(PKG_DEB_PROFILE) $(PKG_DEB_FLAGS) -o $(PKG_OUT)/
	$(PKG_CARGO) generate-rpm -p jitd --profile $(PKG_PROFILE) $(PKG_RPM_FLAGS) \
	    --source-date $(PKG_EPOCH) -o $(PKG_OUT)/
	$(PKG_CARGO) generate-rpm -p jit_server --profile $(PKG_PROFILE) $(PKG_RPM_FLAGS) \
	    --source-date $(PKG_EPOCH) -o $(PKG_OUT)/
	@ls -l $(PKG_OUT)

# Package tests (needs root and network for the first run; see packaging/tests/packages.sh):
# builds the debug packages, checks them with lintian and rpmlint, and installs, uses and
# purges jit-host and jit-server in a cached Debian 12 chroot under target/pkgtest/.
test-packages:
	$(MAKE) packages PKG_PROFILE=dev
	packaging/tests/packages.sh $(PKG_TARGET)/packages-dev

