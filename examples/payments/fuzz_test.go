package payments

import (
	"strings"
	"testing"
)

// FuzzDecode: the body parser never panics, and whatever it accepts is one
// well-formed request: exactly one id of the allowed shape, and an amount
// only for invoices, within bounds.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"order_id":"o-1001"}`, `{"invoice_id":"inv-1","amount_cents":1200}`, `{}`, `[]`,
		`{"order_id":"o-1"} x`, `{"invoice_id":"a","amount_cents":1e3}`, `{"order_id":"O"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decode(strings.NewReader(body))
		if err != nil {
			return
		}
		switch {
		case req.OrderID != "" && req.InvoiceID != "", req.OrderID == "" && req.InvoiceID == "":
			t.Fatalf("accepted %q", body)
		case req.OrderID != "" && (req.AmountCents != nil || !idRE.MatchString(req.OrderID)):
			t.Fatalf("accepted order %q", body)
		case req.InvoiceID != "" && (req.AmountCents == nil || *req.AmountCents < 1 || *req.AmountCents > maxAmountCents):
			t.Fatalf("accepted invoice %q", body)
		case len(body) > maxBody:
			t.Fatalf("accepted %d bytes", len(body))
		}
	})
}
