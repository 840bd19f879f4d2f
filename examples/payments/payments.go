// Package payments is the demo "payments" microservice of "Alice and her
// orders", built only on the public Gatehouse SDK.
//
//	POST /payments  {"order_id": "o-1001"}                        an end user paying an order they own
//	POST /payments  {"invoice_id": "inv-1", "amount_cents": 1200} the billing job (client credentials)
//	GET  /payments                                                the caller's payments
//
// Both kinds of POST need the scope payments:write. Payments does not trust
// the orders service to have checked anything: it verifies the token again
// (its own Verifier, audience https://api.payments.example) and checks
// ownership itself by asking orders for the order with the caller's token
// propagated, then comparing the order's owner with the token's subject. So a
// manager who may read a report's order still cannot pay it.
//
// An invoice payment has no end user; it is allowed only to the billing
// client (auth.RequireClient), and an end user cannot pay an invoice.
// Request bodies are decoded strictly (unknown fields, trailing data and
// bodies over 4 KiB are refused); amounts are integers (cents).
//
// Served over mutual TLS (sdk/workload), a payment also records the SPIFFE
// ID of the calling service (paid_by_service): the user's token says who
// pays, the connection which service asked.
package payments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/sdk/auth"
	"github.com/gatehouse/gatehouse/sdk/workload"
)

// Identifiers of this API in tokens.
const (
	Audience   = "https://api.payments.example"
	ScopeWrite = "payments:write"
	ScopeRead  = "payments:read" // or payments:write, for GET /payments
	// DefaultBillingClient is the client id of the demo billing job.
	DefaultBillingClient = "demo-billing"
)

// maxBody caps request bodies.
const maxBody = 4 << 10

// maxAmountCents caps invoice amounts (one million, in cents).
const maxAmountCents = 100_000_000

// Payment is one payment.
type Payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"order_id,omitempty"`
	InvoiceID   string `json:"invoice_id,omitempty"`
	AmountCents int64  `json:"amount_cents"`
	Payer       string `json:"payer"`     // token subject: the user, or the client itself
	ClientID    string `json:"client_id"` // the client the token was issued to
	// PaidByService is the SPIFFE ID of the service that made the call,
	// from its mutual-TLS certificate (sdk/workload); empty over plain HTTP.
	PaidByService string    `json:"paid_by_service,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Config configures the service.
type Config struct {
	// Authenticator verifies bearer tokens (audience Audience). Required.
	Authenticator auth.Authenticator
	// OrdersURL is the base URL of the orders service, asked who owns an
	// order. Required.
	OrdersURL string
	// OrdersTransport carries calls to orders; build it with
	// auth.NewPropagatingTransport so the caller's token is forwarded.
	// Required.
	OrdersTransport http.RoundTripper
	// BillingClients may pay invoices; default [DefaultBillingClient].
	BillingClients []string
	Logger         *slog.Logger
	Now            func() time.Time
}

