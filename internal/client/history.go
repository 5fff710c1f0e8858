package client

import (
	"context"
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/shadow"
)

// ShadowHistory reads what the shadow-copy coordinator of the node the
// handle talks to served: counts, and its recent sessions newest first.
func (c *Cluster) ShadowHistory(ctx context.Context) (shadow.History, error) {
	var h shadow.History
	if err := c.getJSON(ctx, "/v1/shadow/history", &h); err != nil {
		return h, fmt.Errorf("shadow-copy history: %w", err)
	}
	return h, nil
}
