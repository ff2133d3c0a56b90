package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"distore/backend"
)

// MaxPinTTL bounds the TTL of a leased pin.
const MaxPinTTL = 7 * 24 * time.Hour

// pinLeases are pins that end by themselves after a TTL (POST
// /v1/objects/{id}/pin?ttl=30s), so that a scheduler that crashed holding
// pins cannot block spilling forever. Pins stay counted in the backend; a
// lease only remembers to take its pin away when it expires.
type pinLeases struct {
	b   backend.Backend
	log *slog.Logger

	mu     sync.Mutex
	leases map[backend.ID][]*pinLease // per object, in the order they were made
}

type pinLease struct{ t *time.Timer }

func newPinLeases(b backend.Backend, log *slog.Logger) *pinLeases {
	return &pinLeases{b: b, log: log, leases: map[backend.ID][]*pinLease{}}
}

// parseTTL parses a pin's ttl parameter; "" means no TTL (a durable pin).
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > MaxPinTTL {
		return 0, fmt.Errorf("%w: ttl %q: want a positive duration up to %v (e.g. 30s)", backend.ErrInvalidArgument, truncate(s), MaxPinTTL)
	}
	return d, nil
}

// Pin pins id, for ttl if it is positive (else until an Unpin).
func (p *pinLeases) Pin(ctx context.Context, id backend.ID, ttl time.Duration) error {
	if err := p.b.Pin(ctx, id); err != nil {
		return err
	}
	if ttl <= 0 {
		return nil
	}
	l := &pinLease{}
	p.mu.Lock()
	defer p.mu.Unlock()
	l.t = time.AfterFunc(ttl, func() { p.expire(id, l) })
	p.leases[id] = append(p.leases[id], l)
	return nil
}

// Unpin takes a pin away. If the object has leased pins, the oldest lease
// ends with it, so that a lease never later takes away a pin that is gone.
func (p *pinLeases) Unpin(ctx context.Context, id backend.ID) error {
	if err := p.b.Unpin(ctx, id); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ls := p.leases[id]; len(ls) > 0 {
		ls[0].t.Stop()
		p.drop(id, ls[0])
	}
	return nil
}

// expire takes away the pin of a lease whose TTL passed.
func (p *pinLeases) expire(id backend.ID, l *pinLease) {
	p.mu.Lock()
	found := p.drop(id, l)
	p.mu.Unlock()
	if !found {
		return // ended by an Unpin meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.b.Unpin(ctx, id); err != nil && !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, backend.ErrClosed) {
		p.log.Warn("pin lease: unpin at expiry", "id", id, "err", err)
	}
}

// drop forgets lease l of id; p.mu is held.
func (p *pinLeases) drop(id backend.ID, l *pinLease) bool {
	ls := p.leases[id]
	for i, x := range ls {
		if x == l {
			ls = append(ls[:i], ls[i+1:]...)
			if len(ls) == 0 {
				delete(p.leases, id)
			} else {
				p.leases[id] = ls
			}
			return true
		}
	}
	return false
}

// Leased returns the number of pins of id that have a TTL.
func (p *pinLeases) Leased(id backend.ID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.leases[id])
}
