package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// etcdTimeout bounds every etcd call of a reconcile: an unreachable etcd
// must turn into a condition, not a stuck worker.
const etcdTimeout = 10 * time.Second

// dialEtcd connects with the admin credentials. It does not wait for a
// connection; the first call does.
func dialEtcd(c *etcdCreds) (*clientv3.Client, error) {
	if err := validateEndpoints(c.Endpoints); err != nil {
		return nil, failure(v1alpha1.ReasonCredentialsInvalid, "%s: %v", c.Source, err)
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, failure(v1alpha1.ReasonCredentialsInvalid, "%v", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		TLS:         tlsCfg,
		Username:    c.Username,
		Password:    c.Password,
		DialTimeout: etcdTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, storageError(c, "connecting", err)
	}
	return cli, nil
}

// storageError maps an etcd error to a condition: refused permissions are
// the credentials' fault, anything else is the storage being unavailable,
// which may pass by itself (transient).
func storageError(c *etcdCreds, doing string, err error) error {
	if errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrAuthFailed) ||
		errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrInvalidAuthToken) {
		return failure(v1alpha1.ReasonCredentialsInvalid,
			"etcd %v refused %s with the credentials of the %s (%v): they must be root's (or a user with the root role) when etcd auth is on",
			c.Endpoints, doing, c.Source, err)
	}
	pe := failure(v1alpha1.ReasonStorageUnavailable, "etcd %v: %s failed: %v", c.Endpoints, doing, err)
	pe.transient = true
	return pe
}

// authEnabled reports whether etcd has auth enabled.
func authEnabled(ctx context.Context, cli *clientv3.Client, c *etcdCreds) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return false, storageError(c, "the auth status check", err)
	}
	return st.Enabled, nil
}

// grantTenantAccess makes sure the tenant's etcd user exists (certificate
// auth, no password) with exactly one role, of the same name, that grants
// read-write on the tenant's key range and read on CompactRevisionKey, and
// nothing else. Permissions found on the role beyond those, and other roles
// of the user, are revoked: the role is the tenant's whole view of etcd.
func grantTenantAccess(ctx context.Context, cli *clientv3.Client, c *etcdCreds, user, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	start, end := tenantKeyRange(prefix)
	want := []tenantPermission{
		{start, end, authpb.READWRITE, "its key range"},
		{CompactRevisionKey, "", authpb.READ, "read on " + CompactRevisionKey},
	}
	role, err := cli.RoleGet(ctx, user)
	if errors.Is(err, rpctypes.ErrRoleNotFound) {
		if _, err := cli.RoleAdd(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return storageError(c, "creating role "+user, err)
		}
		role, err = &clientv3.AuthRoleGetResponse{}, nil
	}
	if err != nil {
		return storageError(c, "reading role "+user, err)
	}
	granted := make([]bool, len(want))
	for _, p := range role.Perm {
		i := slices.IndexFunc(want, func(w tenantPermission) bool {
			return string(p.Key) == w.key && string(p.RangeEnd) == w.rangeEnd && p.PermType == w.perm
		})
		if i >= 0 {
			granted[i] = true
			continue
		}
		if _, err := cli.RoleRevokePermission(ctx, user, string(p.Key), string(p.RangeEnd)); err != nil {
			return storageError(c, fmt.Sprintf("revoking a permission of role %s beyond its tenant's", user), err)
		}
	}
	for i, w := range want {
		if granted[i] {
			continue
		}
		if _, err := cli.RoleGrantPermission(ctx, user, w.key, w.rangeEnd, clientv3.PermissionType(w.perm)); err != nil {
			return storageError(c, "granting role "+user+" "+w.what, err)
		}
	}
	u, err := cli.UserGet(ctx, user)
	if errors.Is(err, rpctypes.ErrUserNotFound) {
		_, err = cli.UserAddWithOptions(ctx, user, "", &clientv3.UserAddOptions{NoPassword: true})
		if err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
			return storageError(c, "creating user "+user, err)
		}
		u, err = &clientv3.AuthUserGetResponse{}, nil
	}
	if err != nil {
		return storageError(c, "reading user "+user, err)
	}
	for _, r := range u.Roles {
		if r != user {
			if _, err := cli.UserRevokeRole(ctx, user, r); err != nil {
				return storageError(c, "revoking role "+r+" from user "+user, err)
			}
		}
	}
	if !slices.Contains(u.Roles, user) {
		if _, err := cli.UserGrantRole(ctx, user, user); err != nil {
			return storageError(c, "granting role "+user+" to its user", err)
		}
	}
	return nil
}

// CompactRevisionKey is the etcd key where a kube-apiserver that compacts etcd records the
// revision it compacted at (upstream's etcd3 compactor). Tenant control planes do not compact,
// but follow it (apiserver/sharedetcd), so their roles may read it.
const CompactRevisionKey = "compact_rev_key"

// tenantPermission is one permission of a tenant's etcd role: perm on [key, rangeEnd), or on key
// alone when rangeEnd is empty.
type tenantPermission struct {
	key, rangeEnd string
	perm          authpb.Permission_Type
	what          string // for errors: "granting role X <what>"
}

// removeTenantAccess deletes the tenant's user and role; missing ones are
// fine (auth may never have been on).
func removeTenantAccess(ctx context.Context, cli *clientv3.Client, c *etcdCreds, user string) error {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	if _, err := cli.UserDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
		return storageError(c, "deleting user "+user, err)
	}
	if _, err := cli.RoleDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
		return storageError(c, "deleting role "+user, err)
	}
	return nil
}

// deleteTenantKeys removes every key of the tenant and checks none is left.
func deleteTenantKeys(ctx context.Context, cli *clientv3.Client, c *etcdCreds, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	start, end := tenantKeyRange(prefix)
	if _, err := cli.Delete(ctx, start, clientv3.WithRange(end)); err != nil {
		return storageError(c, "deleting the keys under "+start, err)
	}
	left, err := cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithCountOnly())
	if err != nil {
		return storageError(c, "counting the keys under "+start, err)
	}
	if left.Count > 0 {
		return failure(v1alpha1.ReasonStorageUnavailable, "%d keys under %s are left after deleting them; is the control plane still running?", left.Count, start)
	}
	return nil
}
