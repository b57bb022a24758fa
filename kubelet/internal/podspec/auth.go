package podspec

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/troupe-run/troupe/api"
)

// dockerHub is the host a reference without a registry names, and the
// names a docker config may give it.
const dockerHub = "docker.io"

var dockerHubAliases = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, "registry.hub.docker.com": true,
}

// authEntry is an entry of a docker config: a user and password, or both in
// "auth" (base64 of user:password), or tokens.
type authEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// PullAuth returns the credentials that the pod's imagePullSecrets hold
// for image's registry: the first secret (of type
// kubernetes.io/dockerconfigjson or the legacy kubernetes.io/dockercfg)
// with an entry for it, the entry naming the longest path of the image's
// repository winning within a secret ("registry.example.com/team" over
// "registry.example.com"). Docker Hub answers to its aliases
// (index.docker.io, registry-1.docker.io, https://index.docker.io/v1/).
// It returns nil when no secret has an entry; an unreadable secret is an
// error.
func PullAuth(image string, secrets []*corev1.Secret) (*api.RegistryAuth, error) {
	host, repo := registryOf(image)
	for _, s := range secrets {
		if s == nil {
			continue
		}
		entries, err := dockerEntries(s)
		if err != nil {
			return nil, err
		}
		best, bestLen := (*authEntry)(nil), -1
		for key, e := range entries {
			h, path := splitKey(key)
			if !hostMatch(h, host) || (path != "" && repo != path && !strings.HasPrefix(repo, path+"/")) {
				continue
			}
			if len(path) > bestLen {
				best, bestLen = &e, len(path)
			}
		}
		if best != nil {
			a, err := best.registryAuth()
			if err != nil {
				return nil, fmt.Errorf("imagePullSecret %s/%s: %w", s.Namespace, s.Name, err)
			}
			return a, nil
		}
	}
	return nil, nil
}

// dockerEntries reads a pull secret's entries by key.
func dockerEntries(s *corev1.Secret) (map[string]authEntry, error) {
	var entries map[string]authEntry
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]authEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("imagePullSecret %s/%s: %s: %w", s.Namespace, s.Name, corev1.DockerConfigJsonKey, err)
		}
		entries = cfg.Auths
	case corev1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &entries); err != nil {
			return nil, fmt.Errorf("imagePullSecret %s/%s: %s: %w", s.Namespace, s.Name, corev1.DockerConfigKey, err)
		}
	default:
		// The kubelet skips a pull secret of another type too.
		return nil, nil
	}
	return entries, nil
}

func (e authEntry) registryAuth() (*api.RegistryAuth, error) {
	a := &api.RegistryAuth{Username: e.Username, Password: e.Password,
		IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" && a.Username == "" && a.Password == "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("auth: not user:password")
		}
		a.Username, a.Password = user, pass
	}
	return a, nil
}

// splitKey parses a docker config's key ("host", "host/path",
// "https://host/v1/") into the registry host and a repository path.
func splitKey(key string) (host, path string) {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, path, _ = strings.Cut(strings.TrimSuffix(key, "/"), "/")
	host = strings.ToLower(host)
	if dockerHubAliases[host] {
		host = dockerHub
		// "https://index.docker.io/v1/" names the whole registry.
		if path == "v1" || path == "v2" {
			path = ""
		}
	}
	return host, path
}

// hostMatch says whether a docker config's host, which may hold globs
// per dot-separated part ("*.example.com"), as the kubelet reads them,
// names host.
func hostMatch(pattern, host string) bool {
	if pattern == host {
		return true
	}
	pp, hp := strings.Split(pattern, "."), strings.Split(host, ".")
	if len(pp) != len(hp) {
		return false
	}
	for i := range pp {
		if ok, err := path.Match(pp[i], hp[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// registryOf splits an image reference into its registry host and its
// repository ("library/busybox" for "busybox"), as Docker reads it: the
// first part is a host if it has a dot or a colon or is localhost.
func registryOf(image string) (host, repo string) {
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i:], "/") {
		name = name[:i]
	}
	first, rest, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host, repo = strings.ToLower(first), rest
	} else {
		host, repo = dockerHub, name
	}
	if dockerHubAliases[host] {
		host = dockerHub
	}
	if host == dockerHub && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return host, repo
}
