package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/storage"
)

// Rotation schedule, as fractions of the active authority's lifetime.
const (
	prepareNum, prepareDen   = 1, 2 // create a prepared successor
	activateNum, activateDen = 5, 6 // activate it
)

// step performs the first rotation action that is due on s and reports
// whether it acted (the caller then reloads). Actions, in order:
//
//  1. roots (generated only): no active root → activate the prepared one or
//     create one; half-life → prepare a successor (published in the bundle at
//     once); 5/6 of life → activate it;
//  2. intermediates: a prepared intermediate not signed by the active root
//     (left over from before a root rotation) is activated so that it is
//     retired (and pruned) by the next activation; no usable active
//     intermediate, or one not signed by the active root (the root rotated)
//     → activate a successor signed by the active root or create one;
//     half-life → prepare a successor; 5/6 → activate it;
//  3. retired authorities past their NotAfter are deleted.
func (c *CA) step(ctx context.Context, s *snapshot) (bool, error) {
	now := c.now()
	if c.up == nil {
		acted, err := c.stepRoot(ctx, s, now)
		if acted || err != nil {
			return acted, err
		}
	}
	if s.root == nil {
		return false, errors.New("ca: no active root")
	}
	rootID := s.root.rec.ID
	for _, a := range s.inters {
		if a.rec.State == storage.AuthorityPrepared && a.issuer != rootID {
			return true, c.activate(ctx, a, now, "retiring an intermediate of a former root")
		}
	}
	act := s.inter
	if act == nil || act.issuer != rootID || !now.Before(act.rec.NotAfter) {
		if next := successor(s.inters, nil, rootID); next != nil {
			return true, c.activate(ctx, next, now, "replacing the active intermediate")
		}
		a, err := c.create(ctx, s, storage.AuthorityIntermediate, now)
		if err != nil {
			return false, err
		}
		return true, c.activate(ctx, a, now, "new intermediate")
	}
	next := successor(s.inters, act, rootID)
	switch {
	case next == nil && lifetimeReached(act.rec, now, prepareNum, prepareDen):
		// A successor is capped by the root's NotAfter: none when it would
		// not outlive the active one (warnExpiring reports it).
		if s.root.cert.NotAfter.After(act.rec.NotAfter) {
			_, err := c.create(ctx, s, storage.AuthorityIntermediate, now)
			return true, err
		}
	case next != nil && lifetimeReached(act.rec, now, activateNum, activateDen):
		return true, c.activate(ctx, next, now, "scheduled")
	}
	return c.prune(ctx, s, now)
}

// stepRoot is step for a generated root.
func (c *CA) stepRoot(ctx context.Context, s *snapshot, now time.Time) (bool, error) {
	if s.root == nil {
		next := successor(s.roots, nil, "")
		if next == nil {
			var err error
			if next, err = c.create(ctx, s, storage.AuthorityRoot, now); err != nil {
				return false, err
			}
		}
		return true, c.activate(ctx, next, now, "no active root")
	}
	next := successor(s.roots, s.root, "")
	switch {
	case next == nil && lifetimeReached(s.root.rec, now, prepareNum, prepareDen):
		_, err := c.create(ctx, s, storage.AuthorityRoot, now)
		return true, err
	case next != nil && lifetimeReached(s.root.rec, now, activateNum, activateDen):
		return true, c.activate(ctx, next, now, "scheduled")
	}
	return false, nil
}

// create generates and stores a prepared authority of kind, generation
// max+1 (an intermediate is signed by the active root). ErrAlreadyExists
// when another replica created that generation first.
func (c *CA) create(ctx context.Context, s *snapshot, kind string, now time.Time) (*authority, error) {
	gen := s.maxGen[kind] + 1
	var parent *authority
	if kind == storage.AuthorityIntermediate {
		parent = s.root
	}
	a, err := c.newAuthority(kind, gen, parent, now)
	if err != nil {
		return nil, err
	}
	if err := c.st.CreateAuthority(ctx, a.rec); err != nil {
		return nil, fmt.Errorf("ca: store %s authority %d: %w", kind, gen, err)
	}
	c.cache[a.rec.ID] = a
	c.log.Info("ca: authority prepared", "kind", kind, "generation", gen,
		"id", a.rec.ID[:16], "not_after", a.rec.NotAfter)
	return a, nil
}

