// Package version holds the build's version string, set at link time with
// -ldflags "-X github.com/clusterkeep/clusterkeep/internal/version.Version=...".
package version

// Version is this build's version.
var Version = "0.1.0-dev"
