package metrics

import (
	"github.com/clusterkeep/clusterkeep/internal/aside"
	"github.com/prometheus/client_golang/prometheus"
)

// asideCollector reports the copies of the node's state kept aside, read
// from the data directory at scrape time: they are never deleted by the
// node, so an operator watches what they take.
type asideCollector struct {
	dataDir      string
	copies, size *prometheus.Desc
}

// AttachAside reports the copies kept aside in dataDir.
func (m *Metrics) AttachAside(dataDir string) error {
	return m.reg.Register(&asideCollector{dataDir: dataDir,
		copies: desc("aside_copies", "Copies of this node's state kept aside (after evictions and restores): see `clusterkeep aside list`."),
		size:   desc("aside_bytes", "Bytes the copies of this node's state kept aside take."),
	})
}

func (c *asideCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.copies
	ch <- c.size
}

func (c *asideCollector) Collect(ch chan<- prometheus.Metric) {
	cs, err := aside.List(c.dataDir)
	if err != nil {
		return
	}
	n, b := aside.Total(cs)
	gauge(ch, c.copies, float64(n))
	gauge(ch, c.size, float64(b))
}
