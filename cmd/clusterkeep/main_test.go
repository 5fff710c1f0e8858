package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command's argument-count error says what was expected: how many
// arguments, the usage line and an example, never only cobra's "accepts N
// arg(s)".
func TestArgCountErrorsSayWhatWasExpected(t *testing.T) {
	root := newRoot(&globals{})
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.Args == nil {
			return
		}
		for n := 0; n <= 6; n++ {
			args := make([]string, n)
			for i := range args {
				args[i] = "x"
			}
			err := c.Args(c, args)
			if err == nil {
				continue
			}
			checked++
			msg := err.Error()
			var ue usageError
			if !errors.As(err, &ue) || strings.Contains(msg, "accepts") || !strings.Contains(msg, "usage:   clusterkeep "+cmdName(c)) ||
				!strings.Contains(msg, "example: clusterkeep "+cmdName(c)) {
				t.Errorf("%s with %d arguments: %q, want a usage error with the usage line and an example", c.CommandPath(), n, msg)
			}
		}
	}
	walk(root)
	if checked < 30 {
		t.Fatalf("only %d argument errors checked: the walk missed commands", checked)
	}
}

// A negative number among the values is read as a flag: the error says to
// put -- before it.
func TestNegativeValueSaysUseDashes(t *testing.T) {
	root := newRoot(&globals{})
	root.SetArgs([]string{"config", "set", "Apps/Web", "Delta", "-1"})
	err := root.Execute()
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `-1 is read as a flag because it starts with "-": put -- before such values`) {
		t.Fatalf("config set KEY NAME -1: %v", err)
	}
}
