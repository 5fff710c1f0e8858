// Package e2e holds the end-to-end tests: real clusterkeep agent processes
// on loopback, stopped, killed with SIGKILL and restarted, driven through
// the Go client and the CLI. It has no code of its own.
package e2e
