// Package orders is the demo "orders" microservice of "Alice and her orders":
// an OAuth 2.0 resource server built only on the public Gatehouse SDK
// (github.com/gatehouse/gatehouse/sdk/auth).
//
// Coarse checks (an end user, a scope) are SDK rules applied by the
// middleware; fine-grained ones (ownership, the manager of the owner, the
// admin role) are decided per order. With Config.Authorizer set (as in
// `gatehouse dev`), they are delegated to Gatehouse's authorization service
// (sdk/authz): the service asks "may this token read/delete/pay this order?"
// and relays the reason of a refusal; the ownership and team facts are
// replicated to it as relationships (Replicate). Without one, the same rules
// run in process (Rules below). The API, with JSON errors:
//
//	GET    /orders              the caller's orders; ?owner=ID for that owner's manager or an admin   (orders:read)
//	GET    /orders/{id}         the owner, the owner's manager or an admin                           (orders:read)
//	DELETE /orders/{id}         the owner or an admin                                                (orders:write)
//	POST   /orders/{id}/pay     the owner only; orders calls payments with the caller's token       (orders:write)
//
// Orders the caller may not see answer 404, as unknown ones do, so that
// order ids cannot be enumerated; actions on an order the caller may see but
// not change (a manager deleting a report's order) answer 403.
//
// Every route requires an end user: a client-credentials token has no
// owner to act for. The billing job's token is not even for this API (its
// audience is payments only), so the verifier refuses it with 401.
package orders

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/authz"
)

// Identifiers of this API in tokens.
const (
	Audience   = "https://api.orders.example" // the "aud" this service accepts
	ScopeRead  = "orders:read"
	ScopeWrite = "orders:write"
	RoleAdmin  = "admin" // may read and delete every order
)

// Order statuses.
const (
	StatusOpen = "open"
	StatusPaid = "paid"
)

