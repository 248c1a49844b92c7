#!/usr/bin/env bash
# Installs Prometheus, Alertmanager and Pushgateway (the embedded stack), the
# PostgreSQL server (the tests' throwaway cluster) and its JDBC driver (Spark reads the
# log with it) from Debian's packages when they are
# missing and we run as root; otherwise says what is missing and carries on.
set -u
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# the JDBC driver the Spark engine reads the PostgreSQL log with (/usr/share/java/postgresql.jar)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: not installed: ${missing[*]} (run as root on Debian to install them)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the daemons as services where it can; the stack and the tests start their own.
for svc in prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter postgresql; do
    (service "$svc" stop || true) >/dev/null 2>&1
done
exit 0
