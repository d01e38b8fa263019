package integration

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/pki"
	"github.com/vnest-dev/vnest/internal/testetcd"
	"github.com/vnest-dev/vnest/manager"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// authEtcd is an etcd with client-certificate auth and etcd auth enabled,
// whose root is the holder of rootCert.
type authEtcd struct {
	endpoint          string
	ca, caKey         []byte
	rootCert, rootKey []byte
}

func startAuthEtcd(t *testing.T) authEtcd {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "ca", "test-etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	loopback := net.ParseIP("127.0.0.1")
	server, err := ca.Ensure(dir, "server", pki.Spec{CommonName: "etcd", IPs: []net.IP{loopback}, DNSNames: []string{"localhost"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Ensure(dir, "root", pki.Spec{CommonName: "root", Client: true}); err != nil {
		t.Fatal(err)
	}
	endpoint := testetcd.Start(t, func(cfg *embed.Config) {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = server.CertFile, server.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = ca.CertFile, true
	})
	a := authEtcd{endpoint: endpoint, ca: readFile(t, dir, "ca.crt"), caKey: readFile(t, dir, "ca.key"),
		rootCert: readFile(t, dir, "root.crt"), rootKey: readFile(t, dir, "root.key")}
	root := a.client(t, a.rootCert, a.rootKey)
	ctx := t.Context()
	if _, err := root.RoleAdd(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a authEtcd) client(t *testing.T, cert, key []byte) *clientv3.Client {
	return etcdClient(t, a.endpoint, a.ca, cert, key)
}

// TestEtcdAuth: on an etcd with auth on, each tenant control plane runs as
// its own etcd user whose role covers its prefix only, so tenant A's
// credentials cannot read or write tenant B's keys.
func TestEtcdAuth(t *testing.T) {
	c := superClient(t)
	etcd := startAuthEtcd(t)
	startManager(t, t.TempDir())

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "auth-etcd", Namespace: "default"}, Data: map[string][]byte{
		manager.EtcdCAKey: etcd.ca, manager.EtcdCertKey: etcd.rootCert, manager.EtcdKeyKey: etcd.rootKey, manager.EtcdCAKeyKey: etcd.caKey,
	}}
	if err := c.Create(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(t.Context(), secret) })
	onAuthEtcd := func(name string) *v1alpha1.VirtualCluster {
		vc := newVC(name)
		vc.Spec.Storage = &v1alpha1.StorageSpec{Etcd: &v1alpha1.EtcdStorage{
			Endpoints: []string{etcd.endpoint}, CredentialsSecretRef: v1alpha1.SecretReference{Name: secret.Name},
		}}
		return vc
	}
	// Running means each control plane works with its restricted identity.
	gamma := createAndWait(t, c, onAuthEtcd("gamma"))
	delta := createAndWait(t, c, onAuthEtcd("delta"))

	gammaPKI := &corev1.Secret{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: gamma.PKISecretName()}, gammaPKI); err != nil {
		t.Fatal(err)
	}
	asGamma := etcd.client(t, gammaPKI.Data[manager.EtcdClientCertFile], gammaPKI.Data[manager.EtcdClientKeyFile])
	ctx := t.Context()

	own, err := asGamma.Get(ctx, gamma.Status.EtcdPrefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || own.Count == 0 {
		t.Errorf("gamma reading its own prefix: %v keys, %v; want some keys", own, err)
	}
	// The compaction revision, which its control plane follows (apiserver/sharedetcd).
	if _, err := asGamma.Get(ctx, manager.CompactRevisionKey); err != nil {
		t.Errorf("gamma reading %s: %v", manager.CompactRevisionKey, err)
	}
	denied := map[string]func() error{
		"get delta's keys": func() error {
			_, err := asGamma.Get(ctx, delta.Status.EtcdPrefix+"/", clientv3.WithPrefix())
			return err
		},
		"get one of delta's keys": func() error {
			_, err := asGamma.Get(ctx, delta.Status.EtcdPrefix+"/namespaces/default")
			return err
		},
		"write into delta's prefix": func() error {
			_, err := asGamma.Put(ctx, delta.Status.EtcdPrefix+"/namespaces/evil", "x")
			return err
		},
		"list the whole keyspace": func() error {
			_, err := asGamma.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
			return err
		},
		"write the compaction revision": func() error {
			_, err := asGamma.Put(ctx, manager.CompactRevisionKey, "1")
			return err
		},
		"manage users": func() error {
			_, err := asGamma.UserList(ctx)
			return err
		},
	}
	for what, try := range denied {
		if err := try(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("gamma may %s: %v, want permission denied", what, err)
		}
	}

	root := etcd.client(t, etcd.rootCert, etcd.rootKey)
	role, err := root.RoleGet(ctx, manager.EtcdUser(gamma.Status.ClusterKey))
	if err != nil {
		t.Fatal(err)
	}
	start := gamma.Status.EtcdPrefix + "/"
	var perms []string
	for _, p := range role.Perm {
		perms = append(perms, fmt.Sprintf("%s [%q, %q)", p.PermType, p.Key, p.RangeEnd))
	}
	slices.Sort(perms)
	want := []string{
		fmt.Sprintf("%s [%q, %q)", authpb.READWRITE, start, clientv3.GetPrefixRangeEnd(start)),
		fmt.Sprintf("%s [%q, %q)", authpb.READ, manager.CompactRevisionKey, ""),
	}
	if slices.Sort(want); !slices.Equal(perms, want) {
		t.Errorf("gamma's role = %q, want exactly %q", perms, want)
	}

	for _, vc := range []*v1alpha1.VirtualCluster{gamma, delta} {
		if err := tenantctl.Delete(ctx, c, tenantctl.DeleteOptions{Name: vc.Name, Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{}); err != nil {
			t.Fatal(err)
		}
		if n := keysUnder(t, root, vc.Status.EtcdPrefix); n != 0 {
			t.Errorf("%s: %d keys left", vc.Name, n)
		}
		user := manager.EtcdUser(vc.Status.ClusterKey)
		if _, err := root.UserGet(ctx, user); !errors.Is(err, rpctypes.ErrUserNotFound) {
			t.Errorf("etcd user %s: %v, want deleted", user, err)
		}
		if _, err := root.RoleGet(ctx, user); !errors.Is(err, rpctypes.ErrRoleNotFound) {
			t.Errorf("etcd role %s: %v, want deleted", user, err)
		}
	}
}
