package backup

import (
	"bytes"
	"context"

	"github.com/clusterkeep/clusterkeep/internal/client"
)

// LiveExport returns the running cluster's whole hive in the text form.
func LiveExport(ctx context.Context, c *client.Cluster) ([]byte, error) {
	var buf bytes.Buffer
	err := c.Export(ctx, "", &buf)
	return buf.Bytes(), err
}
