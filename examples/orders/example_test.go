package orders_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse/gatehouse/examples/internal/demotest"
	"github.com/gatehouse/gatehouse/examples/orders"
)

// Alice reads her order; Bob may not (404, so order ids cannot be probed);
// Alice may not delete Bob's order even though, as his manager, she can
// read it.
func Example() {
	m := demotest.NewMinter() // test tokens (HS256); a real service trusts Gatehouse's JWKS
	v, err := m.NewVerifier(orders.Audience)
	if err != nil {
		panic(err)
	}
	defer v.Close()
	svc, err := orders.New(orders.Config{Authenticator: v})
	if err != nil {
		panic(err)
	}
	h := svc.Handler()
	call := func(method, path, sub string) int {
		tok := m.Mint(demotest.User(sub, []string{"user"}, "orders:read orders:write", orders.Audience))
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	fmt.Println("alice GET o-1001:", call(http.MethodGet, "/orders/o-1001", "usr_alice"))
	fmt.Println("bob GET o-1001:", call(http.MethodGet, "/orders/o-1001", "usr_bob"))
	fmt.Println("alice GET o-2001:", call(http.MethodGet, "/orders/o-2001", "usr_alice"))
	fmt.Println("alice DELETE o-2001:", call(http.MethodDelete, "/orders/o-2001", "usr_alice"))
	// Output:
	// alice GET o-1001: 200
	// bob GET o-1001: 404
	// alice GET o-2001: 200
	// alice DELETE o-2001: 403
}
