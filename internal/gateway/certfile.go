package gateway

import (
	"crypto/tls"
	"os"
	"sync"
	"time"
)

// certReloader serves a client certificate from files and re-reads them
// when they change (checked at most every 5 s), so short-lived certificates
// renewed on disk are picked up without a restart. A pair that fails to
// load keeps the previous one in use.
type certReloader struct {
	certFile, keyFile string
	now               func() time.Time
	mu                sync.Mutex
	cert              *tls.Certificate
	mod               time.Time
	checked           time.Time
}

func newCertReloader(certFile, keyFile string, now func() time.Time) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, now: now}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) load() error {
	st, err := os.Stat(c.certFile)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.mod = &pair, st.ModTime()
	return nil
}

func (c *certReloader) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= 5*time.Second {
		c.checked = now
		if st, err := os.Stat(c.certFile); err == nil && !st.ModTime().Equal(c.mod) {
			_ = c.load() // on failure the previous pair stays
		}
	}
	return c.cert, nil
}
