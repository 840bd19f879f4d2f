package idp

import "testing"

func TestMatchRedirectURI(t *testing.T) {
	reg := []string{"https://client.example.com/cb", "http://127.0.0.1/native", "http://[::1]:8080/cb", "http://localhost:9000/cb", "com.example.app:/oauth"}
	good := []string{
		"https://client.example.com/cb",
		"http://127.0.0.1/native", "http://127.0.0.1:51234/native",
		"http://[::1]:1/cb", "http://[::1]/cb",
		"http://localhost:9000/cb",
		"com.example.app:/oauth",
	}
	for _, g := range good {
		if !MatchRedirectURI(reg, g) {
			t.Errorf("should match: %q", g)
		}
	}
	bad := []string{
		"https://client.example.com/cb/", "https://client.example.com/cb?x=1", "https://client.example.com/cb#f",
		"https://client.example.com/cb/../evil", "https://client.example.com/cb/%2e%2e/evil", "https://client.example.com/%2e%2e",
		"https://client.example.com/cb%252e", "HTTPS://client.example.com/cb", "https://CLIENT.example.com/cb",
		"https://client.example.com/CB", "https://client.example.com.evil.com/cb", "https://client.example.com@evil.com/cb",
		"//evil.com", "//client.example.com/cb", "javascript:alert(1)", "data:text/html,x", "http://client.example.com/cb",
		"https://client.example.com:443/cb", "https://client.example.com/cb ", " https://client.example.com/cb",
		"http://localhost/native", "http://localhost:51234/native", // localhost is not 127.0.0.1
		"http://127.0.0.1:9000/cb", // 127.0.0.1 is not localhost
		"http://localhost:9001/cb", // localhost gets no port exception
		"http://127.0.0.1:1/native/", "http://127.0.0.1:1/native?x=1", "http://127.0.0.1:1/native#x",
		"http://user@127.0.0.1:1/native", "http://127.0.0.1:abc/native", "http://127.0.0.2/native",
		"https://127.0.0.1/native", "http://127.0.0.1.evil.com/native", "", "com.example.app:/oauth/x",
	}
	for _, b := range bad {
		t.Run("OA-R/"+b, func(t *testing.T) {
			if MatchRedirectURI(reg, b) {
				t.Errorf("must not match: %q", b)
			}
		})
	}
}

func FuzzMatchRedirectURI(f *testing.F) {
	reg := []string{"https://client.example.com/cb", "http://127.0.0.1/native"}
	f.Add("https://client.example.com/cb")
	f.Add("http://127.0.0.1:8080/native")
	f.Add("http://[::1]:8080/native")
	f.Fuzz(func(t *testing.T, s string) {
		if MatchRedirectURI(reg, s) {
			// Anything accepted is either an exact registered string or the
			// loopback one with only the port changed.
			if s != reg[0] && stripPort(s) != "http://127.0.0.1/native" {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}
