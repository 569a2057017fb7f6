#!/usr/bin/env bash
# Runs the whole Sluice test suite on a fresh machine: installs every tool the
# tests need (Debian packages, a Python venv with the Kafka clients), then
# fmt --check, clippy -D warnings, the Rust tests, and the integration tests
# that drive the real binary with real Kafka clients.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }

# --- tools -----------------------------------------------------------------
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
# Headless browser tests of the web console (tests/integration/test_console_browser.py).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
# Network namespaces for the partition scenario (tests/integration/test_replication.py).
command -v ip >/dev/null || need_apt+=(iproute2)
# kafkajs, the Node.js client (tests/integration/test_kafkajs.py and the security suites).
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# Signing keys and JWTs for the OAUTHBEARER suite (tests/integration/test_oauthbearer.py).
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python" ]; then
  step "creating Python venv in .venv"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys; sys.exit(0)' 2>/dev/null; then
  rm -rf "$VENV"; python3 -m venv "$VENV"
fi
step "installing Python test requirements"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/integration/requirements.txt

step "installing kafkajs (tests/integration/js, pinned by package-lock.json)"
(cd tests/integration/js && npm ci --no-audit --no-fund --silent)

# --- Rust ------------------------------------------------------------------
# Build time is most of this script's 45 minutes on two cores, so the test
# builds carry line tables only (backtraces keep file:line; full debug info
# makes every test binary's link slow), and the release binary the
# integration tests drive is built without cross-crate LTO (same code,
# minutes less linking; the shipped profile in Cargo.toml keeps thin LTO,
# which only the benchmarks measure).
# A fresh clone gains nothing from incremental compilation, which only adds
# the cost of writing its caches to every debug build.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The release binary the integration tests run, and the fuzz build, need no
# debug info here: it only lengthens the two slowest builds (panics still
# name their file and line).
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-false}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
export CARGO_PROFILE_TEST_DEBUG="${CARGO_PROFILE_TEST_DEBUG:-line-tables-only}"
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, property, in-process tests)"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

step "hot-path benchmarks, one iteration each (regression guard; timings in docs/benchmarks.md)"
cargo test -p sluice-broker --bench hot_path --locked

step "fuzz targets: ${SLUICE_FUZZ_SECONDS:-10}s each from the committed corpus (docs/fuzzing.md)"
./scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-10}"

# --- integration: the real binary, real clients -----------------------------
step "building the sluice binary (release)"
CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-off}" cargo build --release --locked -p sluice
export SLUICE_BIN=$ROOT/target/release/sluice

# Most suites spend their time waiting on client timeouts, so they run three
# at a time (pytest-xdist, one file per worker); the suites that measure
# time or rates, or load the machine, then run alone (conftest.py,
# SERIAL_SUITES). A failure in the first run still lets the second run; a run that selects
# nothing (exit 5, e.g. a `-k` that matches only the other half) is no failure.
step "integration tests, parallel suites (pytest -n 3, real Kafka clients)"
status=0
"$VENV/bin/python" -m pytest tests/integration -q -ra -m "not serial" -n 3 --dist loadfile "$@" || { rc=$?; [ $rc -eq 5 ] || status=$rc; }
step "integration tests, serial suites"
"$VENV/bin/python" -m pytest tests/integration -q -ra -m serial "$@" || { rc=$?; [ $rc -eq 5 ] || status=$rc; }
exit $status
