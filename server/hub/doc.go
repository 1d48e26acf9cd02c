// Package hub keeps the connected gateways: each dials in with mutual TLS
// and one yamux session, is admitted only with its current certificate,
// and is cut when that certificate is revoked, replaced or expires
// unrenewed. Through the hub the server opens streams to a gateway (Open),
// asks it one question (Ask, Probe), tells it a session ended (Notice),
// and takes what it sends: record batches and certificate renewals.
//
// A resource names one gateway or a gateway group. A gateway's group is
// the one the admin put it in on its store record (enrollment token,
// pamd gateways set), read at admission: a hello naming another group is
// refused, one naming none is admitted to the stored group, and a group
// change cuts the connection to admit it again (RecheckGroup). For a
// group's resource the hub picks, per new stream, the connected gateway of
// the group with the fewest open streams (Pick, OpenFor, ProbeFor), and
// tells every connected one about its sessions: every gateway of a group
// receives the credentials of all the group's resources.
//
// Files:
//   - hub.go: the registry, serving a gateway's connection, Open, Notice.
//   - ask.go: Ask and Probe.
//   - certs.go: a gateway certificate's lifecycle: admission, Recheck,
//     renewal over the tunnel, and asking every gateway to renew now
//     (RenewAll, a CA rotation's step); cutting connections on a certificate
//     from a retired gateway CA (CutRetiredGatewayCA), which renew nothing.
//   - groups.go: the gateway for a resource: its own, or of its group the
//     least busy connected one (Pick); all a resource's gateways (Serving);
//     re-admission after a group change (RecheckGroup).
//   - records.go: storing session records, kept only from the gateway that
//     served their connection.
//   - dbcert.go: signing a gateway's certificate request for a PKINIT login
//     of a live session's pkinit account (db-client CA).
package hub
