// Package api holds the JSON types of pamd's HTTP API (/api/v1), shared by
// the server that answers and the CLI that asks. Types only, no behaviour
// beyond the Error type's methods.
//
// Files: kinds.go (the kinds' form schema for the console, session records
// with their summaries, resource checks), types.go.
package api
