package rbac_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/troupe-run/troupe/kubelet/internal/controlplane"
	"github.com/troupe-run/troupe/kubelet/internal/rbac"
	"github.com/troupe-run/troupe/runtime/linux/linuxtest"
)

func TestMain(m *testing.M) {
	os.Exit(linuxtest.Guarded(m.Run))
}

// TestEnsure shows that a node's agent, by the kubeconfig the control
// plane issues it, may do all the role says and not more than a node
// should, that the API server's kubelet client user may use kubelet APIs,
// and that Ensure repairs a role changed behind its back.
func TestEnsure(t *testing.T) {
	cp := controlplane.StartTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A role someone trimmed: Ensure puts the rules back.
	roles := cp.Client.RbacV1().ClusterRoles()
	role, err := roles.Get(ctx, rbac.KubeletRole, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = role.Rules[:1]
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and again: nothing to do
		if err := rbac.Ensure(ctx, cp.Client); err != nil {
			t.Fatal(err)
		}
	}

	kubeconfig, err := cp.NodeKubeconfig(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := agent.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := who.Status.UserInfo; u.Username != "system:node:n1" || !slices.Contains(u.Groups, "system:nodes") || !slices.Contains(u.Groups, rbac.KubeletGroup) {
		t.Errorf("the agent is %+v, want system:node:n1 in system:nodes and %s", u, rbac.KubeletGroup)
	}

	can := func(t *testing.T, cs kubernetes.Interface, a authzv1.ResourceAttributes) bool {
		t.Helper()
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, rule := range rbac.KubeletClusterRole().Rules {
		for _, res := range rule.Resources {
			for _, verb := range rule.Verbs {
				a := authzv1.ResourceAttributes{Group: rule.APIGroups[0], Verb: verb, Namespace: "default"}
				a.Resource, a.Subresource, _ = strings.Cut(res, "/")
				if !can(t, agent, a) {
					t.Errorf("the agent may not %s %s", verb, res)
				}
			}
		}
	}
	for _, a := range []authzv1.ResourceAttributes{
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		// (Not pods create: the Node authorizer lets nodes make mirror
		// pods.)
		{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"},
		{Verb: "update", Resource: "secrets", Namespace: "default"},
		{Verb: "get", Resource: "nodes", Subresource: "proxy", Name: "n1"},
	} {
		if can(t, agent, a) {
			t.Errorf("the agent may %s %s/%s", a.Verb, a.Resource, a.Subresource)
		}
	}

	// The API server's kubelet client may reach every kubelet API.
	r, err := cp.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User:               rbac.APIServerUser,
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: "create", Resource: "nodes", Subresource: "proxy", Name: "n1"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Status.Allowed {
		t.Errorf("%s may not create nodes/proxy: %+v", rbac.APIServerUser, r.Status)
	}

	b, err := cp.Client.RbacV1().ClusterRoleBindings().Get(ctx, rbac.APIServerBinding, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.RoleRef != rbac.APIServerClusterRoleBinding().RoleRef {
		t.Errorf("binding %s refers to %+v", b.Name, b.RoleRef)
	}
}

// TestManifestMatches keeps deploy/kubernetes/rbac.yaml, for clusters not
// made by make kube-up, the same as what Ensure makes.
func TestManifestMatches(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "kubernetes", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	var bindings []rbacv1.ClusterRoleBinding
	for _, doc := range strings.Split(string(data), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ClusterRole":
			if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
				t.Fatal(err)
			}
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			bindings = append(bindings, b)
		}
	}
	want := rbac.KubeletClusterRole()
	if role.Name != want.Name || !equality.Semantic.DeepEqual(role.Rules, want.Rules) {
		t.Errorf("rbac.yaml's ClusterRole %s rules:\n%+v\nwant (package rbac):\n%+v", role.Name, role.Rules, want.Rules)
	}
	found := false
	for _, b := range bindings {
		w := rbac.KubeletClusterRoleBinding()
		if b.Name == w.Name {
			found = true
			if !equality.Semantic.DeepEqual(b.RoleRef, w.RoleRef) || !equality.Semantic.DeepEqual(b.Subjects, w.Subjects) {
				t.Errorf("rbac.yaml's binding %s: %+v %+v; want %+v %+v", b.Name, b.RoleRef, b.Subjects, w.RoleRef, w.Subjects)
			}
		}
	}
	if !found {
		t.Errorf("rbac.yaml has no binding %s", rbac.KubeletClusterRoleBinding().Name)
	}
}
