// Package api holds the JSON types of pamd's HTTP API (/api/v1), shared by
// the server that answers and the CLI that asks. Types only, no behaviour
// beyond the Error type's methods, its constructor and the rule for names.
//
// Files: errors.go (Errorf, ValidName), kinds.go (the kinds' form schema
// for the console, session records with their summaries, resource checks),
// types.go, sso.go (SSO settings, logins, users sync), requests.go (access
// requests and their reviews).
package api
