// Package s3 holds the end-to-end tests of the S3 target: real
// clusterkeep processes backing up to, listing, verifying, restoring from
// and pruning a real S3-compatible server (versitygw, POSIX back end)
// started on loopback. When the server cannot be installed the tests fail
// saying so; CLUSTERKEEP_S3_TESTS=skip turns that into a loud skip.
package s3