// Order is one order, as the API returns it.
type Order struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"` // the owner's subject (user id)
	Item        string `json:"item"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
}

// Config configures the service.
type Config struct {
	// Authenticator verifies bearer tokens; normally an *auth.Verifier whose
	// issuer audience is Audience. Required.
	Authenticator auth.Authenticator
	// PaymentsURL is the base URL of the payments service (no trailing
	// slash), e.g. http://127.0.0.1:8092. Empty disables POST /orders/{id}/pay.
	PaymentsURL string
	// PaymentsTransport carries calls to payments. Build it with
	// auth.NewPropagatingTransport so the caller's token is forwarded (only
	// to the payments origin). Required when PaymentsURL is set.
	PaymentsTransport http.RoundTripper
	// Logger defaults to discarding. Tokens are never logged.
	Logger *slog.Logger
	// Authorizer, when set, decides read, delete and pay (normally an
	// *authz.Client of Gatehouse's authorization service). Nil: the
	// built-in rules decide.
	Authorizer Authorizer
	// Relationships, when set, receives the ownership and team facts and
	// the orders' attributes the authorization service decides with (see
	// Replicate); payments and deletions are replicated as they happen.
	Relationships Replicator
	// Orders and Managers replace the demo data when non-nil.
	Orders   []Order
	Managers map[string][]string // manager subject -> the subjects of their team
}

// DemoOrders is the seed data of the demo.
func DemoOrders() []Order {
	return []Order{
		{ID: "o-1001", Owner: "usr_alice", Item: "Tea set for the Mad Hatter", AmountCents: 4200, Status: StatusOpen},
		{ID: "o-1002", Owner: "usr_alice", Item: "Bottle labelled DRINK ME", AmountCents: 350, Status: StatusOpen},
		{ID: "o-2001", Owner: "usr_bob", Item: "Box of hammers", AmountCents: 2599, Status: StatusOpen},
		{ID: "o-3001", Owner: "usr_carol", Item: "Croquet flamingo", AmountCents: 9900, Status: StatusOpen},
	}
}

// DemoManagers is the team data of the demo: alice manages bob.
func DemoManagers() map[string][]string {
	return map[string][]string{"usr_alice": {"usr_bob"}}
}

// Authorizer is the part of *authz.Client the service uses.
type Authorizer interface {
	Authorize(ctx context.Context, r authz.Request) authz.Decision
	AuthorizeBatch(ctx context.Context, p authz.Principal, checks []authz.Check) []authz.Decision
}

// Replicator is the part of *authz.Client that replicates relationships
// and entity attributes.
type Replicator interface {
	WriteRelationships(ctx context.Context, writes []authz.RelationshipWrite) (string, error)
	PutEntity(ctx context.Context, typ, id string, attrs map[string]any, version int64) (applied bool, revision string, err error)
}

// Actions asked of the authorization service, on resources of type
// ResourceType.
const (
	ResourceType = "order"
	ActionRead   = "read"
	ActionDelete = "delete"
	ActionPay    = "pay"
)

// Service is the orders API. Its state is in memory.
type Service struct {
	auth     auth.Authenticator
	authz    Authorizer
	rels     Replicator
	payments string
	client   *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	orders   map[string]Order
	versions map[string]int64 // replicated version of each order's attributes
	managers map[string][]string
}

// New returns the service, seeded with the demo data unless cfg says
// otherwise.
func New(cfg Config) (*Service, error) {
	if cfg.Authenticator == nil {
		return nil, errors.New("orders: an Authenticator is required")
	}
	if cfg.PaymentsURL != "" {
		u, err := url.Parse(cfg.PaymentsURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("orders: bad PaymentsURL %q", cfg.PaymentsURL)
		}
		if cfg.PaymentsTransport == nil {
			return nil, errors.New("orders: PaymentsTransport is required with PaymentsURL (use auth.NewPropagatingTransport)")
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seed, managers := cfg.Orders, cfg.Managers
	if seed == nil {
		seed = DemoOrders()
	}
	if managers == nil {
		managers = DemoManagers()
	}
	s := &Service{auth: cfg.Authenticator, authz: cfg.Authorizer, rels: cfg.Relationships, payments: strings.TrimSuffix(cfg.PaymentsURL, "/"), log: log,
		orders: make(map[string]Order, len(seed)), versions: map[string]int64{}, managers: make(map[string][]string, len(managers))}
	if cfg.PaymentsTransport != nil {
		s.client = &http.Client{Transport: cfg.PaymentsTransport, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for _, o := range seed {
		s.orders[o.ID] = o
	}
	for m, team := range managers {
		s.managers[m] = slices.Clone(team)
	}
	return s, nil
}

// Handler returns the HTTP API. Every request must carry a valid token of an
// end user; each route then adds its scope.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	read, write := auth.RequireScopes(ScopeRead), auth.RequireScopes(ScopeWrite)
	realm := auth.WithRealm("orders")
	mux.Handle("GET /orders", auth.Require(read, http.HandlerFunc(s.list), realm))
	mux.Handle("GET /orders/{id}", auth.Require(read, http.HandlerFunc(s.get), realm))
	mux.Handle("DELETE /orders/{id}", auth.Require(write, http.HandlerFunc(s.remove), realm))
	mux.Handle("POST /orders/{id}/pay", auth.Require(write, http.HandlerFunc(s.pay), realm))
	return auth.Protect(s.auth, auth.RequireEndUser(), mux, realm)
}

// caller returns the verified claims the middleware put in the context.
func caller(r *http.Request) *auth.Claims {
	c, _ := auth.ClaimsFromContext(r.Context())
	return c // never nil behind auth.Protect
}

// manages reports whether manager has subject in their team.
func (s *Service) manages(manager, subject string) bool {
	return slices.Contains(s.managers[manager], subject)
}

// canRead: the owner, the owner's manager, or an admin. Call with s.mu held.
func (s *Service) canRead(c *auth.Claims, owner string) bool {
	return c.Subject == owner || c.HasRole(RoleAdmin) || s.manages(c.Subject, owner)
}

// decide answers whether the caller may do action on o, and why not. With
// an Authorizer the question goes to the authorization service (the caller's
// verified token is the principal; the order's attributes are provided);
// otherwise the built-in rules answer.
func (s *Service) decide(ctx context.Context, c *auth.Claims, action string, o Order) (bool, string) {
	if s.authz != nil {
		d := s.authz.Authorize(ctx, authz.Request{Principal: authz.Principal{Token: c.Token}, Action: action, Resource: resourceOf(o)})
		if d.Err != nil {
			s.log.Warn("authorization service", "action", action, "order", o.ID, "err", d.Err)
		}
		return d.Allow, d.Reason
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch action {
	case ActionRead:
		return s.canRead(c, o.Owner), "only the owner, the owner's manager or an admin may read an order"
	case ActionDelete:
		return c.Subject == o.Owner || c.HasRole(RoleAdmin), "only the owner or an admin may delete an order"
	case ActionPay:
		return c.Subject == o.Owner, "only the owner may pay an order"
	}
	return false, "unknown action"
}

// resourceOf is what the service tells the authorization service about o.
func resourceOf(o Order) authz.Resource {
	return authz.Resource{Type: ResourceType, ID: o.ID, Attrs: map[string]any{"status": o.Status, "owner": o.Owner, "amount_cents": o.AmountCents}}
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	c := caller(r)
	owner := cmp.Or(r.URL.Query().Get("owner"), c.Subject)
	s.mu.Lock()
	var out []Order
	for _, o := range s.orders {
		if o.Owner == owner {
			out = append(out, o)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Order) int { return strings.Compare(a.ID, b.ID) })
	allowed, reason := s.mayList(r.Context(), c, owner, out)
	if !allowed {
		writeError(w, http.StatusForbidden, "forbidden", reason)
		return
	}
	if out == nil {
		out = []Order{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"owner": owner, "orders": out})
}

// mayList: the caller may list owner's orders when they may read every one
// of them (one batch question to the authorization service). Listing
// somebody else's empty list is refused, so that it tells nothing.
func (s *Service) mayList(ctx context.Context, c *auth.Claims, owner string, orders []Order) (bool, string) {
	const why = "only the owner, the owner's manager or an admin may list these orders"
	if s.authz == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.canRead(c, owner), why
	}
	if len(orders) == 0 {
		return owner == c.Subject, why
	}
	checks := make([]authz.Check, len(orders))
	for i, o := range orders {
		checks[i] = authz.Check{Action: ActionRead, Resource: resourceOf(o)}
	}
	for _, d := range s.authz.AuthorizeBatch(ctx, authz.Principal{Token: c.Token}, checks) {
		if !d.Allow {
			return false, d.Reason
		}
	}
	return true, ""
}

// visible returns the order if the caller may see it; an invisible order is
// reported as not found.
func (s *Service) visible(ctx context.Context, c *auth.Claims, id string) (Order, bool) {
	s.mu.Lock()
	o, ok := s.orders[id]
	s.mu.Unlock()
	if !ok {
		return Order{}, false
	}
	if allowed, _ := s.decide(ctx, c, ActionRead, o); !allowed {
		return Order{}, false
	}
	return o, true
}

// teamOf names the team a manager manages.
func teamOf(manager string) string { return "team_" + manager }

// orderTuples are the relationships of o: its owner, and the teams the
// owner belongs to. Call with s.mu held.
func (s *Service) orderTuples(o Order, op string) []authz.RelationshipWrite {
	out := []authz.RelationshipWrite{{Op: op, Tuple: "order:" + o.ID + "#owner@user:" + o.Owner}}
	for _, m := range slices.Sorted(maps.Keys(s.managers)) {
		if slices.Contains(s.managers[m], o.Owner) {
			out = append(out, authz.RelationshipWrite{Op: op, Tuple: "order:" + o.ID + "#team@team:" + teamOf(m)})
		}
	}
	return out
}

// Replicate writes every ownership and team fact to the authorization
// service (idempotent: touching a tuple twice changes nothing) and returns
// the revision. Call it at start, before serving with an Authorizer.
func (s *Service) Replicate(ctx context.Context) (string, error) {
	if s.rels == nil {
		return "", errors.New("orders: no Relationships writer configured")
	}
	s.mu.Lock()
	var writes []authz.RelationshipWrite
	for _, m := range slices.Sorted(maps.Keys(s.managers)) {
		writes = append(writes, authz.RelationshipWrite{Op: "touch", Tuple: "team:" + teamOf(m) + "#manager@user:" + m})
		for _, member := range s.managers[m] {
			writes = append(writes, authz.RelationshipWrite{Op: "touch", Tuple: "team:" + teamOf(m) + "#member@user:" + member})
		}
	}
	ids := slices.Sorted(maps.Keys(s.orders))
	for _, id := range ids {
		writes = append(writes, s.orderTuples(s.orders[id], "touch")...)
	}
	s.mu.Unlock()
	rev, err := s.rels.WriteRelationships(ctx, writes)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if err := s.replicateAttrs(ctx, id); err != nil {
			return "", err
		}
	}
	return rev, nil
}

// replicateAttrs pushes order id's attributes with the next version (the
// service keeps the order of its own changes; an older push arriving late
// is ignored by the authorization service).
func (s *Service) replicateAttrs(ctx context.Context, id string) error {
	if s.rels == nil {
		return nil
	}
	s.mu.Lock()
	o, ok := s.orders[id]
	s.versions[id]++
	v := s.versions[id]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	_, _, err := s.rels.PutEntity(ctx, ResourceType, id, resourceOf(o).Attrs, v)
	return err
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found", "no such order")
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	o, ok := s.visible(r.Context(), caller(r), r.PathValue("id"))
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Service) remove(w http.ResponseWriter, r *http.Request) {
	c, id := caller(r), r.PathValue("id")
	o, ok := s.visible(r.Context(), c, id)
	if !ok {
		notFound(w)
		return
	}
	if allowed, reason := s.decide(r.Context(), c, ActionDelete, o); !allowed {
		writeError(w, http.StatusForbidden, "forbidden", reason)
		return
	}
	s.mu.Lock()
	writes := s.orderTuples(o, "delete")
	delete(s.orders, id)
	s.mu.Unlock()
	if s.rels != nil {
		if _, err := s.rels.WriteRelationships(r.Context(), writes); err != nil {
			// The order is gone here; its tuples only grant access to
			// nothing. Logged for the operator.
			s.log.Warn("replicating a deletion failed", "order", id, "err", err)
		}
	}
	s.log.Info("order deleted", "order", id, "by", c.Subject)
	w.WriteHeader(http.StatusNoContent)
}

// maxPaymentsAnswer bounds what is read back from payments.
const maxPaymentsAnswer = 64 << 10

func (s *Service) pay(w http.ResponseWriter, r *http.Request) {
	c, id := caller(r), r.PathValue("id")
	o, ok := s.visible(r.Context(), c, id)
	if !ok {
		notFound(w)
		return
	}
	if allowed, reason := s.decide(r.Context(), c, ActionPay, o); !allowed {
		writeError(w, http.StatusForbidden, "forbidden", reason)
		return
	}
	switch {
	case o.Status == StatusPaid:
		writeError(w, http.StatusConflict, "already_paid", "the order is already paid")
		return
	case s.client == nil:
		writeError(w, http.StatusServiceUnavailable, "payments_unavailable", "payments is not configured")
		return
	}
	body, _ := json.Marshal(map[string]string{"order_id": o.ID})
	// The request context carries the caller's claims: the propagating
	// transport forwards their token to payments, which verifies it again.
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.payments+"/payments", strings.NewReader(string(body)))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "cannot build the payment request")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("payments unreachable", "order", id, "err", err)
		writeError(w, http.StatusBadGateway, "payments_unavailable", "payments could not be reached")
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxPaymentsAnswer))
	if err != nil || !json.Valid(answer) || resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized {
		// A 401 here means payments refused the forwarded token: our fault
		// or its, not the caller's.
		s.log.Warn("payments failed", "order", id, "status", resp.StatusCode)
		writeError(w, http.StatusBadGateway, "payments_failed", "payments did not accept the payment")
		return
	}
	if resp.StatusCode/100 == 2 {
		s.mu.Lock()
		if cur, ok := s.orders[id]; ok {
			cur.Status = StatusPaid
			s.orders[id] = cur
		}
		s.mu.Unlock()
		if err := s.replicateAttrs(r.Context(), id); err != nil {
			s.log.Warn("replicating a payment failed", "order", id, "err", err)
		}
		s.log.Info("order paid", "order", id, "by", c.Subject)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
