package podspec

import (
	"encoding/base64"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/troupe-run/troupe/api"
)

func dockerConfigJSON(name, auths string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":` + auths + `}`)}}
}

func TestPullAuth(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("u64:p:w"))
	hub := dockerConfigJSON("hub", `{"https://index.docker.io/v1/":{"username":"hubu","password":"hubp"}}`)
	priv := dockerConfigJSON("priv", `{"registry.example.com":{"auth":"`+b64+`"},
		"registry.example.com/team":{"username":"team","password":"tp"},
		"127.0.0.1:5000":{"identitytoken":"idt"}}`)
	legacy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Type: corev1.SecretTypeDockercfg,
		Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"legacy.example.org":{"username":"l","password":"lp"}}`)}}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"x": []byte("y")}}
	bad := dockerConfigJSON("bad", `nope`)
	tests := []struct {
		name    string
		image   string
		secrets []*corev1.Secret
		want    *api.RegistryAuth
		wantErr bool
	}{
		{"hub short name", "busybox", []*corev1.Secret{hub}, &api.RegistryAuth{Username: "hubu", Password: "hubp"}, false},
		{"hub with tag", "library/busybox:1.36", []*corev1.Secret{priv, hub}, &api.RegistryAuth{Username: "hubu", Password: "hubp"}, false},
		{"hub alias in image", "index.docker.io/me/app@sha256:abc", []*corev1.Secret{hub}, &api.RegistryAuth{Username: "hubu", Password: "hubp"}, false},
		{"hub alias key", "me/app", []*corev1.Secret{dockerConfigJSON("h2", `{"registry-1.docker.io":{"username":"r1"}}`)}, &api.RegistryAuth{Username: "r1"}, false},
		{"auth field decoded", "registry.example.com/other/app:1", []*corev1.Secret{priv}, &api.RegistryAuth{Username: "u64", Password: "p:w"}, false},
		{"longest path wins", "registry.example.com/team/app:1", []*corev1.Secret{priv}, &api.RegistryAuth{Username: "team", Password: "tp"}, false},
		{"path is a prefix of components only", "registry.example.com/teams/app", []*corev1.Secret{priv}, &api.RegistryAuth{Username: "u64", Password: "p:w"}, false},
		{"host with port", "127.0.0.1:5000/app:latest", []*corev1.Secret{priv}, &api.RegistryAuth{IdentityToken: "idt"}, false},
		{"legacy dockercfg", "legacy.example.org/x", []*corev1.Secret{opaque, legacy}, &api.RegistryAuth{Username: "l", Password: "lp"}, false},
		{"glob host", "eu.mirror.example.net/x", []*corev1.Secret{dockerConfigJSON("g", `{"*.mirror.example.net":{"username":"g"}}`)}, &api.RegistryAuth{Username: "g"}, false},
		{"glob host needs as many parts", "a.eu.mirror.example.net/x", []*corev1.Secret{dockerConfigJSON("g", `{"*.mirror.example.net":{"username":"g"}}`)}, nil, false},
		{"no match", "quay.io/x/y", []*corev1.Secret{hub, priv, legacy}, nil, false},
		{"hub entry not for another registry", "registry.example.com/x", []*corev1.Secret{hub}, nil, false},
		{"no secrets", "busybox", nil, nil, false},
		{"unreadable secret", "busybox", []*corev1.Secret{bad}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PullAuth(tt.image, tt.secrets)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRegistryOf(t *testing.T) {
	tests := []struct{ image, host, repo string }{
		{"busybox", "docker.io", "library/busybox"},
		{"busybox:1", "docker.io", "library/busybox"},
		{"me/app", "docker.io", "me/app"},
		{"docker.io/library/busybox", "docker.io", "library/busybox"},
		{"localhost/app", "localhost", "app"},
		{"localhost:5000/a/b:t", "localhost:5000", "a/b"},
		{"Quay.IO/a/b@sha256:00", "quay.io", "a/b"},
	}
	for _, tt := range tests {
		if h, r := registryOf(tt.image); h != tt.host || r != tt.repo {
			t.Errorf("registryOf(%q) = %q, %q; want %q, %q", tt.image, h, r, tt.host, tt.repo)
		}
	}
}
