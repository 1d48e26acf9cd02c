// Package mongoproxy is the gateway's handler for mongodb resources. The
// client speaks the MongoDB wire protocol to pamd as if to an open server;
// the gateway holds one driver topology per access session, authenticated
// with the stored credential (SCRAM-SHA-256, or SCRAM-SHA-1 where that is all
// the server offers), and relays each client message over an authenticated
// server connection.
//
// What the client sees is adjusted so it never tries to log in or wander:
// hello/isMaster replies lose saslSupportedMechs, speculativeAuthenticate,
// compression, topologyVersion (so no streaming hello) and the replica set's
// member list (so a client without directConnection does not go to addresses
// it cannot reach). Authentication commands are answered with an error that
// says no credentials are needed. Failures reach the client as MongoDB error
// replies with a readable message.
//
// Each command is recorded: database, collection, name, the command document
// with long values cut, outcome and duration. Strings past
// proxy.LogValueMax and commands past proxy.LogTextMax keep their head and
// tail with the whole's length and SHA-256; the record is marked truncated.
//
// Files: mongoproxy.go (Handle, relay), pool.go (topologies per session,
// probe, one-off commands), docs.go (hello sanitising, error replies,
// command summaries), rotate.go (rotation with updateUser).
package mongoproxy
