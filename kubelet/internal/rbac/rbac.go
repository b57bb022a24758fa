// Package rbac holds the cluster roles a troupe node needs: what the agent
// may do in the API (ClusterRole troupe-kubelet, bound to the group
// troupe:kubelets its client certificates carry), and what the API server
// may do on the agent's kubelet API (the bootstrap role
// system:kubelet-api-admin, bound to the user of the API server's kubelet
// client certificate, as kubeadm does). Ensure makes them exist; the test
// control plane and make kube-up both use it.
package rbac

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// KubeletRole is the ClusterRole of the agent.
	KubeletRole = "troupe-kubelet"
	// KubeletGroup is the group the agent's client certificate names (as
	// O=), besides system:nodes.
	KubeletGroup = "troupe:kubelets"
	// APIServerUser is the common name of the API server's client
	// certificate for kubelets (--kubelet-client-certificate).
	APIServerUser = "kube-apiserver-kubelet-client"
	// APIServerBinding binds APIServerUser to system:kubelet-api-admin.
	APIServerBinding = "troupe:kube-apiserver-kubelet-client"
)

// KubeletClusterRole is what the agent does in the API: register and renew
// its node (and its lease), watch and update the pods bound to it, post
// events, read what pods mount and reference, mint service-account tokens
// for projected volumes, and check the callers of its own kubelet API
// (TokenReview, SubjectAccessReview).
func KubeletClusterRole() *rbacv1.ClusterRole {
	read := []string{"get", "list", "watch"}
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: KubeletRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets", "services"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		},
	}
}

// KubeletClusterRoleBinding grants KubeletRole to KubeletGroup.
func KubeletClusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: KubeletRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: KubeletRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: KubeletGroup}},
	}
}

// APIServerClusterRoleBinding lets the API server use every part of a
// kubelet API (logs, exec, attach, port-forward, stats): the bootstrap
// role system:kubelet-api-admin, for APIServerUser.
func APIServerClusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: APIServerBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: APIServerUser}},
	}
}

// Ensure creates the role and the bindings, or updates them to what this
// package says when they differ. cs needs the rights to manage cluster
// roles (an admin's).
func Ensure(ctx context.Context, cs kubernetes.Interface) error {
	roles := cs.RbacV1().ClusterRoles()
	role := KubeletClusterRole()
	cur, err := roles.Get(ctx, role.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = roles.Create(ctx, role, metav1.CreateOptions{})
	case err == nil:
		cur.Rules = role.Rules
		_, err = roles.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("ensure cluster role %s: %w", role.Name, err)
	}
	for _, b := range []*rbacv1.ClusterRoleBinding{KubeletClusterRoleBinding(), APIServerClusterRoleBinding()} {
		if err := ensureBinding(ctx, cs, b); err != nil {
			return err
		}
	}
	return nil
}

// ensureBinding creates b or brings its subjects up to date; a binding
// whose role differs is replaced, since roleRef cannot change.
func ensureBinding(ctx context.Context, cs kubernetes.Interface, b *rbacv1.ClusterRoleBinding) error {
	bindings := cs.RbacV1().ClusterRoleBindings()
	cur, err := bindings.Get(ctx, b.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = bindings.Create(ctx, b, metav1.CreateOptions{})
	case err == nil && cur.RoleRef != b.RoleRef:
		if err = bindings.Delete(ctx, b.Name, metav1.DeleteOptions{}); err == nil {
			_, err = bindings.Create(ctx, b, metav1.CreateOptions{})
		}
	case err == nil:
		cur.Subjects = b.Subjects
		_, err = bindings.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("ensure cluster role binding %s: %w", b.Name, err)
	}
	return nil
}
