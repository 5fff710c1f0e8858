package e2e

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as the helper processes the tests
// start: CK_HELPER names which.
func TestMain(m *testing.M) {
	switch os.Getenv("CK_HELPER") {
	case "recorder":
		runRecorder(os.Args[1], os.Args[2])
		return
	case "requester":
		runRequester(os.Args[1])
		return
	}
	os.Exit(m.Run())
}
