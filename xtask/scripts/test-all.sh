#!/usr/bin/env bash
# Every test provd has, as CI runs it: formatting and lints, unit/property/integration tests,
# the end-to-end suites against real clients in network namespaces, a short fuzz run of every
# target, and a smoke run of every benchmark command. Installs what it needs first.
# Needs root (network namespaces, port 67). Ends with 'N passed, M failed' over the steps.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "test-all.sh: needs root (network namespaces); try: sudo $0" >&2; exit 1; }

bash xtask/scripts/install-deps.sh || { echo "test-all: installing dependencies failed" >&2; exit 1; }

passed=0; failed=0; failures=()
step() { # name, command...
  local name=$1; shift
  echo; echo "=== $name: $*"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
step unit-tests cargo test --workspace --locked
step e2e-dhcp cargo xtask e2e dhcp
step e2e-tftp cargo xtask e2e tftp
step e2e-mta cargo xtask e2e mta
step e2e-fastpath cargo xtask e2e fastpath
step e2e-http cargo xtask e2e http
step e2e-acs cargo xtask e2e acs
step e2e-api cargo xtask e2e api
step e2e-ui cargo xtask e2e ui
step e2e-hardening cargo xtask e2e hardening
step e2e-package cargo xtask e2e package
step e2e-storm cargo xtask e2e storm
step bench-criterion-smoke cargo bench -p provd-benches --locked -- --test
step bench-dhcp-smoke cargo xtask bench dhcp --vs kea,dnsmasq,isc-dhcpd --seconds 2 --smoke
step bench-tftp-smoke cargo xtask bench tftp --vs tftpd-hpa,atftpd --seconds 2 --smoke --store-devices 5000
step bench-mta-smoke cargo xtask bench mta --seconds 2 --smoke
step bench-http-smoke cargo xtask bench http --seconds 2 --smoke
step bench-acs-smoke cargo xtask bench acs --smoke
step bench-api-smoke cargo xtask bench api --smoke
step bench-ui-smoke cargo xtask bench ui --smoke
step bench-storm-smoke cargo xtask bench storm --smoke
# 10 s per target (19 targets): building the fuzz targets is most of this step, and a fresh-clone
# run of this script took 57 min on a slow day with 15 s; the long fuzzing runs are separate.
step fuzz-smoke bash xtask/scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"
step lab-demo env LAB_EXIT=1 bash xtask/scripts/lab.sh

echo
[ "$failed" -eq 0 ] || echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
