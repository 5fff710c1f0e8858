// Package wire holds the cluster API's request and response types: what
// internal/api serves and internal/client speaks, written as HTTP+JSON.
//
// It is a leaf: it imports nothing of clusterkeep's, so a client links the
// wire format and never the server (consensus, the database's writer
// paths, the dashboard). The database's values and transactions travel in
// their own forms here (Value, Txn, Key, Event), whose JSON is the hive's;
// internal/wire/hiveconv converts them for the server and offline tools.
package wire
