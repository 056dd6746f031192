#!/bin/sh
# docsDevResetNow.0 (DOCS-CABLE-DEVICE-MIB, 1.3.6.1.2.1.69.1.1.3.0) for Net-SNMP's snmpd, as the
# control-plane suite's cable modem: `pass .1.3.6.1.2.1.69.1.1.3 /bin/sh reset-agent.sh LOG`.
# Reads say false(2), as a modem that is not resetting does; every SET is appended to LOG as
# "OID TYPE VALUE" and accepted only as INTEGER 1 (true), what a reset is.
OID=.1.3.6.1.2.1.69.1.1.3.0
LOG=$1
shift
case "$1" in
  -g)
    [ "$2" = "$OID" ] && printf '%s\ninteger\n2\n' "$OID"
    ;;
  -n)
    case "$2" in
      .1.3.6.1.2.1.69.1.1.3 | .1.3.6.1.2.1.69.1.1 | .1.3.6.1.2.1.69.1 | .1.3.6.1.2.1.69)
        printf '%s\ninteger\n2\n' "$OID" ;;
    esac
    ;;
  -s)
    echo "$2 $3 $4" >> "$LOG"
    if [ "$2" != "$OID" ]; then echo not-writable
    elif [ "$3" != integer ]; then echo wrong-type
    elif [ "$4" != 1 ]; then echo wrong-value
    fi
    ;;
esac
exit 0
