package ca

import (
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
)

// What Active Directory needs to accept db-client certificates: the CA in
// its NTAuth store and trusted roots, the CRL where the certificates'
// LDAP distribution point names it, and the domain controllers' Smart
// Card service (the GPO steps Teleport's guide walks through by hand).

// The CRL's place in AD: CN=<adCRLName>,CN=<adCRLContainer>,CN=CDP,CN=Public
// Key Services,CN=Services,CN=Configuration,<forest DN>.
const (
	adCRLContainer = "pamd"
	adCRLName      = "pamd-db-client-ca"
)

// ldapCDP is the LDAP CRL distribution point of a realm's AD forest,
// taking the realm for the forest root's DNS name.
func ldapCDP(realm string) string {
	return "ldap:///CN=" + adCRLName + ",CN=" + adCRLContainer + ",CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration," +
		realmDN(realm) + "?certificateRevocationList?base?objectClass=cRLDistributionPoint"
}

func realmDN(realm string) string {
	var parts []string
	for _, p := range strings.Split(strings.ToLower(realm), ".") {
		if p != "" {
			parts = append(parts, "DC="+p)
		}
	}
	return strings.Join(parts, ",")
}

// ADAccount is a pkinit account the script reports on.
type ADAccount struct {
	Name, Username, Realm, SID string
}

// ADSetupScript is a PowerShell script for a domain admin (Enterprise
// Admins for NTAuth) that makes AD trust the db-client CA for resource's
// pkinit accounts. Running it again changes nothing but the CRL, which it
// refreshes (run it at least weekly: the CRL is valid CRLValidity).
func (a *Authority) ADSetupScript(resource string, accounts []ADAccount) (string, error) {
	crl, err := a.DBClientCRL()
	if err != nil {
		return "", err
	}
	crlPEM := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].Name < accounts[j].Name })
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# pamd: make Active Directory accept pamd's db-client certificates (PKINIT logins")
	p("# of SQL Server resource %s). Run as a domain admin, in the forest root domain,", psComment(resource))
	p("# on a machine with certutil and the GroupPolicy module (RSAT). It is idempotent:")
	p("# running it again republishes the same CA and a fresh CRL (valid %s: run it weekly).", CRLValidity)
	p(`$ErrorActionPreference = "Stop"`)
	p(`$dir = Join-Path $env:TEMP "pamd-ad-setup"`)
	p(`New-Item -ItemType Directory -Force -Path $dir | Out-Null`)
	p(`$caFile = Join-Path $dir "pamd-db-client-ca.cer"`)
	p(`$crlFile = Join-Path $dir "pamd-db-client-ca.crl"`)
	p("Set-Content -Path $caFile -Encoding ascii -Value @'\n%s'@", strings.TrimSpace(string(a.pair(TypeDBClient).certPEM))+"\n")
	p("Set-Content -Path $crlFile -Encoding ascii -Value @'\n%s'@", strings.TrimSpace(string(crlPEM))+"\n")
	files := []string{"$caFile"}
	if next := a.nextCertPEM(TypeDBClient); next != nil { // a rotation: AD trusts both until it completes
		p(`$nextFile = Join-Path $dir "pamd-db-client-ca-next.cer"`)
		p("Set-Content -Path $nextFile -Encoding ascii -Value @'\n%s'@", strings.TrimSpace(string(next))+"\n")
		files = append(files, "$nextFile")
	}
	p("")
	p("# 1. Trusted root of every domain member (AD's RootCA container; members pull it at Group Policy refresh).")
	for _, f := range files {
		p(`certutil -f -dspublish %s RootCA`, f)
	}
	p("# 2. NTAuth: domain controllers accept logon certificates only from CAs in it.")
	for _, f := range files {
		p(`certutil -f -dspublish %s NTAuthCA`, f)
	}
	p("# 3. The CRL, where the certificates' LDAP distribution point names it (CN=%s,CN=%s,CN=CDP,...).", adCRLName, adCRLContainer)
	p(`certutil -f -dspublish $crlFile %s %s`, adCRLContainer, adCRLName)
	p("")
	p("# 4. A GPO for the domain controllers: the Smart Card service starts automatically.")
	p(`Import-Module GroupPolicy`)
	p(`$gpo = Get-GPO -Name "pamd PKINIT" -ErrorAction SilentlyContinue`)
	p(`if (-not $gpo) { $gpo = New-GPO -Name "pamd PKINIT" -Comment "pamd: PKINIT logins with the db-client CA" }`)
	p(`Set-GPRegistryValue -Guid $gpo.Id -Key "HKLM\SYSTEM\CurrentControlSet\Services\SCardSvr" -ValueName Start -Type DWord -Value 2 | Out-Null`)
	p(`$dcOU = (Get-ADDomain).DomainControllersContainer`)
	p(`if (-not (Get-GPInheritance -Target $dcOU).GpoLinks.Where({ $_.DisplayName -eq "pamd PKINIT" })) {`)
	p(`    New-GPLink -Guid $gpo.Id -Target $dcOU | Out-Null`)
	p(`}`)
	p(`# Take the settings now rather than at the next refresh (also on each domain controller: gpupdate /force).`)
	p(`certutil -pulse`)
	p(`gpupdate /force`)
	p("")
	p("# 5. The accounts: with --sid, AD maps each certificate to its user strongly (KB5014754).")
	if len(accounts) == 0 {
		p("#    Resource %s has no pkinit accounts yet.", psComment(resource))
	}
	for _, acct := range accounts {
		if acct.SID != "" {
			p(`Write-Host "account %s: %s@%s, SID %s"`, psString(acct.Name), psString(acct.Username), psString(acct.Realm), psString(acct.SID))
			continue
		}
		p("# account %s has no --sid: find it, then add the account again with --sid.", psComment(acct.Name))
		p(`Write-Host ("account %s: %s has SID " + (Get-ADUser -Identity "%s").SID.Value + "; add it with --sid")`,
			psString(acct.Name), psString(acct.Username), psString(acct.Username))
	}
	return b.String(), nil
}

// psString keeps a value inside a double-quoted PowerShell string.
func psString(s string) string {
	return strings.NewReplacer("`", "``", `"`, "`\"", "$", "`$", "\n", " ", "\r", " ").Replace(s)
}

func psComment(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
