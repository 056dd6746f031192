#!/usr/bin/env bash
# Installs everything provd's tests and benchmarks need on a fresh Debian 12 machine.
# Idempotent: safe to run again. Called by .ci/run and by the README's commands.
set -euo pipefail

need_root() { [ "$(id -u)" = 0 ] && "$@" || sudo "$@"; }

PKGS=(
  iproute2          # ip netns / veth for the test rig
  tcpdump           # captures ACKs on the wire for the crash test
  isc-dhcp-client   # dhclient: real DHCP client
  isc-dhcp-relay    # dhcrelay: real relay agent (giaddr + option 82) for the relayed dhclient test
  kea-admin         # perfdhcp: real load generator
  kea-dhcp4-server  # peer server for benchmarks
  dnsmasq-base      # peer server for benchmarks (no service unit)
  isc-dhcp-server   # peer server for benchmarks
  tftp-hpa          # tftp: real TFTP client (e2e tftp)
  atftp             # atftp: real TFTP client with blksize/windowsize/tsize options (e2e tftp)
  curl              # curl tftp:// URLs: a third real TFTP client (e2e tftp)
  rdate             # RFC 868 time client (lab demo, time server tests)
  bsdutils          # logger: real syslog sender (lab demo, syslog tests)
  snmp              # snmpinform, snmpget, snmpset, snmptrap: the MTA's INFORMs (e2e mta)
  snmpd             # snmpd: the MTA's SNMP agent that records provd's SETs (e2e mta)
  python3           # runs tests/e2e/mta/mta-agent.py, snmpd's pass_persist agent (e2e mta);
                    # http.server serves firmware images to simulated CPEs (e2e acs)
  libxml2-utils     # xmllint: validates every CWMP envelope provd emits against the BBF XSDs
  openssl           # the e2e acs suite's HTTPS certificate
  tftpd-hpa         # in.tftpd: peer TFTP server for the bench
  libpcre2-8-0 libwrap0  # what atftpd's binary links (atftpd itself: below)
  fonts-dejavu-core # DejaVu Sans: the font of the bench charts (plotters + ab_glyph)
  openssl           # certificates for the HTTPS suite; s_client, s_time, enc (e2e/bench http)
  libxml2-utils     # xmllint: checks XML profiles (e2e http)
  wrk               # HTTP load generator (bench http)
  socat             # lab.sh: forwards the web UI from provd's namespace to the host's loopback
  prometheus        # promtool: checks provd's /metrics exposition (provd-metrics tests, e2e api)
  postgresql-15     # the store's PostgreSQL backend: e2e api and bench api start their own
                    # servers from /usr/lib/postgresql/15/bin (no service is started)
  python3-venv python3-pip  # the venv below (openapi-spec-validator, schemathesis)
  util-linux        # setpriv: PostgreSQL runs as the postgres user
  chromium chromium-driver  # headless Chromium and chromedriver: the web UI suite (e2e ui)
  procps psmisc
  binutils          # objcopy: the .deb ships provd without debug info (cargo xtask package)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Packaged daemons must not start on install: tests start their own copies in namespaces.
  printf '#!/bin/sh\nexit 101\n' | need_root tee /usr/sbin/policy-rc.d >/dev/null
  need_root chmod +x /usr/sbin/policy-rc.d
  trap 'need_root rm -f /usr/sbin/policy-rc.d' EXIT
  need_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  need_root rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

# atftpd (peer TFTP server for the bench) conflicts with tftpd-hpa as a package (both ship
# in.tftpd), so its binary is unpacked beside the system instead: no service, nothing replaced.
ATFTPD_ROOT=/opt/provd-peers/atftpd
if ! command -v atftpd >/dev/null && ! [ -x /usr/sbin/atftpd ]; then
  echo "install-deps: unpacking atftpd into $ATFTPD_ROOT"
  dl=$(mktemp -d)
  chmod 755 "$dl"
  (cd "$dl" && need_root apt-get download -qq atftpd) \
    || { need_root apt-get update -qq && (cd "$dl" && need_root apt-get download -qq atftpd); }
  need_root mkdir -p "$ATFTPD_ROOT"
  need_root dpkg-deb -x "$dl"/atftpd_*.deb "$ATFTPD_ROOT"
  need_root ln -sf "$ATFTPD_ROOT/usr/sbin/atftpd" /usr/local/sbin/atftpd
  rm -rf "$dl"
fi

# rust-toolchain.toml pins 1.95.0. These machines reach no toolchain server, so when the pinned
# name is missing but the installed stable is that release, name it by linking (no download).
if command -v rustup >/dev/null && ! rustup run 1.95.0 rustc --version >/dev/null 2>&1; then
  if rustup run stable rustc --version 2>/dev/null | grep -q '^rustc 1\.95\.'; then
    rustup toolchain link 1.95.0 "$(rustup run stable rustc --print sysroot)"
  else
    echo "install-deps: toolchain 1.95.0 (rust-toolchain.toml) is not installed" >&2; exit 1
  fi
fi

# The XDP fast path's eBPF program (ebpf/provd-ebpf) builds with the machine's nightly, its
# rust-src and bpf-linker linked against LLVM 22 (the nightly's LLVM major; see
# ../shared/FASTPATH.md for why these versions). Without them provd still builds and serves on
# io_uring or sockets; with them the XDP object is embedded. Skip with PROVD_NO_EBPF=1.
if [ "${PROVD_NO_EBPF:-0}" != 1 ]; then
  if ! dpkg-query -W -f='${Status}' llvm-22-dev 2>/dev/null | grep -q "install ok installed"; then
    echo "install-deps: installing llvm-22-dev (bpf-linker)"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends llvm-22-dev \
      || echo "install-deps: llvm-22-dev unavailable; the XDP path will be left out" >&2
  fi
  if command -v rustup >/dev/null && rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' \
      || rustup component add rust-src --toolchain nightly \
      || echo "install-deps: rust-src for nightly unavailable; the XDP path will be left out" >&2
  fi
  if ! command -v bpf-linker >/dev/null && [ -d /usr/lib/llvm-22 ]; then
    echo "install-deps: building bpf-linker 0.13.0 (about 2.5 minutes)"
    LLVM_PREFIX=/usr/lib/llvm-22 cargo +1.95.0 install bpf-linker@0.13.0 --locked \
      --no-default-features --features llvm-22 \
      || echo "install-deps: bpf-linker failed to build; the XDP path will be left out" >&2
  fi
fi

# The outside checks of the REST API (e2e api), pinned, in a venv under the project's target
# dir: openapi-spec-validator validates the served OpenAPI document, schemathesis tests the
# live API against it. Debian's own python3, not a pyenv shim on PATH.
VENV="$(cd "$(dirname "$0")/../.." && pwd)/target/e2e-venv"
PY_PKGS=(openapi-spec-validator==0.9.0 schemathesis==4.32.5)
venv_ok() {
  [ -x "$VENV/bin/schemathesis" ] && [ -x "$VENV/bin/openapi-spec-validator" ] \
    && "$VENV/bin/python" -m pip freeze 2>/dev/null | grep -qx 'schemathesis==4.32.5' \
    && "$VENV/bin/python" -m pip freeze 2>/dev/null | grep -qx 'openapi-spec-validator==0.9.0'
}
if ! venv_ok; then
  echo "install-deps: python venv $VENV with ${PY_PKGS[*]}"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PKGS[@]}"
  venv_ok || { echo "install-deps: $VENV lacks ${PY_PKGS[*]}" >&2; exit 1; }
fi

for bin in ip tcpdump dhclient dhcrelay perfdhcp kea-dhcp4 dnsmasq dhcpd tftp atftp curl in.tftpd atftpd rdate logger snmpinform snmpget snmpd python3 openssl xmllint wrk promtool setpriv chromium chromedriver; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || { echo "install-deps: $bin still missing" >&2; exit 1; }
done
[ -x /usr/lib/postgresql/15/bin/postgres ] || { echo "install-deps: PostgreSQL 15 still missing" >&2; exit 1; }
echo "install-deps: ok"
