package kubeletapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"

	"github.com/troupe-run/troupe/kubelet/internal/kubeletapi"
)

func TestTLSConfig(t *testing.T) {
	// Any PEM certificate serves as a client CA here.
	other, err := kubeletapi.SelfSigned("ca.example")
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate[0]})

	tests := []struct {
		name    string
		hosts   []string
		ca      []byte
		wantIPs []string
		wantDNS []string
		wantErr bool
	}{
		{name: "loopback by default", ca: caPEM, wantIPs: []string{"127.0.0.1"}},
		{name: "node address and name", ca: caPEM, hosts: []string{"10.0.0.7", "node-1"}, wantIPs: []string{"10.0.0.7"}, wantDNS: []string{"node-1"}},
		{name: "no client CA", ca: []byte("not PEM"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := kubeletapi.TLSConfig("", "", tt.ca, tt.hosts...)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ClientAuth != tls.RequestClientCert || cfg.MinVersion < tls.VersionTLS12 {
				t.Errorf("client auth %v, min version %x", cfg.ClientAuth, cfg.MinVersion)
			}
			cert, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) || !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("certificate for %v %v, want %v %v", ips, cert.DNSNames, tt.wantIPs, tt.wantDNS)
			}
			// A client that trusts the certificate completes a handshake
			// without a certificate of its own.
			pool := x509.NewCertPool()
			pool.AddCert(cert)
			host := tt.wantIPs[0]
			l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					c.(*tls.Conn).Handshake()
					c.Close()
				}
			}()
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if p := c.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
				t.Errorf("negotiated %q", p)
			}
			c.Close()
		})
	}
}
