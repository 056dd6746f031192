#!/usr/bin/env bash
# Builds provd and runs it on the lab config (userspace/config/examples/lab.toml) in a network
# namespace, then shows real DHCP clients (ISC dhclient) getting leases from it: one plain CPE and
# one announcing itself as a DOCSIS cable modem (option 60), which gets the CM's options and then
# fetches its generated config file over TFTP (tftp-hpa); then a VoIP ATA gets its profile rule
# from DHCP and fetches its profile over HTTP (curl), and a TR-069 router (provd-cpe-sim) opens a
# CWMP session with provd's ACS, with digest authentication.
# Everything stays inside two throwaway namespaces on 198.18.0.0/24; they are removed on exit.
# LAB_EXIT=1 ends after the demo instead of serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "lab.sh: needs root (network namespaces); try: sudo $0" >&2; exit 1; }
bash xtask/scripts/install-deps.sh >/dev/null
cargo build --release --locked -p provd -p provd-cpe-sim
PROVD=$PWD/target/release/provd
CPE_SIM=$PWD/target/release/provd-cpe-sim
CONFIG=$PWD/userspace/config/examples/lab.toml
SRV=provd-lab-srv-$$; CLI=provd-lab-cli-$$; WORK=$(mktemp -d /tmp/provd-lab-run.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  ip netns del "$SRV" 2>/dev/null || true; ip netns del "$CLI" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$SRV"; ip netns add "$CLI"
ip link add lab0 netns "$SRV" type veth peer name lab1 netns "$CLI"
ip -n "$SRV" addr add 198.18.0.1/24 dev lab0
for ns in "$SRV" "$CLI"; do ip -n "$ns" link set lo up; done
ip -n "$SRV" link set lab0 up; ip -n "$CLI" link set lab1 up

"$PROVD" check-config "$CONFIG"
rm -rf /tmp/provd-lab/leases
ip netns exec "$SRV" "$PROVD" serve --config "$CONFIG" --stats-every 10 2>"$WORK/provd.log" &
PID=$!
for _ in $(seq 50); do grep -q 'provd ready' "$WORK/provd.log" && break; sleep 0.1; done
grep 'provd ready' "$WORK/provd.log"

# dhclient's hook only reports what it got: nothing on the host is reconfigured.
cat > "$WORK/report.sh" <<'HOOK'
#!/bin/sh
case "$reason" in BOUND|RENEW|REBOOT)
  echo "  $reason: address=$new_ip_address mask=$new_subnet_mask routers=$new_routers server=$new_dhcp_server_identifier lease=${new_dhcp_lease_time}s file=${new_filename:-} next-server=${new_next_server:-}"
  ip addr add "$new_ip_address/24" dev "$interface" 2>/dev/null || true;;
esac
HOOK
chmod +x "$WORK/report.sh"
client() { # name, extra dhclient.conf lines
  printf '%s\n' "$2" > "$WORK/$1.conf"
  echo "dhclient ($1):"
  ip netns exec "$CLI" timeout 20 dhclient -4 -1 -v -cf "$WORK/$1.conf" -sf "$WORK/report.sh" \
    -lf "$WORK/$1.leases" -pf "$WORK/$1.pid" lab1 2>&1 | grep -E '^  |DHCPACK|No DHCPOFFERS' || true
  [ -f "$WORK/$1.pid" ] && kill "$(cat "$WORK/$1.pid")" 2>/dev/null || true
  ip netns exec "$CLI" dhclient -4 -x -pf "$WORK/$1.pid" lab1 2>/dev/null || true
}
client cpe 'request subnet-mask, routers, domain-name, domain-name-servers;'
ip -n "$CLI" addr flush dev lab1
# The cable modem has the MAC of the lab's [[subscriber]] record (gold tier in its file).
ip -n "$CLI" link set lab1 address 02:00:00:00:00:09
client cable-modem 'send vendor-class-identifier "docsis3.0:"; send dhcp-client-identifier 1:02:00:00:00:00:09; request subnet-mask, routers, time-offset, log-servers;'
# The modem's config file is generated for it on request (template + its lease + subscriber
# record) and only its leased address may fetch it (TFTP-enforce).
FILE=$(sed -n 's/^ *filename "\(.*\)";/\1/p' "$WORK/cable-modem.leases" | tail -1)
if [ -n "$FILE" ]; then
  echo "TFTP: the cable modem fetches $FILE; provd cfg decode checks its MICs:"
  ip netns exec "$CLI" tftp 198.18.0.1 -m binary -c get "$FILE" "$WORK/cm.cfg"
  "$PROVD" cfg decode --shared-secret lab-cmts-secret "$WORK/cm.cfg" | sed 's/^/  /'
else
  echo "lab.sh: the cable modem got no file name" >&2; exit 1
