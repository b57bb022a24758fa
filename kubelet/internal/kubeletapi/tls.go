package kubeletapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// selfSignedValidity is how long a generated serving certificate lasts:
// one is made at every start, so a year outlives any agent.
const selfSignedValidity = 365 * 24 * time.Hour

// TLSConfig is the kubelet API's TLS: the serving certificate in certFile
// and keyFile, or, both empty, a self-signed one made now for hosts (IP
// addresses or DNS names; 127.0.0.1 when none), as a kubelet without
// --tls-cert-file does. The API server does not check a kubelet's serving
// certificate unless it is given --kubelet-certificate-authority.
//
// A client certificate is requested, not required, and not verified
// here: as in a kubelet, callers may authenticate by bearer token instead,
// and Auth verifies a certificate against the client CA, so that a wrong
// one is answered 401 rather than dropped in the handshake. clientCA (PEM:
// the cluster CA, as its file or a kubeconfig's
// certificate-authority-data holds it) is still named to clients as the
// CA to present a certificate of. HTTP/1.1 only: exec and attach upgrade
// the connection, which HTTP/2 cannot.
func TLSConfig(certFile, keyFile string, clientCA []byte, hosts ...string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"http/1.1"},
	}
	switch {
	case certFile != "" || keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("kubelet API serving certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	default:
		cert, err := SelfSigned(hosts...)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	cfg.ClientCAs = x509.NewCertPool()
	if !cfg.ClientCAs.AppendCertsFromPEM(clientCA) {
		return nil, errors.New("kubelet API client CA: no PEM certificate in it")
	}
	return cfg, nil
}

// SelfSigned makes a serving certificate for hosts (127.0.0.1 when none),
// signed by its own key.
func SelfSigned(hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0] + "@" + fmt.Sprint(now.Unix())},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(selfSignedValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed kubelet API certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// NewServer is an HTTP server for the kubelet API with tlsConfig; serve
// it with ServeTLS(listener, "", ""). HTTP/2 is off (see TLSConfig), and a
// client gets a bound on sending its request's headers; nothing bounds a
// stream's length (logs -f, exec).
func NewServer(tlsConfig *tls.Config, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		// Non-nil and empty: no HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
}
