// Package e2e holds Gatehouse's end-to-end tests. They run the real wiring
// (internal/app) over real HTTP against SQLite and PostgreSQL, and drive it
// with real client libraries (golang.org/x/oauth2, github.com/coreos/go-oidc/v3)
// and, for the pages, headless Chromium.
package e2e
