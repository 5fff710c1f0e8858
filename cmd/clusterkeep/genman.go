package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/version"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// genManCmd writes a man page for every command (clusterkeep.1,
// clusterkeep-agent.1, ...) into a directory; scripts/build-deb.sh ships
// them. Hidden: it is for packagers. Shell completion is cobra's own
// `completion` command.
func genManCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages of every command into DIR (for packaging)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("gen-man: %w", err)
			}
			// A reproducible date: $SOURCE_DATE_EPOCH when the build sets it.
			date := time.Now()
			if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
				sec, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("gen-man: SOURCE_DATE_EPOCH %q is not a number of seconds", s)}
				}
				date = time.Unix(sec, 0).UTC()
			}
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Section: "1", Source: "clusterkeep " + version.Version, Manual: "clusterkeep manual", Date: &date}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("gen-man: write the man pages into %s: %w", dir, err)
			}
			return nil
		},
	}
}
