// Package mongokind is the mongodb resource type on the server. A resource
// is described by a connection string without credentials; the settings
// live in the resource's options:
//
//	uri                      mongodb:// or mongodb+srv://, no user, no database
//	auth_database            where the accounts authenticate (default admin)
//	tls                      "true" (default) or "false"
//	tls_reject_unauthorized  "true" (default) or "false"
//	tls_ca                   a CA certificate (PEM) to verify the server with
//	server_version           what the server reported when last probed
//
// Files: mongokind.go.
package mongokind
