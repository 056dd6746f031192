#!/usr/bin/env python3
"""The simulated MTA's PacketCable objects for Net-SNMP's snmpd (`pass_persist`).

snmpd (run by `cargo xtask e2e mta` in the MTA's namespace, on the MTA's leased address, UDP 161)
hands every request under PKTC-IETF-MTA-MIB (1.3.6.1.2.1.140, RFC 4682) to this script:

    pass_persist .1.3.6.1.2.1.140 /usr/bin/python3 mta-agent.py STATE SETLOG

STATE is a JSON object the suite writes: {"flow": "HYBRID.2", "objects": {OID: [TYPE, VALUE]}}
with TYPE one of integer, gauge, string, octet (VALUE: hex digits). It is re-read whenever it
changes, so the suite can move pktcMtaDevProvisioningState along as a real MTA would.

Every SET (each varbind; snmpd calls once per varbind) is appended to SETLOG as one JSON line:
{"t_ms": unix ms, "oid": ".1.3...", "type": "string"|"octet"|..., "hex": the value's bytes,
"text": the value if printable, "result": "DONE" or the error returned}. The suite judges
provd's SETs from that file (and from the packets on the wire).

What a HYBRID/SECURE MTA accepts (RFC 4682): pktcMtaDevConfigFile.0 (an SnmpAdminString URL) and
pktcMtaDevProvConfigHash.0 (exactly 20 bytes, SHA-1); in the BASIC flows both are read-only
(inconsistent-value), and every other object is not writable.
"""

import json
import os
import sys
import time

CONFIG_FILE = ".1.3.6.1.2.1.140.1.2.9.0"
CONFIG_HASH = ".1.3.6.1.2.1.140.1.2.11.0"
WRITABLE = (CONFIG_FILE, CONFIG_HASH)


def oid_key(oid):
    return tuple(int(p) for p in oid.strip(".").split(".") if p)


class Agent:
    def __init__(self, state_path, log_path):
        self.state_path = state_path
        self.log_path = log_path
        self.mtime = None
        self.flow = ""
        self.base = {}
        # What SETs wrote; wins over the suite's state for those OIDs.
        self.overlay = {}
        self.reload()

    def reload(self):
        try:
            st = os.stat(self.state_path)
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self.mtime:
            return
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return  # being rewritten; the next request tries again
        self.mtime = stamp
        self.flow = state.get("flow", "")
        self.base = {
            "." + k.strip("."): (v[0], v[1]) for k, v in state.get("objects", {}).items()
        }

    def objects(self):
        self.reload()
        objs = dict(self.base)
        objs.update(self.overlay)
        return objs

    @staticmethod
    def render(typ, value):
        if typ == "octet":
            raw = bytes.fromhex(value)
            return "octet", " ".join("%02x" % b for b in raw)
        return typ, str(value)

    def get(self, oid):
        objs = self.objects()
        oid = "." + oid.strip(".")
        if oid not in objs:
            return None
        return (oid,) + self.render(*objs[oid])

    def getnext(self, oid):
        objs = self.objects()
        want = oid_key(oid)
        later = sorted((k for k in objs if oid_key(k) > want), key=oid_key)
        if not later:
            return None
        return (later[0],) + self.render(*objs[later[0]])

    def set(self, oid, type_and_value):
        oid = "." + oid.strip(".")
        typ, _, value = type_and_value.partition(" ")
        raw = parse_value(typ, value)
        entry = {
            "t_ms": int(time.time() * 1000),
            "oid": oid,
            "type": typ,
            "hex": raw.hex(),
            "text": raw.decode("ascii") if raw and all(32 <= b < 127 for b in raw) else None,
        }
        result = self.check(oid, typ, raw)
        if result == "DONE":
            if oid == CONFIG_HASH:
                self.overlay[oid] = ("octet", raw.hex())
            else:
                self.overlay[oid] = ("string", raw.decode("utf-8", "replace"))
        entry["result"] = result
        with open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
        return result

    def check(self, oid, typ, raw):
        if oid not in WRITABLE:
            return "not-writable"
        if typ not in ("string", "octet"):
            return "wrong-type"
        if self.flow.startswith("BASIC"):
            return "inconsistent-value"
        if oid == CONFIG_HASH and len(raw) != 20:
            return "wrong-length"
        if oid == CONFIG_FILE and not raw:
            return "wrong-value"
        return "DONE"


def parse_value(typ, value):
    """The bytes of a value as snmpd passes it: `string "text"` or `octet "0a 1b ..."`
    (snmpd switches to hex for bytes that are not printable), numbers as text."""
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
    if typ == "octet":
        digits = "".join(v.split())
        try:
            return bytes.fromhex(digits)
        except ValueError:
            return v.encode("latin-1", "replace")
    return v.encode("latin-1", "replace")


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: mta-agent.py STATE SETLOG\n")
        return 2
    agent = Agent(sys.argv[1], sys.argv[2])
    out = sys.stdout
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = sys.stdin.readline().strip()
            r = agent.get(oid) if cmd == "get" else agent.getnext(oid)
            out.write("NONE\n" if r is None else "%s\n%s\n%s\n" % r)
        elif cmd == "set":
            oid = sys.stdin.readline().strip()
            tv = sys.stdin.readline().rstrip("\n")
            out.write(agent.set(oid, tv) + "\n")
        elif cmd == "":
            continue
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
