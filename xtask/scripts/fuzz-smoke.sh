#!/usr/bin/env bash
# Smoke-fuzzes every cargo-fuzz target in fuzz/ for a short while each: what CI runs.
#
#   xtask/scripts/fuzz-smoke.sh [SECONDS]      # per target, default 20
#
# Installs what it needs when missing (a nightly toolchain via rustup, cargo-fuzz from crates.io),
# builds the targets, then runs each one starting from its committed seeds (fuzz/seeds/<target>)
# plus the local working corpus (fuzz/corpus/<target>, gitignored). Exits non-zero if any target
# crashes, fails an assertion, leaks, times out or fails to build, and prints the failing inputs
# in hex. Honours CARGO_TARGET_DIR (default: fuzz/target). See fuzz/README.md for long campaigns.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]   (a positive whole number of seconds per target)" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/fuzz/target}"
# The workspace pins stable in rust-toolchain.toml; cargo-fuzz needs nightly (-Zsanitizer).
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"

log() { printf 'fuzz-smoke: %s\n' "$*"; }
die() { printf 'fuzz-smoke: FAILED: %s\n' "$*" >&2; exit 1; }

command -v rustup >/dev/null || die "rustup is required (the fuzz build runs on a nightly toolchain)"
# libfuzzer-sys compiles libFuzzer itself (C++).
command -v c++ >/dev/null || command -v clang++ >/dev/null || command -v g++ >/dev/null ||
  die "a C++ compiler is required to build libFuzzer (apt-get install g++)"
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  log "installing the $TOOLCHAIN toolchain"
  rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
log "$(cargo fuzz --version), $(rustup run "$TOOLCHAIN" rustc --version)"

mapfile -t TARGETS < <(cargo "+$TOOLCHAIN" fuzz list)
[ "${#TARGETS[@]}" -gt 0 ] || die "cargo fuzz list found no targets"
log "targets: ${TARGETS[*]}; ${SECONDS_PER_TARGET}s each"

log "building"
cargo "+$TOOLCHAIN" fuzz build --target-dir "$TARGET_DIR" || die "fuzz targets do not build"

# Extra libFuzzer flags per target (the same ones README.md gives for long campaigns).
target_args() {
  case "$1" in
    # Whole datagrams: let inputs grow past the parser's 9000-byte limit.
    dhcp_roundtrip) echo "-max_len=9216" ;;
    *) ;;
  esac
}

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  seeds="fuzz/seeds/$t"
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  # New inputs go to the first directory (the gitignored corpus); the seeds are only read.
  dirs=("$corpus")
  if [ -d "$seeds" ]; then dirs+=("$seeds"); else log "warning: $t has no seeds in $seeds"; fi
  read -r -a extra <<<"$(target_args "$t")"
  before="$(ls -1 "$artifacts")"
  out="$(mktemp)"
  log "running $t for ${SECONDS_PER_TARGET}s"
  if cargo "+$TOOLCHAIN" fuzz run --target-dir "$TARGET_DIR" "$t" "${dirs[@]}" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -dict=fuzz/dhcp.dict \
      -print_final_stats=1 "${extra[@]}" >"$out" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)"
    summary+=("$t: ok, ${execs:-?} execs, ${rate:-?} exec/s")
  else
    tail -n 60 "$out" >&2
    failed+=("$t")
    summary+=("$t: FAILED")
    for f in $(comm -13 <(echo "$before") <(ls -1 "$artifacts")); do
      printf 'fuzz-smoke: %s: new artifact %s/%s, hex:\n' "$t" "$artifacts" "$f" >&2
      od -An -v -tx1 "$artifacts/$f" | tr -d ' \n' | fold -w 96 >&2
      echo >&2
      printf 'fuzz-smoke: reproduce: cargo +%s fuzz run %s %s/%s\n' \
        "$TOOLCHAIN" "$t" "$artifacts" "$f" >&2
    done
  fi
  rm -f "$out"
done

printf 'fuzz-smoke: %s\n' "${summary[@]}"
echo "fuzz-smoke: $(( ${#TARGETS[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
  die "${failed[*]} (failing inputs kept in fuzz/artifacts/)"
fi
