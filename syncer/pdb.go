package syncer

import (
	"context"

	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// PodDisruptionBudgets: down, when the VirtualCluster opts in (spec.sync.kinds
// PodDisruptionBudget), so that super-cluster drains respect the tenant's budgets. The selector
// works unchanged: super pods keep the tenant's labels. Status stays in the tenant, where its
// own disruption controller computes it.

func translatePDB(pdb *policyv1.PodDisruptionBudget, owner mapping.Owner) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: mapping.SuperMeta(pdb, owner), Spec: *pdb.Spec.DeepCopy()}
}

var pdbDown = down[*policyv1.PodDisruptionBudget]{
	kind: kindPDB,
	translate: func(t *tenant, pdb *policyv1.PodDisruptionBudget) *policyv1.PodDisruptionBudget {
		return translatePDB(pdb, t.owner)
	},
	equal: func(desired, existing *policyv1.PodDisruptionBudget) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Spec, existing.Spec)
	},
	merge: func(desired, existing *policyv1.PodDisruptionBudget) *policyv1.PodDisruptionBudget {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Spec = desired.Spec
		return out
	},
}

func (s *Syncer) syncPDB(ctx context.Context, t *tenant, ns, name string) error {
	tp, hasTenant, err := lookup(t.pdbs.PodDisruptionBudgets(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && t.settings.Load().optedIn(v1alpha1.SyncKindPodDisruptionBudget)
	superNS := mapping.SuperNamespace(t.key, ns)
	sp, hasSuper, err := lookup(s.superPDBs.PodDisruptionBudgets(superNS).Get(name))
	if err != nil {
		return err
	}
	return pdbDown.sync(ctx, s, t, s.super.PolicyV1().PodDisruptionBudgets(superNS),
		state[*policyv1.PodDisruptionBudget]{tenantNS: ns, tenant: tp, hasTenant: hasTenant, super: sp, hasSuper: hasSuper})
}
