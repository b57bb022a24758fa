package kubeletapi

import (
	"fmt"
	"net/http"

	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// Auth authenticates and authorizes the kubelet API's callers as a kubelet
// with webhook authentication and authorization does: a client certificate
// signed by clientCA (PEM: the cluster CA) names its user (CN) and groups
// (O); else a bearer token is checked by a TokenReview; no anonymous
// access. The user is then authorized by a SubjectAccessReview on the
// node nodeName: nodes/log for /logs, nodes/stats, nodes/metrics, and
// nodes/proxy for the rest (logs, exec, attach), verb get or create. It
// is virtual-kubelet's nodeutil.WebhookAuth with the client CA added.
// cs makes the reviews: the agent's own client, whose user needs
// tokenreviews and subjectaccessreviews create (rbac.KubeletClusterRole).
func Auth(cs kubernetes.Interface, nodeName string, clientCA []byte) (nodeutil.Auth, error) {
	ca, err := dynamiccertificates.NewStaticCAContent("client-ca", clientCA)
	if err != nil {
		return nil, fmt.Errorf("kubelet API client CA: %w", err)
	}
	auth, err := nodeutil.WebhookAuth(cs, nodeName, func(c *nodeutil.WebhookAuthConfig) error {
		c.AuthnConfig.ClientCertificateCAContentProvider = ca
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet API auth: %w", err)
	}
	return auth, nil
}

// Handler serves h to the callers auth lets through: 401 to those it does
// not know, 403 to those not allowed.
func Handler(auth nodeutil.Auth, h http.Handler) http.Handler {
	return nodeutil.WithAuth(auth, h)
}
