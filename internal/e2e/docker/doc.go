// Package docker holds the container suite: three clusterkeep agents in
// FROM-scratch containers on private docker networks, cut off the network,
// stopped, killed, restarted and restored, driven from the host through the
// Go client, the backup program and the CLI. It has no code of its own; its
// tests skip when no Docker engine answers (scripts/test.sh says so).
package docker
