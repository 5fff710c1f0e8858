package hive

import (
	"errors"
	"strings"
	"testing"
)

// An operator's typing mistake is answered in words: what the text should
// have been, never the parser's internals (strconv, encoding/hex, JSON).
func TestParseDataSaysWhatWasExpected(t *testing.T) {
	for _, c := range []struct {
		t    Type
		in   string
		want string
	}{
		{TypeUint32, "99999999999", "too large; want at most 4294967295"},
		{TypeUint32, "-1", "negative"},
		{TypeUint32, "port", "want a whole number from 0 to 4294967295, decimal or hex with 0x"},
		{TypeUint64, "1.5", "want a whole number from 0 to 18446744073709551615"},
		{TypeUint64, "99999999999999999999", "too large; want at most 18446744073709551615"},
		{TypeBinary, "xyz", "want hexadecimal bytes"},
		{TypeMultiString, "a", `want a JSON array of strings`},
		{TypeString, `"open`, "not a well-formed quoted string"},
	} {
		_, err := ParseData("Port", c.t, c.in)
		if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "is not a "+string(c.t)) {
			t.Errorf("%s %q: %v, want %q", c.t, c.in, err, c.want)
			continue
		}
		for _, internal := range []string{"strconv", "ParseUint", "encoding/hex", "invalid character", "json:"} {
			if strings.Contains(err.Error(), internal) {
				t.Errorf("%s %q: %v shows Go internals (%s)", c.t, c.in, err, internal)
			}
		}
	}
	if v, err := ParseData("Port", TypeUint32, "0x1f90"); err != nil || v.Uint32 != 8080 {
		t.Errorf("0x1f90: %v %v", v, err)
	}
}
