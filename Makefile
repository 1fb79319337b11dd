# jit: the two commands for a fresh machine are `make demo` and `make test` (see README.md).
CARGO ?= cargo

.PHONY: all build test demo lint bench clean

all: build

build:
	$(CARGO) build --workspace --all-targets

# Every test: unit tests, and end-to-end tests against the real server, jitd, libpam (through
# pam_wrapper), glibc NSS (in a private mount namespace) and OpenSSH. Needs root for unshare.
test: build
	$(CARGO) test --workspace

# The main job end to end with the embedded defaults: a SQLite server on loopback, a host that
# joins it, a person who reserves `admin` and logs in with a TOTP code through real libpam.
demo: build
	./scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	$(CARGO) bench -p nss_jit --bench getpwnam

clean:
	$(CARGO) clean
