package workload_test

import (
	"fmt"
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse/gatehouse/sdk/workload"
)

func ExampleNewPolicy() {
	p, err := workload.NewPolicy([]workload.Rule{{
		Name:    "orders-pays",
		Effect:  workload.EffectAllow,
		From:    []string{"spiffe://gatehouse.local/orders"},
		To:      []string{"spiffe://gatehouse.local/payments"},
		Paths:   []string{"/payments", "/payments/*"},
		Methods: []string{"POST"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	orders := spiffeid.RequireFromString("spiffe://gatehouse.local/orders")
	payments := spiffeid.RequireFromString("spiffe://gatehouse.local/payments")
	fmt.Println(p.MayConnect(orders, payments))
	fmt.Println(p.Decide(orders, payments, "POST", "/payments/42").Reason)
	fmt.Println(p.Decide(orders, payments, "POST", "/payments-admin").Reason)
	fmt.Println(p.Decide(orders, payments, "POST", "/payments/%2e%2e/admin").Allow)
	// Output:
	// true
	// allowed by rule "orders-pays"
	// no rule allows spiffe://gatehouse.local/orders to call spiffe://gatehouse.local/payments POST /payments-admin
	// false
}

func ExampleServerTLSConfig() {
	var src interface {
		workload.Source
		workload.PolicySource
	} // a *workload.CASource or, for the TLS part, a Workload API source
	if src == nil {
		return
	}
	self := spiffeid.RequireFromString("spiffe://gatehouse.local/payments")
	conf, err := workload.ServerTLSConfig(src, workload.AuthorizePolicy(src, self))
	if err != nil {
		return
	}
	srv := &http.Server{
		Addr:      ":8443",
		TLSConfig: conf,
		Handler: workload.Middleware(src, self, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller, _ := workload.PeerID(r.Context())
			fmt.Fprintf(w, "hello %s\n", caller)
		})),
	}
	_ = srv.ListenAndServeTLS("", "")
}

func ExampleClientTLSConfig() {
	var src workload.Source // a *workload.CASource or a Workload API source
	if src == nil {
		return
	}
	conf, err := workload.ClientTLSConfig(src,
		workload.AuthorizeID(spiffeid.RequireFromString("spiffe://gatehouse.local/payments")))
	if err != nil {
		return
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	_, _ = client.Get("https://payments.internal:8443/payments")
}
