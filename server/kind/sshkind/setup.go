package sshkind

// caSetupScript installs a resource's CA for sshd. It is idempotent, and
// every path can be moved by environment for hosts laid out differently.
const caSetupScript = `#!/usr/bin/env bash
# Trust SSH user certificates issued by pamd for resource %[1]s.
# Safe to run more than once. Run as root on the SSH server.
set -euo pipefail
CA_KEY='%[2]s'
CA_FILE=${PAMD_CA_FILE:-/etc/ssh/pamd_ca.pub}
SSHD_CONFIG=${SSHD_CONFIG:-/etc/ssh/sshd_config}
SSHD=${SSHD:-$(command -v sshd || echo /usr/sbin/sshd)}

printf '%%s\n' "$CA_KEY" > "$CA_FILE.tmp"
chmod 0644 "$CA_FILE.tmp"
mv "$CA_FILE.tmp" "$CA_FILE"
echo "pamd: wrote the CA public key to $CA_FILE"

configured=$(awk 'tolower($1) == "trustedusercakeys" { print $2; exit }' "$SSHD_CONFIG")
if [ -z "$configured" ]; then
  # First match wins in sshd_config, so the line goes to the top.
  tmp=$(mktemp)
  { echo "# Added by pamd: trust user certificates from the pamd CA"
    echo "TrustedUserCAKeys $CA_FILE"
    cat "$SSHD_CONFIG"; } > "$tmp"
  cat "$tmp" > "$SSHD_CONFIG"
  rm -f "$tmp"
  echo "pamd: added TrustedUserCAKeys $CA_FILE to $SSHD_CONFIG"
elif [ "$configured" = "$CA_FILE" ]; then
  echo "pamd: $SSHD_CONFIG already trusts $CA_FILE"
else
  echo "pamd: warning: $SSHD_CONFIG already trusts another CA file, $configured;" >&2
  echo "pamd: warning: add the pamd CA key to it (one key per line) for pamd certificates to work:" >&2
  echo "  $CA_KEY" >&2
fi

"$SSHD" -t -f "$SSHD_CONFIG"
echo "pamd: sshd accepts the configuration"

if [ -n "${SSHD_PID_FILE:-}" ]; then
  kill -HUP "$(cat "$SSHD_PID_FILE")"
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null; then
  systemctl reload ssh
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet sshd 2>/dev/null; then
  systemctl reload sshd
elif [ -f /run/sshd.pid ]; then
  kill -HUP "$(cat /run/sshd.pid)"
else
  echo "pamd: reload sshd yourself to apply the change" >&2
  exit 0
fi
echo "pamd: sshd reloaded"
`
