// Package ui is how commands talk to people and scripts: plain text or JSON
// on stdout, errors on stderr, and progress as a bar on a terminal or as
// nothing (JSON callers get the summary). Commands never print directly.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Output prints a command's result.
type Output struct {
	JSON bool
	Out  io.Writer
	Err  io.Writer
}

// New returns an Output on stdout and stderr.
func New(jsonOut bool) *Output { return &Output{JSON: jsonOut, Out: os.Stdout, Err: os.Stderr} }

// Result prints v as JSON, or calls text to print it for people.
func (o *Output) Result(v any, text func(w io.Writer)) error {
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(o.Out)
	return nil
}

// Error prints an error on stderr, as {"error": ...} in JSON mode.
func (o *Output) Error(err error) {
	if o.JSON {
		json.NewEncoder(o.Err).Encode(map[string]string{"error": err.Error()})
		return
	}
	fmt.Fprintf(o.Err, "clusterkeep: %v\n", err)
}

// Infof prints a line meant for people on stderr; silent in JSON mode so
// that stdout stays one JSON document.
func (o *Output) Infof(format string, a ...any) {
	if !o.JSON {
		fmt.Fprintf(o.Err, format+"\n", a...)
	}
}

// Table writes rows under a header, aligned.
func Table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// ShortDuration writes a duration without its empty tail: 6h for 6h0m0s,
// 10m for 10m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
