package pull

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/troupe-run/troupe/errclass"
)

// fileKeychain resolves credentials from one docker-style config file
// (config.json: "auths" keyed by registry). It reads the file at each pull,
// so changed credentials need no restart.
//
// Only the file's own entries are used: credsStore and credHelpers name
// programs to run, and DOCKER_AUTH_CONFIG would let the environment
// override the file; a daemon running as root runs no program a config file
// names and takes its credentials from the one place it was told.
type fileKeychain struct{ path string }

func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if k.path == "" {
		return authn.Anonymous, nil
	}
	f, err := os.Open(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth config %s: %w", k.path, err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, errclass.With(errclass.InvalidArgument, fmt.Errorf("auth config %s: %w", k.path, err))
	}
	cf.CredentialsStore, cf.CredentialHelpers = "", nil
	store := credentials.NewFileStore(cf)
	// The repository first, then its registry, as docker does.
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		ac, err := store.Get(key)
		if err != nil {
			return nil, fmt.Errorf("auth config %s: %w", k.path, err)
		}
		ac.ServerAddress = "" // set by Get: it says nothing about whether there are credentials
		if ac != (types.AuthConfig{}) {
			return authn.FromConfig(authn.AuthConfig{
				Username:      ac.Username,
				Password:      ac.Password,
				Auth:          ac.Auth,
				IdentityToken: ac.IdentityToken,
				RegistryToken: ac.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}

// Credentials authenticate one pull to its registry: a user name and a
// password (or a token in Password), an identity token for an OAuth2
// refresh, or a registry (bearer) token, as a docker config's entry holds
// them.
type Credentials struct {
	Username, Password, IdentityToken, RegistryToken string
}

// String keeps credentials out of logs and errors.
func (c *Credentials) String() string { return "credentials(redacted)" }
