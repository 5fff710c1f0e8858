package main

import (
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// refuseSecret refuses to read a key in the subtree of secrets from a
// node's files, as the API refuses to serve it.
func refuseSecret(path string) error {
	if hive.IsSecret(path) {
		return fmt.Errorf("read %q: %s holds the cluster's secrets and is never shown", path, hive.SecretsKey)
	}
	return nil
}