fi
# Then, as a modem does after its file: time of day (RFC 868) and a syslog event, which provd
# files under the modem's MAC because its lease holds the source address.
echo "time of day from provd (RFC 868, rdate):"
ip netns exec "$CLI" rdate -p -u 198.18.0.1 | sed 's/^/  /'
ip netns exec "$CLI" logger --rfc3164 -n 198.18.0.1 -P 514 -d -t CABLEMODEM "<73050400> registration complete (lab demo)"
sleep 0.3
echo "what the modem logged (provd syslog events):"
"$PROVD" syslog events --config "$CONFIG" 02:00:00:00:00:09 | sed 's/^/  /'
# A Flying Voice ATA: DHCP hands it the profile rule in option 66; the ATA expands $MA (its MAC)
# and fetches its profile over HTTP, rendered for it with a version that rises on every change.
ip -n "$CLI" addr flush dev lab1
ip -n "$CLI" link set lab1 address 02:00:00:00:00:0a
client voip-ata 'send vendor-class-identifier "FlyingVoice FTA1101"; request subnet-mask, routers, tftp-server-name;'
RULE=$(sed -n 's/^ *option tftp-server-name "\(.*\)";/\1/p' "$WORK/voip-ata.leases" | tail -1)
[ -n "$RULE" ] || { echo "lab.sh: the ATA got no profile rule (option 66)" >&2; exit 1; }
RULE=${RULE//\\/}   # dhclient's lease file writes '$' as '\$'
URL=${RULE//\$MA/02000000000a}
echo "HTTP: option 66 = $RULE; the ATA fetches $URL:"
ip netns exec "$CLI" curl -sS --fail "$URL" | sed 's/^/  /'
echo "its profile record (provd http status):"
"$PROVD" http status --config "$CONFIG" 02:00:00:00:00:0a | sed 's/^/  /'
# A TR-069 home router (the genieacs-sim data model of a Huawei BM632w): its DHCP class carries
# the ACS URL in option 43.1; it opens a CWMP session (Inform with digest, the ACS's answer,
# the empty POST, 204) and provd files its DeviceId, parameters and events.
CPE_IP=$(ip -n "$CLI" -4 -o addr show dev lab1 | awk '{print $4}' | cut -d/ -f1 | head -1)
echo "TR-069: a CPE opens a CWMP session with provd's ACS (provd-cpe-sim):"
ip netns exec "$CLI" "$CPE_SIM" run --acs http://198.18.0.1:7547/ \
  --model tests/data/cwmp/datamodels/genieacs-sim_data_model_202BC1-BM632w.csv \
  --serial-prefix LAB --acs-user cpe --acs-pass lab-cpe-secret \
  --cr-host "${CPE_IP:-127.0.0.1}" --cr-port 17547 --seconds 3 2>/dev/null | head -5 | sed 's/^/  /'
# An operator token: the task API and the web UI take the same bearer tokens as /api/v1.
TOKEN=$(ip netns exec "$SRV" "$PROVD" token create --config "$CONFIG" --name "lab-$$" --role operator)
echo "what the ACS knows of it (task API, GET /api/devices/202BC1-BM632w-LAB0000):"
ip netns exec "$SRV" curl -sS --fail -H "Authorization: Bearer $TOKEN" \
  http://127.0.0.1:7557/api/devices/202BC1-BM632w-LAB0000 | head -c 600 | sed 's/^/  /'; echo
echo "leases provd holds (durable log):"
"$PROVD" leases --config "$CONFIG"
# The web UI: the API's loopback port inside the namespace forwarded to the host's loopback
# (socat), so a browser on this machine opens it with the token above.
UI_PORT=${LAB_UI_PORT:-8080}
socat "TCP-LISTEN:$UI_PORT,bind=127.0.0.1,fork,reuseaddr" \
  "EXEC:ip netns exec $SRV socat STDIO TCP\:127.0.0.1\:8080" 2>"$WORK/socat.log" &
echo $! > "$WORK/socat.pid"
sleep 0.3
if ip netns exec "$SRV" curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ui/login | grep -q 200 \
   && curl -sS -o /dev/null "http://127.0.0.1:$UI_PORT/ui/login" 2>/dev/null; then
  echo "web UI: http://127.0.0.1:$UI_PORT/ui/  (log in with the token $TOKEN)"
else
  echo "web UI: not reachable on 127.0.0.1:$UI_PORT (port taken? LAB_UI_PORT=... picks another); inside the namespace: http://127.0.0.1:8080/ui/ token $TOKEN"
fi
if [ "${LAB_EXIT:-0}" = 1 ]; then exit 0; fi
echo "provd is serving in namespace $SRV (log: $WORK/provd.log). Ctrl-C stops it and removes the namespaces."
wait "$PID"
