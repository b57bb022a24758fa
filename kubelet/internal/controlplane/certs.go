package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/troupe-run/troupe/kubelet/internal/rbac"
)

// certValidity is far longer than any test and short enough that a stray
// file is worthless soon.
const certValidity = 24 * time.Hour

// pki is what the control plane's TLS and service accounts need, written
// as PEM files.
type pki struct {
	caCert, caKey string // the cluster CA, which also signs CSRs
	serverCert    string // the API server's serving certificate
	serverKey     string
	saKey, saPub  string // service-account token signing key
	caPEM         []byte // for the kubeconfigs and the clientset
	// kubeletClient is the API server's client certificate for kubelets
	// (CN rbac.APIServerUser).
	kubeletClientCert, kubeletClientKey string

	ca        *x509.Certificate // to sign client certificates
	caPrivate *ecdsa.PrivateKey
}

// makePKI writes a CA, an API server certificate for loopback and the
// in-cluster names of the kubernetes service, and a service-account key
// into dir. ECDSA P-256 throughout: Kubernetes takes it everywhere, and its
// keys are made in microseconds where RSA takes a noticeable part of a
// second on a busy machine.
func makePKI(dir string, serviceIP net.IP) (*pki, error) {
	p := &pki{
		caCert: dir + "/ca.crt", caKey: dir + "/ca.key",
		serverCert: dir + "/apiserver.crt", serverKey: dir + "/apiserver.key",
		saKey: dir + "/sa.key", saPub: dir + "/sa.pub",
		kubeletClientCert: dir + "/apiserver-kubelet-client.crt",
		kubeletClientKey:  dir + "/apiserver-kubelet-client.key",
	}
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "troupe-test-ca"},
		NotBefore:             now.Add(-time.Minute), // tolerate clock steps
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p.ca, p.caPrivate = ca, caKey

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Pods reach the API server by the kubernetes service's names and
		// address; tests and the agent by loopback.
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), serviceIP},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create API server certificate: %w", err)
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}

	files := []struct {
		path, typ string
		der       []byte
		key       *ecdsa.PrivateKey
	}{
		{path: p.caCert, typ: "CERTIFICATE", der: caDER},
		{path: p.caKey, key: caKey},
		{path: p.serverCert, typ: "CERTIFICATE", der: srvDER},
		{path: p.serverKey, key: srvKey},
		{path: p.saKey, key: saKey},
		{path: p.saPub, typ: "PUBLIC KEY", der: saPub},
	}
	for _, f := range files {
		if f.key != nil {
			if f.der, err = x509.MarshalECPrivateKey(f.key); err != nil {
				return nil, err
			}
			f.typ = "EC PRIVATE KEY"
		}
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return nil, err
		}
	}
	certPEM, keyPEM, err := p.clientCert(rbac.APIServerUser)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.kubeletClientCert, certPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.kubeletClientKey, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

// clientCert issues a client certificate signed by the cluster CA for the
// user cn in the groups orgs, as the API server's x509 authenticator reads
// them (CN the user, O the groups).
func (p *pki) clientCert(cn string, orgs ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caPrivate)
	if err != nil {
		return nil, nil, fmt.Errorf("create client certificate for %s: %w", cn, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// token returns a random bearer token.
func token() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}
