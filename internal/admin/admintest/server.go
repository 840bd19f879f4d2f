package admintest

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/secret"
)

// Token is the admin token the fakes' handler accepts.
const Token = "admintest-token-0123456789abcdef"

// Now is the fixed clock of the fakes.
var Now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// Fakes are fresh in-memory dependencies of the admin handler.
type Fakes struct {
	Store   *Store
	Keys    *KeyAdmin
	Secrets *secret.Keyed
}

// NewFakes returns empty fakes.
func NewFakes(t testing.TB) *Fakes {
	t.Helper()
	secrets, err := secret.NewKeyed(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return &Fakes{Store: NewStore(), Keys: &KeyAdmin{Now: func() time.Time { return Now }}, Secrets: secrets}
}

// Deps returns complete admin.Deps over the fakes, accepting Token, with the
// fixed clock Now and logging to log (discarded when nil).
func (f *Fakes) Deps(log *slog.Logger) admin.Deps {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sum := sha256.Sum256([]byte(Token))
	return admin.Deps{
		Clients: f.Store, Users: f.Store, Keys: f.Keys, Secrets: f.Secrets, JoinTokens: f.Store, Revocations: f.Store,
		Passwords: Hasher{}, Policy: MinLenPolicy, TokenSHA256: sum[:],
		Now: func() time.Time { return Now }, Log: log,
	}
}

// Server is an admin API over fakes, listening on a loopback address.
type Server struct {
	*Fakes
	URL string
}

// NewServer starts an admin API server over fresh fakes; it is closed when
// the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	f := NewFakes(t)
	h, err := admin.NewHandler(f.Deps(nil))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &Server{Fakes: f, URL: ts.URL}
}
