// Package api holds the JSON types of pamd's HTTP API (/api/v1), shared by
// the server that answers and the CLI that asks. Types only, no behaviour
// beyond the Error type's methods.
//
// Files: types.go.
package api