// activate makes a the active authority of its kind (the previous one is
// retired). ErrAlreadyUsed when another replica activated it first.
func (c *CA) activate(ctx context.Context, a *authority, now time.Time, why string) error {
	if err := c.st.ActivateAuthority(ctx, a.rec.ID, now); err != nil {
		return fmt.Errorf("ca: activate %s authority %d: %w", a.rec.Kind, a.rec.Generation, err)
	}
	c.log.Info("ca: authority activated", "kind", a.rec.Kind, "generation", a.rec.Generation,
		"id", a.rec.ID[:16], "not_after", a.rec.NotAfter, "reason", why)
	return nil
}

// prune deletes retired authorities past their NotAfter.
func (c *CA) prune(ctx context.Context, s *snapshot, now time.Time) (bool, error) {
	acted := false
	for _, list := range [][]*authority{s.roots, s.inters} {
		for _, a := range list {
			if a.rec.State != storage.AuthorityRetired || now.Before(a.rec.NotAfter) {
				continue
			}
			err := c.st.DeleteAuthority(ctx, a.rec.ID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return acted, fmt.Errorf("ca: delete %s authority %d: %w", a.rec.Kind, a.rec.Generation, err)
			}
			acted = true
			c.log.Info("ca: expired authority deleted", "kind", a.rec.Kind, "generation", a.rec.Generation,
				"id", a.rec.ID[:16])
		}
	}
	return acted, nil
}

// RotateNow prepares (unless a successor is already prepared) and activates
// a new authority of kind at once: storage.AuthorityRoot (a generated root
// only; a new intermediate signed by it follows immediately) or
// storage.AuthorityIntermediate. An immediate root rotation skips the
// publication period: relying parties that have not refreshed the bundle
// reject the new SVIDs until they do.
func (c *CA) RotateNow(ctx context.Context, kind string) error {
	switch kind {
	case storage.AuthorityRoot:
		if c.up != nil {
			return errors.New("ca: the upstream root is not rotated by the CA")
		}
	case storage.AuthorityIntermediate:
	default:
		return fmt.Errorf("ca: unknown authority kind %q", kind)
	}
	if err := c.rotateNow(ctx, kind); err != nil {
		return err
	}
	return c.refresh(ctx)
}

func (c *CA) rotateNow(ctx context.Context, kind string) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	s, err := c.load(ctx)
	if err != nil {
		return err
	}
	if s.root == nil {
		return ErrNotReady
	}
	now := c.now()
	var next *authority
	if kind == storage.AuthorityRoot {
		next = successor(s.roots, s.root, "")
	} else {
		next = successor(s.inters, s.inter, s.root.rec.ID)
	}
	if next == nil {
		if next, err = c.create(ctx, s, kind, now); err != nil {
			return err
		}
	}
	return c.activate(ctx, next, now, "rotated on request")
}

// warnExpiring logs a warning for each active authority with less than 1/6
// of its life left and no prepared successor.
func (c *CA) warnExpiring(s *snapshot) {
	now := c.now()
	check := func(active *authority, list []*authority, issuer string, what string) {
		if active == nil || !lifetimeReached(active.rec, now, activateNum, activateDen) {
			return
		}
		if successor(list, active, issuer) == nil {
			c.log.Warn("ca: "+what+" expires soon and no successor is prepared",
				"kind", active.rec.Kind, "generation", active.rec.Generation, "not_after", active.rec.NotAfter)
		}
	}
	if c.up != nil {
		if lifetimeReached(c.up.rec, now, activateNum, activateDen) {
			c.log.Warn("ca: the upstream root expires soon: replace it", "not_after", c.up.rec.NotAfter)
		}
	} else {
		check(s.root, s.roots, "", "the active root")
	}
	if s.root != nil {
		check(s.inter, s.inters, s.root.rec.ID, "the active intermediate")
	}
}
