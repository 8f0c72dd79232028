# Parafa: `make run` serves with a provisioned token and CA under ./data; `make test` runs every test.
# Both install the Debian packages they need when missing (with apt-get when run as root).

SHELL := /bin/bash
CARGO ?= cargo
RUN_PACKAGES := softhsm2 ca-certificates
# The desktop token's judges (tests/api/desktop_token.rs): opensc (pkcs11-tool), gnutls-bin (gnutls-cli, p11tool),
# p11-kit, libengine-pkcs11-openssl (openssl and curl with a pkcs11: key), libnss3-tools (certutil, modutil), chromium;
# gnome-keyring and dbus (tests/api/token_agent.rs: the refresh token in a Secret Service on a private session bus);
# xmlsec1 (tests/api/trusted_list.rs: the trusted list's XML signature); p11-kit (`p11-kit server`) and
# p11-kit-modules (p11-kit-client.so): SoftHSM2 behind p11-kit's RPC as a network HSM (benches/nethsm.rs).
TEST_PACKAGES := softhsm2 opensc openssl poppler-utils qpdf libnss3-tools python3-venv sqlite3 chromium \
  gnutls-bin p11-kit p11-kit-modules libengine-pkcs11-openssl gnome-keyring dbus-daemon dbus-bin xmlsec1
PG_URL := $(PARAFA_TEST_POSTGRES_URL)
# The Python the end-to-end tests run (pyHanko as the outside judge of the CSC API): made by `make venv`.
VENV := .venv
VENV_STAMP := $(VENV)/.requirements-installed
PY_REQUIREMENTS := tests/python/requirements.txt

.PHONY: run test deps-run deps-test venv venv-contract web-vendor e2e-deps build release bench fmt lint clean fuzz fuzz-deps

# Development mode (PARAFA_DEV=1): the sandbox payment and identification are on, and every page says so.
run: deps-run web-vendor
	PARAFA_DEV=1 $(CARGO) run --release --bin parafa -- serve

test: deps-test venv venv-contract web-vendor e2e-deps
	@if [ -z "$(PG_URL)" ]; then \
	  echo "######################################################################"; \
	  echo "## PARAFA_TEST_POSTGRES_URL is not set: the PostgreSQL suites are   ##"; \
	  echo "## SKIPPED. Only SQLite is tested. CI sets it (see .ci/run).         ##"; \
	  echo "######################################################################"; \
	fi
	@# The workspace's binaries: the server's tests run `parafa` and the desktop companion `parafa-token` (token/).
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi
	@if [ -z "$(PG_URL)" ]; then echo "## Reminder: PostgreSQL suites were SKIPPED (PARAFA_TEST_POSTGRES_URL unset)."; fi

bench: deps-test
	$(CARGO) bench

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps-run:
	@./hsm/install-deps.sh $(RUN_PACKAGES)

deps-test:
	@./hsm/install-deps.sh $(TEST_PACKAGES)

# .venv with tests/python/requirements.txt installed (python3-venv comes with deps-test); redone only when the stamp
# is missing or older than the list.
venv: $(VENV_STAMP)

$(VENV_STAMP): $(PY_REQUIREMENTS) | deps-test
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(PY_REQUIREMENTS)
	@touch $@

# .venv-contract with schemathesis (tests/api/contract.rs checks the server against api-spec/openapi.yaml): a venv of its
# own, as its pins (hypothesis, pytest...) have nothing to do with pyHanko's; redone when its list changes.
CONTRACT_VENV := .venv-contract
CONTRACT_VENV_STAMP := $(CONTRACT_VENV)/.requirements-installed
CONTRACT_REQUIREMENTS := tests/contract/requirements.txt

venv-contract: $(CONTRACT_VENV_STAMP)

$(CONTRACT_VENV_STAMP): $(CONTRACT_REQUIREMENTS) | deps-test
	@[ -x $(CONTRACT_VENV)/bin/python ] || python3 -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(CONTRACT_REQUIREMENTS)
	@touch $@

# pdf.js for the signing page's previews (src/web/vendor, compiled into the binary by build.rs when present; a build
# without it works, without previews); redone only when the stamp npm writes is missing or older than the lock.
WEB_VENDOR := src/web/vendor
WEB_VENDOR_STAMP := $(WEB_VENDOR)/node_modules/.package-lock.json

web-vendor: $(WEB_VENDOR_STAMP)

$(WEB_VENDOR_STAMP): $(WEB_VENDOR)/package-lock.json $(WEB_VENDOR)/package.json
	@command -v npm >/dev/null || ./hsm/install-deps.sh nodejs npm
	npm ci --prefix $(WEB_VENDOR) --no-audit --no-fund --omit=optional
	@touch $@

clean:
	$(CARGO) clean

# playwright-core (no browser download: it drives Debian's /usr/bin/chromium) for tests/api/browser.rs; redone only
# when the lock file changes. Node.js and npm: Debian's packages when missing.
E2E_STAMP := tests/e2e/node_modules/.package-lock.json

e2e-deps: $(E2E_STAMP)

$(E2E_STAMP): tests/e2e/package-lock.json | deps-test
	@command -v npm >/dev/null || ./hsm/install-deps.sh nodejs npm
	npm ci --prefix tests/e2e --no-audit --no-fund
	@touch $@

# Coverage-guided fuzzing (cargo-afl: AFL++ on stable Rust) of every parser of outside bytes, each target for
# FUZZ_SECONDS from fuzz/seeds/<target>. Crashes and hangs found are copied to fuzz/regressions/<target>/ (named by
# their SHA-256), which `make test` replays (tests/api/fuzz_replay.rs): commit them with their fix. AFL++'s state stays
# in fuzz/out/<target> (git-ignored), so a second run resumes where the first stopped.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= pdf verify tsa_query ocsp_request csc_body
# Milliseconds one input may take before AFL++ calls it a hang.
FUZZ_TIMEOUT_MS ?= 2000

fuzz: fuzz-deps
	cd fuzz && $(CARGO) afl build --release
	@mkdir -p fuzz/out
	@set -e; for t in $(FUZZ_TARGETS); do \
	  out=fuzz/out/$$t; input=fuzz/seeds/$$t; \
	  [ -d $$out/default/queue ] && input=-; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
	    $(CARGO) afl fuzz -V $(FUZZ_SECONDS) -t $(FUZZ_TIMEOUT_MS) -m none -i $$input -o $$out \
	    fuzz/target/release/parafa-fuzz $$t > $$out.log 2>&1 || { tail -20 $$out.log; exit 1; }; \
	  grep -E "execs_done|corpus_count|bitmap_cvg|saved_crashes|saved_hangs|run_time" $$out/default/fuzzer_stats; \
	  for f in $$out/default/crashes/id:* $$out/default/hangs/id:*; do \
	    [ -f "$$f" ] || continue; \
	    cp "$$f" fuzz/regressions/$$t/$$(sha256sum "$$f" | cut -c1-16); \
	    echo "finding kept: fuzz/regressions/$$t/$$(sha256sum "$$f" | cut -c1-16)"; \
	  done; \
	done

# cargo-afl (from crates.io) and the AFL++ it builds from its own sources: a C compiler and make are all it needs.
fuzz-deps:
	@command -v cargo-afl >/dev/null || $(CARGO) install cargo-afl --locked
	@# AFL++ is built once per toolchain; a later call fails saying it was "already built", which is what we want.
	@$(CARGO) afl config --build >/dev/null 2>&1 || $(CARGO) afl config --build 2>&1 | grep -q "already built"