// Service is the payments API; its state is in memory.
type Service struct {
	auth    auth.Authenticator
	orders  string
	client  *http.Client
	billing auth.Rule
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	payments []Payment
	paid     map[string]string // order or invoice id -> payment id
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Authenticator == nil {
		return nil, errors.New("payments: an Authenticator is required")
	}
	u, err := url.Parse(cfg.OrdersURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payments: bad OrdersURL %q", cfg.OrdersURL)
	}
	if cfg.OrdersTransport == nil {
		return nil, errors.New("payments: OrdersTransport is required (use auth.NewPropagatingTransport)")
	}
	billing := cfg.BillingClients
	if len(billing) == 0 {
		billing = []string{DefaultBillingClient}
	}
	s := &Service{auth: cfg.Authenticator, orders: strings.TrimSuffix(cfg.OrdersURL, "/"), log: cfg.Logger, now: cfg.Now,
		client: &http.Client{Transport: cfg.OrdersTransport, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		billing: auth.All(auth.RuleFunc(noEndUser), auth.RequireClient(billing...)),
		paid:    map[string]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func noEndUser(c *auth.Claims) error {
	if c.EndUser() {
		return &auth.ForbiddenError{Reason: "invoices are paid by the billing service, not by users"}
	}
	return nil
}

// Handler returns the HTTP API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	realm := auth.WithRealm("payments")
	mux.Handle("POST /payments", auth.Require(auth.RequireScopes(ScopeWrite), http.HandlerFunc(s.create), realm))
	mux.Handle("GET /payments", auth.Require(auth.RequireAnyScope(ScopeRead, ScopeWrite), http.HandlerFunc(s.list), realm))
	return auth.Protect(s.auth, auth.AnyAuthenticated(), mux, realm)
}

// request is the body of POST /payments: exactly one of OrderID and
// InvoiceID; AmountCents only with InvoiceID (an order's amount comes from
// orders, never from the payer).
type request struct {
	OrderID     string `json:"order_id"`
	InvoiceID   string `json:"invoice_id"`
	AmountCents *int64 `json:"amount_cents"`
}

var idRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// errBadBody is answered 400 invalid_request.
var errBadBody = errors.New("bad request body")

// decode reads one strict JSON object of at most maxBody bytes.
func decode(r io.Reader) (request, error) {
	var req request
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return req, fmt.Errorf("%w: %w", errBadBody, err)
	}
	if len(b) > maxBody {
		return req, fmt.Errorf("%w: body too large", errBadBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: %w", errBadBody, err)
	}
	if dec.More() {
		return req, fmt.Errorf("%w: trailing data", errBadBody)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, fmt.Errorf("%w: trailing data", errBadBody)
	}
	switch {
	case (req.OrderID == "") == (req.InvoiceID == ""):
		return req, fmt.Errorf("%w: exactly one of order_id and invoice_id is required", errBadBody)
	case req.OrderID != "" && (!idRE.MatchString(req.OrderID) || req.AmountCents != nil):
		return req, fmt.Errorf("%w: bad order_id, or an amount with an order", errBadBody)
	case req.InvoiceID != "" && !idRE.MatchString(req.InvoiceID):
		return req, fmt.Errorf("%w: bad invoice_id", errBadBody)
	case req.InvoiceID != "" && (req.AmountCents == nil || *req.AmountCents <= 0 || *req.AmountCents > maxAmountCents):
		return req, fmt.Errorf("%w: amount_cents must be an integer between 1 and %d", errBadBody, maxAmountCents)
	}
	return req, nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.ClaimsFromContext(r.Context())
	req, err := decode(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", strings.TrimPrefix(err.Error(), errBadBody.Error()+": "))
		return
	}
	p := Payment{OrderID: req.OrderID, InvoiceID: req.InvoiceID, Payer: c.Subject, ClientID: c.ClientID}
	if peer, ok := workload.PeerID(r.Context()); ok {
		// Two identities on one call: the service on the connection, the
		// user (or the billing client) in the token.
		p.PaidByService = peer.String()
	}
	if req.InvoiceID != "" {
		if err := s.billing.Check(c); err != nil {
			auth.WriteError(w, err, auth.WithRealm("payments"))
			return
		}
		p.AmountCents = *req.AmountCents
	} else {
		if err := auth.RequireEndUser().Check(c); err != nil {
			auth.WriteError(w, err, auth.WithRealm("payments"))
			return
		}
		amount, status, code, desc := s.orderAmount(r, c, req.OrderID)
		if status != 0 {
			writeError(w, status, code, desc)
			return
		}
		p.AmountCents = amount
	}
	key := "order:" + p.OrderID
	if p.InvoiceID != "" {
		key = "invoice:" + p.InvoiceID
	}
	s.mu.Lock()
	if id, dup := s.paid[key]; dup {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"error": "already_paid", "error_description": "already paid", "payment_id": id})
		return
	}
	p.ID = fmt.Sprintf("pay-%d", len(s.payments)+1)
	p.CreatedAt = s.now().UTC().Truncate(time.Second)
	s.payments = append(s.payments, p)
	s.paid[key] = p.ID
	s.mu.Unlock()
	s.log.Info("payment created", "payment", p.ID, "order", p.OrderID, "invoice", p.InvoiceID, "payer", p.Payer, "client", p.ClientID,
		"service", p.PaidByService)
	writeJSON(w, http.StatusCreated, p)
}

// orderAmount asks orders for the order with the caller's token and checks
// that the caller owns it. A non-zero status is the answer to give.
func (s *Service) orderAmount(r *http.Request, c *auth.Claims, id string) (amount int64, status int, code, desc string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.orders+"/orders/"+url.PathEscape(id), nil)
	if err != nil {
		return 0, http.StatusInternalServerError, "internal", "cannot build the orders request"
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("orders unreachable", "order", id, "err", err)
		return 0, http.StatusBadGateway, "orders_unavailable", "orders could not be reached"
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusForbidden:
		return 0, http.StatusNotFound, "not_found", "no such order"
	default:
		s.log.Warn("orders refused the lookup", "order", id, "status", resp.StatusCode)
		return 0, http.StatusBadGateway, "orders_failed", "orders did not answer"
	}
	var o struct {
		ID          string `json:"id"`
		Owner       string `json:"owner"`
		AmountCents int64  `json:"amount_cents"`
		Status      string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&o); err != nil || o.ID != id || o.Owner == "" {
		return 0, http.StatusBadGateway, "orders_failed", "orders answered nonsense"
	}
	switch {
	case o.Owner != c.Subject:
		return 0, http.StatusForbidden, "forbidden", "only the owner of an order may pay it"
	case o.Status != "open":
		return 0, http.StatusConflict, "already_paid", "the order is not open"
	case o.AmountCents <= 0 || o.AmountCents > maxAmountCents:
		return 0, http.StatusBadGateway, "orders_failed", "orders answered a bad amount"
	}
	return o.AmountCents, 0, "", ""
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	c, _ := auth.ClaimsFromContext(r.Context())
	s.mu.Lock()
	out := []Payment{}
	for _, p := range s.payments {
		if p.Payer == c.Subject {
			out = append(out, p)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"payments": out})
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
