#!/usr/bin/env bash
# Certificates and kubeconfigs of the local cluster: one CA, an apiserver serving cert
# valid for every name pods and the host use, one client cert per component. Existing files are
# kept, so a second `cluster-up` does not invalidate running components.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$CLUSTER_DIR/lib.sh"
source "$CLUSTER_DIR/pki.sh"

pki_ca "$PKI"
pki_leaf "$PKI" apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME,IP:$API_SVC_IP,IP:127.0.0.1,IP:$NODE_IP"
C=extendedKeyUsage=clientAuth
pki_leaf "$PKI" admin              "/O=system:masters/CN=kubernetes-admin" $C
pki_leaf "$PKI" apiserver-kubelet  "/O=system:masters/CN=kube-apiserver-kubelet-client" $C
pki_leaf "$PKI" controller-manager /CN=system:kube-controller-manager $C
pki_leaf "$PKI" scheduler          /CN=system:kube-scheduler $C
pki_leaf "$PKI" kube-proxy         /CN=system:kube-proxy $C
# The Node authorizer recognises the kubelet only by exactly this subject.
pki_leaf "$PKI" kubelet            "/O=system:nodes/CN=system:node:$NODE_NAME" $C
pki_sa_key "$PKI"

for u in admin controller-manager scheduler kube-proxy kubelet; do
  [[ -s $KCFG/$u.kubeconfig ]] ||
    write_kubeconfig "$KCFG/$u.kubeconfig" "https://$NODE_IP:$API_PORT" "$PKI/ca.crt" "$PKI/$u.crt" "$PKI/$u.key"
done
log "certificates and kubeconfigs ready in $PKI and $KCFG"
