package policy

import "sync/atomic"

// Holder holds the active Set and swaps it atomically. The zero Holder holds
// nothing; NewHolder(nil) too.
type Holder struct {
	p atomic.Pointer[Set]
}

// NewHolder returns a Holder holding s (which may be nil: no set loaded yet,
// every decision denies).
func NewHolder(s *Set) *Holder {
	h := &Holder{}
	if s != nil {
		h.p.Store(s)
	}
	return h
}

// Load returns the active set, nil if none was ever loaded.
func (h *Holder) Load() *Set { return h.p.Load() }

// Swap makes s the active set. A nil s is ignored, so a set that failed to
// load (Load returned nil and an error) can never replace a running one.
func (h *Holder) Swap(s *Set) {
	if s == nil {
		return
	}
	h.p.Store(s)
}
