// Command etcdload drives an etcd cluster for ckbench's side-by-side
// figures through the etcd v3 client: it loads keys in transactions, runs
// concurrent single-key writers and reports their latency and throughput,
// and writes or waits for a marker key. Every figure is printed as one JSON
// object on stdout.
//
//	etcdload -endpoints 127.0.0.1:2379 load -keys 100000 -value 1024
//	etcdload -endpoints 127.0.0.1:2379 write -writers 16 -for 5s
//	etcdload -endpoints 127.0.0.1:2379 mark -value 42
//	etcdload -endpoints 127.0.0.1:2379 wait -value 42
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// markKey is the key mark writes and wait reads.
const markKey = "/bench/mark"

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd client addresses")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: etcdload -endpoints ADDR[,ADDR] load|write|mark|wait [flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	eps := strings.Split(*endpoints, ",")
	ctx := context.Background()
	var out any
	var err error
	switch cmd, args := flag.Arg(0), flag.Args()[1:]; cmd {
	case "load":
		out, err = load(ctx, eps, args)
	case "write":
		out, err = write(ctx, eps, args)
	case "mark":
		out, err = mark(ctx, eps, args)
	case "wait":
		out, err = wait(ctx, eps, args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		slog.Error("etcdload", "err", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		slog.Error("etcdload", "err", err)
		os.Exit(1)
	}
}

func connect(eps []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second, MaxCallSendMsgSize: 64 << 20,
		// The client's own retry warnings (a member still starting) are
		// noise here: etcdload reports what failed itself.
		Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", eps, err)
	}
	return c, nil
}

func value(size int) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

type loadResult struct {
	Keys    int     `json:"keys"`
	Seconds float64 `json:"seconds"`
}

// load puts -keys keys of -value bytes in transactions of -batch puts, -conc
// transactions at a time (the same shape as ckbench's load of the hive).
func load(ctx context.Context, eps []string, args []string) (*loadResult, error) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	keys := fs.Int("keys", 100000, "keys to load")
	size := fs.Int("value", 1024, "value size in bytes")
	batch := fs.Int("batch", 500, "puts per transaction (etcd's --max-txn-ops must allow it)")
	conc := fs.Int("conc", 4, "transactions in flight")
	fs.Parse(args)
	c, err := connect(eps)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	val := value(*size)
	var next atomic.Int64
	start := time.Now()
	errs := make(chan error, *conc)
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(*batch))) - *batch
				if from >= *keys {
					return
				}
				var ops []clientv3.Op
				for k := from; k < min(from+*batch, *keys); k++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("/load/%03d/k%07d", k%1000, k), val))
				}
				if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs <- fmt.Errorf("load keys from %d: %w", from, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(func() (all []error) {
		for e := range errs {
			all = append(all, e)
		}
		return all
	}()...); err != nil {
		return nil, err
	}
	return &loadResult{Keys: *keys, Seconds: time.Since(start).Seconds()}, nil
}

type writeResult struct {
	Writes int     `json:"writes"`
	Failed int64   `json:"failed"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Rate   float64 `json:"rate"`
}

// write runs -writers writers, each with its own client to every endpoint,
// putting single keys of -value bytes for -for, and reports their latency.
func write(ctx context.Context, eps []string, args []string) (*writeResult, error) {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	writers := fs.Int("writers", 16, "concurrent writers")
	size := fs.Int("value", 1024, "value size in bytes")
	d := fs.Duration("for", 5*time.Second, "how long to write")
	fs.Parse(args)
	val := value(*size)
	clients := make([]*clientv3.Client, *writers)
	for i := range clients {
		c, err := connect(eps)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		clients[i] = c
	}
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(*d)
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				_, err := c.Put(ctx, fmt.Sprintf("/bench/w%d/k%d", w, i%1000), val)
				if err != nil {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		return nil, fmt.Errorf("no write succeeded (%d failed)", failed.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	return &writeResult{Writes: len(lat), Failed: failed.Load(), P50ms: ms(0.5), P99ms: ms(0.99), Rate: float64(len(lat)) / d.Seconds()}, nil
}

type markResult struct {
	Value string `json:"value"`
}

// mark puts -value at the marker key.
func mark(ctx context.Context, eps []string, args []string) (*markResult, error) {
	fs := flag.NewFlagSet("mark", flag.ExitOnError)
	v := fs.String("value", "", "the marker's value")
	fs.Parse(args)
	c, err := connect(eps)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Put(ctx, markKey, *v); err != nil {
		return nil, fmt.Errorf("put %s: %w", markKey, err)
	}
	return &markResult{Value: *v}, nil
}

// wait polls until a linearizable read of the marker key returns -value.
func wait(ctx context.Context, eps []string, args []string) (*markResult, error) {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	v := fs.String("value", "", "the marker's value to wait for")
	within := fs.Duration("within", 10*time.Minute, "give up after this long")
	fs.Parse(args)
	c, err := connect(eps)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *within)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := c.Get(rctx, markKey)
		rcancel()
		if err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == *v {
			return &markResult{Value: *v}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s = %q: %w (last error: %v)", markKey, *v, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
