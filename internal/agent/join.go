package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
)

// startJoin joins the cluster of the members at addrs in the background.
func (a *Agent) startJoin(addrs []string) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	if a.closed {
		return
	}
	if a.cancelJoin != nil {
		a.cancelJoin()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancelJoin = cancel
	a.joining.Add(1)
	go func() {
		defer a.joining.Done()
		a.joinLoop(ctx, addrs)
	}()
}

// joinLoop asks the given members to add this node until one does. The
// join is recorded while it runs: killed, the node resumes it at its next
// start.
func (a *Agent) joinLoop(ctx context.Context, addrs []string) {
	if err := a.svc.RecordJoin(addrs); err != nil {
		a.log.Error("cannot join", "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		err := a.joinOnce(ctx, addrs)
		if err == nil {
			a.log.Info("joined cluster", "cluster", a.svc.Identity().ClusterName)
			if err := a.svc.JoinDone(); err != nil {
				a.log.Warn("joined cluster", "err", err)
			}
			return
		}
		if errors.Is(err, errNoJoinToken) {
			a.log.Error("cannot join", "err", err)
			return
		}
		if errors.Is(err, cluster.ErrAlreadyMember) || errors.Is(err, client.ErrConflict) {
			a.log.Error("cannot join", "err", err)
			if ferr := a.svc.Forget("join-refused"); ferr != nil {
				a.log.Error("take back the join", "err", ferr)
			}
			if err := a.svc.JoinDone(); err != nil {
				a.log.Warn("take back the join", "err", err)
			}
			return
		}
		if attempt%10 == 0 {
			a.log.Warn("join failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) joinOnce(ctx context.Context, addrs []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	creds := a.svc.Credentials()
	if a.cfg.JoinToken != "" {
		// Learn the cluster's authority from a member that proves it knows
		// the join token, then get this node's certificate from it.
		var last error
		for _, addr := range addrs {
			info, ca, err := client.JoinHello(ctx, addr, a.cfg.JoinToken)
			if err != nil {
				last = err
				continue
			}
			m, err := a.svc.PrepareJoin(info)
			if err != nil {
				return err
			}
			// A retried join may hold its certificate already.
			if !creds.Valid(ca.Raw, m.ID) {
				cert, err := client.RequestCert(ctx, addr, ca, a.cfg.JoinToken, m, creds.PublicKeyDER())
				if err != nil {
					return err
				}
				if !bytes.Equal(cert.CA, ca.Raw) {
					return fmt.Errorf("join through %s: the certificate came with another authority than the one the member proved", addr)
				}
				if err := creds.Install(cert.CA, cert.Cert); err != nil {
					return err
				}
			}
			return a.addSelf(ctx, addrs, m)
		}
		return last
	}
	// No token: a node of the cluster already (one that moved a stale
	// state aside) rejoins with its certificate.
	if _, _, err := creds.Current(); err != nil {
		return fmt.Errorf("%w: joining a cluster needs its join token (--join-token, or %s; the creating node wrote it to DATA_DIR/%s)",
			errNoJoinToken, EnvJoinToken, cluster.JoinTokenFile)
	}
	c, err := client.OpenClusterWith(ctx, addrs, client.WithRetryWindow(5*time.Second), a.nodeCreds())
	if err != nil {
		return err
	}
	ji, err := c.JoinInfo(ctx)
	if err != nil {
		return err
	}
	m, err := a.svc.PrepareJoin(ji)
	if err != nil {
		return err
	}
	return c.AddMember(ctx, m)
}

// addSelf asks the cluster to add this node, proving who it is by its
// certificate.
func (a *Agent) addSelf(ctx context.Context, addrs []string, m cluster.Member) error {
	c, err := client.OpenClusterWith(ctx, addrs, client.WithRetryWindow(5*time.Second), a.nodeCreds())
	if err != nil {
		return err
	}
	return c.AddMember(ctx, m)
}

// nodeCreds makes a client present this node's certificate.
func (a *Agent) nodeCreds() client.Option {
	return client.WithCredentials(client.Credentials{TLS: a.svc.Credentials().Client})
}

var errNoJoinToken = errors.New("no join token")
