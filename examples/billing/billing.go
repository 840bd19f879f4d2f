// Package billing is the demo batch job of "Alice and her orders": a process
// with no end user that calls the payments service with its own
// client-credentials token (client demo-billing, audience
// https://api.payments.example, scope payments:write).
//
// Run pays a list of invoices and reports each answer. TryReadOrders shows
// the other half of least privilege: the same token is refused by orders
// (401, its audience is payments only).
package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/sdk/auth"
)

// Invoice is one invoice to pay.
type Invoice struct {
	ID          string `json:"invoice_id"`
	AmountCents int64  `json:"amount_cents"`
}

// DemoInvoices is the fixed batch of the demo.
func DemoInvoices() []Invoice {
	return []Invoice{{ID: "inv-1", AmountCents: 1200}, {ID: "inv-2", AmountCents: 4550}, {ID: "inv-3", AmountCents: 99}}
}

// Config configures the job.
type Config struct {
	// TokenSource yields the job's own access tokens; build it with
	// auth.NewClientCredentials, which caches and refreshes them early.
	// Required.
	TokenSource oauth2.TokenSource
	PaymentsURL string // base URL of payments, required by Run
	OrdersURL   string // base URL of orders, required by TryReadOrders
	// HTTPClient is the base client (its Transport carries the calls);
	// default http.DefaultClient's transport with a 10s timeout.
	HTTPClient *http.Client
	Invoices   []Invoice // default DemoInvoices()
	Logger     *slog.Logger
}

// Result is the outcome of one invoice.
type Result struct {
	InvoiceID string
	Status    int    // HTTP status from payments (0 when the call failed)
	PaymentID string // set on success
	Err       error  // transport or token error
}

// OK reports whether the invoice was paid now.
func (r Result) OK() bool { return r.Err == nil && r.Status == http.StatusCreated }

func (r Result) String() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%s: error: %v", r.InvoiceID, r.Err)
	case r.OK():
		return fmt.Sprintf("%s: paid (%s)", r.InvoiceID, r.PaymentID)
	default:
		return fmt.Sprintf("%s: refused (HTTP %d)", r.InvoiceID, r.Status)
	}
}

// client returns an HTTP client that adds the job's own token to calls to
// the configured services, and to nowhere else (auth.NewServiceTransport).
func (cfg Config) client() (*http.Client, error) {
	if cfg.TokenSource == nil {
		return nil, errors.New("billing: a TokenSource is required")
	}
	var origins []string
	for _, base := range []string{cfg.PaymentsURL, cfg.OrdersURL} {
		if base == "" {
			continue
		}
		u, err := url.Parse(base)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("billing: bad service URL %q", base)
		}
		origins = append(origins, u.Scheme+"://"+u.Host)
	}
	c := http.Client{Timeout: 10 * time.Second}
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	rt, err := auth.NewServiceTransport(c.Transport, cfg.TokenSource, origins...)
	if err != nil {
		return nil, err
	}
	c.Transport = rt
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c, nil
}

// Run pays every invoice and returns one Result per invoice. The error is
// for a misconfiguration; refusals and failures are in the results.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.PaymentsURL == "" {
		return nil, errors.New("billing: PaymentsURL is required")
	}
	hc, err := cfg.client()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	invoices := cfg.Invoices
	if invoices == nil {
		invoices = DemoInvoices()
	}
	out := make([]Result, 0, len(invoices))
	for _, inv := range invoices {
		res := pay(ctx, hc, strings.TrimSuffix(cfg.PaymentsURL, "/"), inv)
		log.Info("invoice", "invoice", inv.ID, "status", res.Status, "payment", res.PaymentID, "ok", res.OK())
		out = append(out, res)
	}
	return out, nil
}

func pay(ctx context.Context, hc *http.Client, base string, inv Invoice) Result {
	res := Result{InvoiceID: inv.ID}
	body, _ := json.Marshal(inv)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/payments", bytes.NewReader(body))
	if err != nil {
		res.Err = err
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		res.Err = fmt.Errorf("pay %s: %w", inv.ID, err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	var p struct {
		ID string `json:"id"`
	}
	if resp.StatusCode == http.StatusCreated {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p); err != nil {
			res.Err = fmt.Errorf("pay %s: bad answer: %w", inv.ID, err)
		}
		res.PaymentID = p.ID
	}
	return res
}

// TryReadOrders calls GET /orders with the job's token and returns the HTTP
// status; with the demo's configuration it is 401 (wrong audience). A nil
// error and a 2xx status would mean the job can read orders.
func TryReadOrders(ctx context.Context, cfg Config) (int, error) {
	if cfg.OrdersURL == "" {
		return 0, errors.New("billing: OrdersURL is required")
	}
	hc, err := cfg.client()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.OrdersURL, "/")+"/orders", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read orders: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
