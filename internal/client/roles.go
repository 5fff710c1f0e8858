package client

// Resources and groups (roles) as the cluster records them.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"github.com/clusterkeep/clusterkeep/internal/wire"
)

// Resources lists the recorded resources, each with the group holding it.
func (c *Cluster) Resources(ctx context.Context) ([]roles.ResourceInfo, error) {
	var out []roles.ResourceInfo
	err := c.getJSON(ctx, "/v1/resources", &out)
	return out, err
}

// PutResource records a resource; mode is "" (create or replace),
// wire.PutCreate or wire.PutReplace. It returns the resource as recorded
// (with the defaults filled in), and whether the node that recorded it
// (the leader) can run its type.
func (c *Cluster) PutResource(ctx context.Context, r roles.Resource, mode string) (roles.ResourceInfo, error) {
	var out roles.ResourceInfo
	err := c.putJSON(ctx, "/v1/resources/"+url.PathEscape(r.Name), mode, r, &out)
	return out, err
}

// RemoveResource removes a resource no group holds.
func (c *Cluster) RemoveResource(ctx context.Context, name string) error {
	return c.deleteJSON(ctx, "/v1/resources/"+url.PathEscape(name))
}

// Groups lists the recorded groups.
func (c *Cluster) Groups(ctx context.Context) ([]roles.Group, error) {
	var out []roles.Group
	err := c.getJSON(ctx, "/v1/groups", &out)
	return out, err
}

// PutGroup records a group; mode as for PutResource.
func (c *Cluster) PutGroup(ctx context.Context, g roles.Group, mode string) (roles.Group, error) {
	var out roles.Group
	err := c.putJSON(ctx, "/v1/groups/"+url.PathEscape(g.Name), mode, g, &out)
	return out, err
}

// RemoveGroup removes a group (its resources stay, in no group).
func (c *Cluster) RemoveGroup(ctx context.Context, name string) error {
	return c.deleteJSON(ctx, "/v1/groups/"+url.PathEscape(name))
}

// putJSON sends a PUT: it replaces a whole record, so a retry after an
// unknown outcome does no harm (except for mode create, which may then be
// told the record exists).
func (c *Cluster) putJSON(ctx context.Context, path, mode string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if mode != "" {
		path += "?mode=" + url.QueryEscape(mode)
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, path: path, body: body, ctype: "application/json", idempotent: mode != wire.PutCreate})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Cluster) deleteJSON(ctx context.Context, path string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: path})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// GroupsStatus returns every group's status as the leader sees it: owner,
// state, each resource's state on the owner, last failure, failovers.
func (c *Cluster) GroupsStatus(ctx context.Context) ([]placement.GroupStatus, error) {
	var out []placement.GroupStatus
	err := c.getJSON(ctx, "/v1/groups/status", &out)
	return out, err
}

// GroupAction brings a group online or takes it offline (action "online"
// or "offline"); it returns the group's status after the change.
func (c *Cluster) GroupAction(ctx context.Context, name, action string) (placement.GroupStatus, error) {
	var out placement.GroupStatus
	err := c.postJSON(ctx, "/v1/groups/"+url.PathEscape(name)+"/"+action, nil, &out, true)
	return out, err
}

// MoveGroup asks for group name to move to node ("" for the best other
// node); the move itself follows (GroupsStatus shows it).
func (c *Cluster) MoveGroup(ctx context.Context, name, node string) (placement.GroupStatus, error) {
	var out placement.GroupStatus
	err := c.postJSON(ctx, "/v1/groups/"+url.PathEscape(name)+"/move", wire.MoveRequest{Node: node}, &out, true)
	return out, err
}

// RenewLease renews the calling node's group lease with the node this
// handle talks to, which must be the leader (member nodes only).
func (c *Cluster) RenewLease(ctx context.Context, rep placement.NodeReport) (placement.Grant, error) {
	var g placement.Grant
	err := c.postJSON(ctx, "/v1/roles/lease", rep, &g, true)
	return g, err
}
