# Certificate helpers (openssl, one CA per cluster) shared by certs.sh and apiserver-only.sh. Sourced.
# EC P-256 keys: generated in milliseconds (RSA 2048 takes ~0.1-1 s each on this VM) and accepted by
# every Kubernetes component, including service-account token signing (ES256).
# shellcheck shell=bash

# pki_ca DIR: DIR/ca.{crt,key}, unless they exist.
pki_ca() {
  local d=$1
  [[ -s $d/ca.crt && -s $d/ca.key ]] && return 0
  mkdir -p "$d" && chmod 700 "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/ca.key" \
    -out "$d/ca.crt" -days 3650 -subj /CN=wasmpod-local-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature \
    2>/dev/null
}

# pki_leaf DIR NAME SUBJECT EXTENSIONS: DIR/NAME.{crt,key} signed by DIR/ca, unless they exist.
# EXTENSIONS are extra openssl x509v3 lines, e.g. "extendedKeyUsage=clientAuth".
pki_leaf() {
  local d=$1 n=$2 subj=$3 ext=$4
  [[ -s $d/$n.crt && -s $d/$n.key ]] && return 0
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/$n.key" \
    -out "$d/$n.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 825 \
    -out "$d/$n.crt" \
    -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%b\n' "$ext") \
    2>/dev/null
  rm -f "$d/$n.csr"
}

# pki_sa_key DIR: the service-account token signing key pair DIR/sa.{key,pub}.
pki_sa_key() {
  local d=$1
  [[ -s $d/sa.key && -s $d/sa.pub ]] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/sa.key"
  openssl ec -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE SERVER CA CERT KEY: a kubeconfig with embedded credentials (no kubectl needed).
write_kubeconfig() {
  local f=$1 server=$2 ca=$3 crt=$4 key=$5
  mkdir -p "$(dirname "$f")"
  cat > "$f.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wasmpod-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$ca")
users:
- name: user
  user:
    client-certificate-data: $(base64 -w0 < "$crt")
    client-key-data: $(base64 -w0 < "$key")
contexts:
- name: wasmpod-local
  context: {cluster: wasmpod-local, user: user}
current-context: wasmpod-local
EOF
  chmod 600 "$f.tmp" && mv "$f.tmp" "$f"
}
