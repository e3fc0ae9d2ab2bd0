#!/bin/sh
# make-certs DIR: a throw-away CA and a certificate for the compose file's
# redis-tls service (names redis-tls, localhost, 127.0.0.1), made with
# openssl at the first start, so that no key is ever in the repository.
# Keeps what DIR holds while it is valid for another day. Writes
#   ca.crt                 the CA the clients trust (--redis-tls-ca)
#   redis.crt, redis.key   the server's certificate and key
# The CA's key is dropped once it has signed: nothing else can be issued.
# redis.key is world-readable because the Redis image runs as a user of its
# own whose id this container does not know; it lives only in the volume,
# and protects a demo's traffic, never a real deployment's.
set -eu
dir=${1:?usage: make-certs DIR}
cd "$dir"
if [ -s redis.crt ] && [ -s redis.key ] && [ -s ca.crt ] &&
    openssl x509 -in redis.crt -noout -checkend 86400 >/dev/null; then
    echo "make-certs: keeping the certificates in $dir (valid for a day or more)"
    exit 0
fi
umask 022
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=jobq compose demo CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=redis-tls" \
    -keyout "$tmp/redis.key" -out "$tmp/redis.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:redis-tls,DNS:localhost,IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth" >"$tmp/ext"
openssl x509 -req -in "$tmp/redis.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 365 -extfile "$tmp/ext" -out "$tmp/redis.crt" 2>/dev/null
chmod 644 "$tmp/ca.crt" "$tmp/redis.crt" "$tmp/redis.key"
mv "$tmp/ca.crt" "$tmp/redis.crt" "$tmp/redis.key" .
echo "make-certs: made a CA and redis-tls's certificate in $dir (valid 365 days)"
