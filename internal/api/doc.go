// Package api is the cluster API server over HTTP+JSON, the one an agent
// runs: it serves the wire types of internal/wire (which internal/client
// speaks), serves reads from its own node, forwards writes and
// linearizable reads to the leader, and computes node states by asking
// each member for its own status.
//
// It holds no cluster state of its own; internal/cluster does. Clients
// never import it: they would link the server.
package api
