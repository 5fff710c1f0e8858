package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/clusterkeep/clusterkeep/internal/client"
	tc "github.com/clusterkeep/clusterkeep/internal/testcluster"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

type regInput struct {
	Op  string // "r", "w" or "cas"
	Key string
	Val string // written value, or cas's new value
	Old string // cas's expected value
}

type regOutput struct {
	Val     string // what a read saw ("" when missing)
	OK      bool   // whether a cas took effect
	Unknown bool   // a write or cas whose outcome is unknown
}

// registerModel is a map of registers, partitioned by key; reads are
// linearizable reads, cas is a transaction with a value-equals condition.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regInput).Key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.Op {
		case "r":
			return out.Val == st, st
		case "w":
			return true, in.Val
		default: // cas
			if out.Unknown {
				if st == in.Old {
					return true, in.Val
				}
				return true, st
			}
			if out.OK {
				return st == in.Old, in.Val
			}
			return st != in.Old, st
		}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regInput), output.(regOutput)
		return fmt.Sprintf("%s(%s %q %q) -> %+v", in.Op, in.Key, in.Old, in.Val, out)
	},
}

func TestLinearizableAcrossKills(t *testing.T) {
	lc := tc.Processes(t, 3)
	ctx := tc.Context(t)
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }

	var mu sync.Mutex
	var history []porcupine.Operation
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	stop := make(chan struct{})
	const clients = 4
	var wg sync.WaitGroup
	var unknown, failedReads, okOps int
	var countMu sync.Mutex
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.OpenClusterWith(ctx, []string{lc.APIAddrs()}, client.WithRetryWindow(20*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			clientID := id
			last := map[string]string{}
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("k%d", (i+id)%3)
				in := regInput{Key: key}
				switch i % 3 {
				case 0:
					in.Op = "r"
				case 1:
					in.Op, in.Val = "w", fmt.Sprintf("c%d-%d", id, i)
				default:
					in.Op, in.Val, in.Old = "cas", fmt.Sprintf("c%d-%d", id, i), last[key]
				}
				opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				call := now()
				out, err := runOp(opCtx, c, in)
				ret := now()
				cancel()
				countMu.Lock()
				switch {
				case err == nil:
					okOps++
					if in.Op == "r" {
						last[key] = out.Val
					}
					record(porcupine.Operation{ClientId: clientID, Input: in, Call: call, Output: out, Return: ret})
				case in.Op == "r":
					failedReads++ // a failed read has no effect
				default:
					// The change may have been applied, at any time after
					// the call: it stays open to the end of the history.
					unknown++
					record(porcupine.Operation{ClientId: clientID, Input: in, Call: call, Output: regOutput{Unknown: true}, Return: math.MaxInt64})
					clientID += clients // a new client id: this one never returned
				}
				countMu.Unlock()
			}
		}()
	}

	// The nemesis: kill with SIGKILL the leader, a follower, or all three
	// at once; let the rest run without them; restart them. Acknowledged
	// writes live in the consensus log, and the hives replay what their
	// last group commits did not hold.
	c := tc.Open(t, lc.APIAddrs())
	for round, whom := range []string{"leader", "follower", "leader", "follower", "all", "leader", "all"} {
		time.Sleep(time.Second)
		var victims []string
		lead := leader(t, c)
		switch whom {
		case "leader":
			victims = []string{lead}
		case "follower":
			for _, nd := range lc.Nodes {
				if nd.Name != lead {
					victims = []string{nd.Name}
					break
				}
			}
		default:
			for _, nd := range lc.Nodes {
				victims = append(victims, nd.Name)
			}
		}
		for _, v := range victims {
			if _, err := lc.Stop(v, true); err != nil {
				t.Fatalf("round %d: kill %s (%s): %v", round, v, whom, err)
			}
		}
		time.Sleep(2 * time.Second)
		for _, v := range victims {
			if _, err := lc.Start(ctx, v); err != nil {
				t.Fatalf("round %d: restart %s (%s): %v", round, v, whom, err)
			}
		}
	}
	nemesisDone := now()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	t.Logf("%d operations: %d completed, %d writes of unknown outcome, %d failed reads", len(history)+failedReads, okOps, unknown, failedReads)
	if okOps < 100 {
		t.Fatalf("only %d operations completed", okOps)
	}
	if last := history[len(history)-1].Call; last < nemesisDone {
		t.Fatalf("clients stopped at %v, before the nemesis was done", time.Duration(last))
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 2*time.Minute)
	if res != porcupine.Ok {
		_ = info
		t.Fatalf("history is not linearizable (result %v)", res)
	}
}

func runOp(ctx context.Context, c *client.Cluster, in regInput) (regOutput, error) {
	switch in.Op {
	case "r":
		v, err := c.GetValue(ctx, in.Key, "v")
		if errors.Is(err, client.ErrKeyNotFound) || errors.Is(err, client.ErrValueNotFound) {
			return regOutput{}, nil
		}
		return regOutput{Val: v.String}, err
	case "w":
		_, err := c.SetValue(ctx, in.Key, wire.StringValue("v", in.Val))
		return regOutput{}, err
	default:
		cond := wire.Cond{Kind: wire.CondValueEquals, Key: in.Key, Value: &wire.Value{Name: "v", Type: wire.TypeString, String: in.Old}}
		if in.Old == "" {
			cond = wire.Cond{Kind: wire.CondValueMissing, Key: in.Key, Name: "v"}
		}
		_, err := c.Txn(ctx, wire.Txn{Conds: []wire.Cond{cond}, Ops: []wire.Op{wire.SetValue(in.Key, wire.StringValue("v", in.Val))}})
		if errors.Is(err, client.ErrPrecondition) {
			return regOutput{OK: false}, nil
		}
		return regOutput{OK: err == nil}, err
	}
}

// The checker is only worth something if it can fail: a read of a value
// overwritten before the read began is caught.
func TestRegisterModelCatchesStaleRead(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: regInput{Op: "w", Key: "k", Val: "a"}, Call: 0, Output: regOutput{}, Return: 10},
		{ClientId: 0, Input: regInput{Op: "w", Key: "k", Val: "b"}, Call: 20, Output: regOutput{}, Return: 30},
		{ClientId: 1, Input: regInput{Op: "r", Key: "k"}, Call: 40, Output: regOutput{Val: "a"}, Return: 50},
	}
	if porcupine.CheckOperations(registerModel, h) {
		t.Fatal("a stale read passed the check")
	}
	h[2].Output = regOutput{Val: "b"}
	if !porcupine.CheckOperations(registerModel, h) {
		t.Fatal("a fresh read failed the check")
	}
}
