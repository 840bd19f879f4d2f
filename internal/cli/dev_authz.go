package cli

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/storage"
)

// devAuthzFS holds the dev demo's policies (active and candidate) and its
// relationship schema, written to the data directory on first start.
//
//go:embed devauthz
var devAuthzFS embed.FS

// devOrdersClient is the orders service's own client at the IdP in dev mode:
// it asks the authorization service and replicates relationships to it.
const devOrdersClient = "demo-orders"

// devAuthzAudience is the authorization service's API audience.
var devAuthzAudience = config.Default().Authz.Audience

// devAuthzPaths are where the dev authorization data lives.
type devAuthzPaths struct {
	policies, candidate, schema, decisions string
}

// writeDevAuthzFiles copies the embedded demo policies and schema into
// dataDir/authz, never overwriting a file that exists: edit them there and
// the running service reloads them.
func writeDevAuthzFiles(dataDir string) (devAuthzPaths, error) {
	root := filepath.Join(dataDir, "authz")
	p := devAuthzPaths{policies: filepath.Join(root, "policies"), candidate: filepath.Join(root, "candidate"),
		schema: filepath.Join(root, "relations.zed"), decisions: filepath.Join(dataDir, "decisions.jsonl")}
	err := fs.WalkDir(devAuthzFS, "devauthz", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("devauthz", filepath.FromSlash(path))
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := devAuthzFS.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return p, fmt.Errorf("dev authorization files: %w", err)
	}
	return p, nil
}

// devAuthz returns the dev authorization service: the demo policies with a
// candidate set in shadow, relationships in the dev database, every decision
// logged to the data directory.
func devAuthz(f devFlags, p devAuthzPaths) config.AuthzConfig {
	a := config.Default().Authz
	a.Listen = f.authzListen
	a.PrincipalAudiences = []string{ordersAudience, paymentsAudience}
	a.Policies.Dir, a.Policies.ShadowDir = p.policies, p.candidate
	a.Relations.SchemaFile = p.schema
	a.Relations.Freshness = config.Duration(100e6)
	a.DecisionLog.Path = p.decisions
	return a
}

// devOrdersClientRecord is the demo-orders client registration.
func devOrdersClientRecord(secretHash []byte) storage.Client {
	return storage.Client{ID: devOrdersClient, Name: "Demo orders service (asks the authorization service)", SecretHash: secretHash,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"authz:check", "authz:write", "authz:read", "authz:audit"},
		Audiences: []string{devAuthzAudience}}
}
