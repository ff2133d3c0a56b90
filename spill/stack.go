package spill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"distore/backend"
	"distore/levels"
)

// Default policy values.
const (
	// DefaultHighWatermark is the fraction of a tier's capacity above which the
	// mover starts spilling: early enough that Puts rarely find the tier full.
	DefaultHighWatermark = 0.9
	// DefaultLowWatermark is the fraction the mover spills a tier down to: far
	// enough below the high mark that spilling runs in batches, not per Put.
	DefaultLowWatermark = 0.7
	// DefaultMaxConcurrentMoves bounds the moves in flight.
	DefaultMaxConcurrentMoves = 4
)

// Config keys that ParseTiers takes out of a tier's config for the stack.
const (
	ConfigHighWatermark = "high_watermark"
	ConfigLowWatermark  = "low_watermark"
)

// TierSpec names one tier of a stack and its configuration.
type TierSpec struct {
	// Name is the name the tier is registered under ("memory", "disk", ...).
	Name string
	// Config is passed to the tier's factory.
	Config backend.Config
	// HighWatermark and LowWatermark are fractions of the tier's capacity
	// (0 < low < high <= 1); 0 means the defaults.
	HighWatermark, LowWatermark float64
}

// Options configure a Stack.
type Options struct {
	// Tiers, fastest first. Open builds them; NewStack takes only their
	// watermarks (when given, there must be one per tier).
	Tiers []TierSpec
	// PromoteOnGet promotes an object read from a lower tier in the background,
	// when a faster tier has room under its high watermark. Off by default.
	PromoteOnGet bool
	// PromoteOnPin promotes an object when it is pinned, in the background.
	PromoteOnPin bool
	// MaxConcurrentMoves bounds the spills and promotions in flight;
	// 0 means DefaultMaxConcurrentMoves.
	MaxConcurrentMoves int
	// Logger receives the mover's notices; nil means slog.Default().
	Logger *slog.Logger
}

// ParseTiers parses a comma-separated list of registered tier names, fastest
// first ("memory,disk,s3"), into tier specs with their configs from cfgs
// (which may lack a tier: empty config). The keys high_watermark and
// low_watermark of a tier's config are taken out for the stack.
func ParseTiers(list string, cfgs map[string]backend.Config) ([]TierSpec, error) {
	registered := backend.Registered()
	var specs []TierSpec
	seen := map[string]bool{}
	for _, raw := range strings.Split(list, ",") {
		name := strings.TrimSpace(raw)
		switch {
		case name == "":
			return nil, fmt.Errorf("spill: %w: empty tier name in %q", backend.ErrInvalidArgument, list)
		case seen[name]:
			return nil, fmt.Errorf("spill: %w: tier %q repeated in %q", backend.ErrInvalidArgument, name, list)
		case !slices.Contains(registered, name):
			return nil, fmt.Errorf("spill: %w: no tier registered as %q in %q (registered: %s; is its package imported?)",
				backend.ErrUnavailable, name, list, strings.Join(registered, ", "))
		}
		seen[name] = true
		spec := TierSpec{Name: name, Config: backend.Config{}}
		var err error
		for k, v := range cfgs[name] {
			spec.Config[k] = v
		}
		if spec.HighWatermark, err = spec.Config.Float(ConfigHighWatermark, 0); err != nil {
			return nil, fmt.Errorf("spill: tier %s: %w", name, err)
		}
		if spec.LowWatermark, err = spec.Config.Float(ConfigLowWatermark, 0); err != nil {
			return nil, fmt.Errorf("spill: tier %s: %w", name, err)
		}
		delete(spec.Config, ConfigHighWatermark)
		delete(spec.Config, ConfigLowWatermark)
		specs = append(specs, spec)
	}
	for name := range cfgs {
		if !seen[name] {
			return nil, fmt.Errorf("spill: %w: config given for tier %q, which is not in %q", backend.ErrInvalidArgument, name, list)
		}
	}
	return specs, nil
}

// Stack is a backend.Backend made of tiers, fastest first, with the spill and
// promote policy of the package doc. It is safe for concurrent use.
type Stack struct {
	opts  Options
	log   *slog.Logger
	name  string
	level levels.Level
	tiers []*tierState
	sem   *semaphore.Weighted

	mu      sync.Mutex
	index   map[backend.ID]*entry
	clock   uint64
	tickets uint64 // waiters' tickets (see place)
	closed  bool
	changed chan struct{} // closed and replaced when room may have appeared
	met     Metrics       // counters; Tiers and MovesInFlight filled by Metrics()
	moving  int

	kickCh  chan struct{}
	closing chan struct{}
	bg      context.Context
	stopBg  context.CancelFunc
	wg      sync.WaitGroup
	bufs    sync.Pool
}

var _ backend.Backend = (*Stack)(nil)

// Open builds the tiers of opts.Tiers with backend.New, sets them up, and
// returns a stack over them with its index rebuilt from what they hold. On an
// error the tiers set up so far are torn down.
func Open(ctx context.Context, opts Options) (*Stack, error) {
	if len(opts.Tiers) == 0 {
		return nil, fmt.Errorf("spill: %w: no tiers", backend.ErrInvalidArgument)
	}
	var tiers []backend.Backend
	undo := func() {
		for _, b := range slices.Backward(tiers) {
			_ = b.Teardown(context.WithoutCancel(ctx))
		}
	}
	for _, spec := range opts.Tiers {
		b, err := backend.New(spec.Name, spec.Config)
		if err == nil {
			err = b.Setup(ctx)
		}
		if err != nil {
			undo()
			return nil, fmt.Errorf("spill: tier %s: %w", spec.Name, err)
		}
		tiers = append(tiers, b)
	}
	s, err := NewStack(ctx, tiers, opts)
	if err != nil {
		undo()
		return nil, err
	}
	return s, nil
}

// NewStack returns a stack over tiers that are already set up, fastest first
// (a user's own tiers among them, if they like), and rebuilds the index from
// what the tiers hold. opts.Tiers, if not empty, gives each tier's watermarks
// (and, where the tier's Stats has none, its name). The stack owns the tiers:
// its Teardown tears them down.
func NewStack(ctx context.Context, tiers []backend.Backend, opts Options) (*Stack, error) {
	if len(tiers) == 0 || len(tiers) > 64 {
		return nil, fmt.Errorf("spill: %w: a stack needs 1 to 64 tiers, got %d", backend.ErrInvalidArgument, len(tiers))
	}
	if len(opts.Tiers) != 0 && len(opts.Tiers) != len(tiers) {
		return nil, fmt.Errorf("spill: %w: %d tier specs for %d tiers", backend.ErrInvalidArgument, len(opts.Tiers), len(tiers))
	}
	if opts.MaxConcurrentMoves <= 0 {
		opts.MaxConcurrentMoves = DefaultMaxConcurrentMoves
	}
	s := &Stack{
		opts:    opts,
		log:     cmp.Or(opts.Logger, slog.Default()),
		sem:     semaphore.NewWeighted(int64(opts.MaxConcurrentMoves)),
		index:   map[backend.ID]*entry{},
		changed: make(chan struct{}),
		kickCh:  make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	s.bufs.New = func() any { b := make([]byte, 1<<20); return &b }
	var names []string
	for i, b := range tiers {
		st, err := b.Stats(ctx)
		if err != nil {
			return nil, fmt.Errorf("spill: stats of tier %d: %w", i, err)
		}
		t := &tierState{b: backend.Trusted(b), given: b, name: st.Tier, level: b.Level(), cap: max(st.Capacity, 0),
			high: DefaultHighWatermark, low: DefaultLowWatermark,
			spillable: map[int]int64{}, entries: map[*entry]struct{}{}}
		if len(opts.Tiers) > 0 {
			spec := opts.Tiers[i]
			t.name = cmp.Or(t.name, spec.Name)
			t.high = cmp.Or(spec.HighWatermark, t.high)
			t.low = cmp.Or(spec.LowWatermark, t.low)
		}
		t.name = cmp.Or(t.name, fmt.Sprintf("tier%d", i))
		if !(t.low > 0 && t.low < t.high && t.high <= 1) {
			return nil, fmt.Errorf("spill: %w: tier %s: watermarks low %g, high %g: want 0 < low < high <= 1",
				backend.ErrInvalidArgument, t.name, t.low, t.high)
		}
		s.tiers = append(s.tiers, t)
		s.level |= t.level
		names = append(names, t.name)
	}
	s.name = strings.Join(names, ",")
	if err := s.rebuild(ctx); err != nil {
		return nil, err
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.planLoop()
	s.kick()
	return s, nil
}

// Setup does nothing: Open and NewStack return a stack that is set up.
func (s *Stack) Setup(ctx context.Context) error { return nil }

// Teardown stops the mover (moves in flight are cancelled and leave the
// object where it was), then tears down every tier. After it every method
// returns ErrClosed; Objects handed out by Get stay valid until closed.
func (s *Stack) Teardown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stopBg()
	close(s.closing)
	s.notifyLocked()
	s.mu.Unlock()
	s.wg.Wait()
	var errs []error
	for _, t := range s.tiers {
		if err := t.b.Teardown(ctx); err != nil && !errors.Is(err, backend.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Level is the union of the tiers' levels.
func (s *Stack) Level() levels.Level { return s.level }

// Tiers returns the stack's tiers, fastest first.
func (s *Stack) Tiers() []backend.Backend {
	out := make([]backend.Backend, len(s.tiers))
	for i, t := range s.tiers {
		out[i] = t.given
	}
	return out
}

// Name is the stack's name in errors and Stats: its tiers' names joined by
// commas ("memory,disk").
func (s *Stack) Name() string { return s.name }

// closedErr returns ErrClosed for op once the stack is torn down. Called with
// s.mu held.
func (s *Stack) closedErr(op string, id backend.ID) error {
	if s.closed {
		return backend.Errorf(op, s.name, id, backend.ErrClosed, "")
	}
	return nil
}

// List returns the stack's objects in ascending ID order, from the index: an
// object being moved is listed once, where the index has it.
func (s *Stack) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf("list", s.name, "", err, "")
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closedErr("list", ""); err != nil {
		return nil, err
	}
	// One pass over the index keeps the limit smallest IDs: O(n log limit).
	var page []*entry
	for id, e := range s.index {
		if e.pending || id <= opts.After || !strings.HasPrefix(string(id), opts.Prefix) {
			continue
		}
		if len(page) == limit && id >= page[limit-1].id {
			continue
		}
		i, _ := slices.BinarySearchFunc(page, id, func(e *entry, id backend.ID) int { return strings.Compare(string(e.id), string(id)) })
		page = slices.Insert(page, i, e)
		if len(page) > limit {
			page = page[:limit]
		}
	}
	out := make([]backend.ObjectInfo, len(page))
	for i, e := range page {
		out[i] = s.infoOf(e)
	}
	return out, nil
}

// Stats sums the tiers' stats; Tiers holds each tier's own. Objects counts
// each object once, even while it is being moved.
func (s *Stack) Stats(ctx context.Context) (backend.Stats, error) {
	s.mu.Lock()
	err := s.closedErr("stats", "")
	s.mu.Unlock()
	if err != nil {
		return backend.Stats{}, err
	}
	out := backend.Stats{Tier: s.name, Level: s.level}
	for _, t := range s.tiers {
		st, err := t.b.Stats(ctx)
		if err != nil {
			return backend.Stats{}, err
		}
		out.Capacity += st.Capacity
		out.Used += st.Used
		out.Pinned += st.Pinned
		out.PinnedObjects += st.PinnedObjects
		out.Tiers = append(out.Tiers, st)
	}
	s.mu.Lock()
	for _, e := range s.index {
		if !e.pending {
			out.Objects++
		}
	}
	s.mu.Unlock()
	return out, nil
}

// Metrics are the stack's counters since it was opened, for monitoring.
type Metrics struct {
	// Objects and bytes moved down (spilled) and up (promoted).
	SpilledObjects, SpilledBytes   int64
	PromotedObjects, PromotedBytes int64
	// MoveTime is the time spent in completed moves, summed over moves.
	MoveTime time.Duration
	// MovesInFlight is the number of moves running now.
	MovesInFlight int
	// MovesFailed counts moves that failed (the object stayed where it was);
	// MovesUndone those abandoned because a Pin or Delete won the race.
	MovesFailed, MovesUndone int64
	// PutsWaited counts Puts and Prefetches that waited for the mover to make
	// room; PutWaitTime is their total wait.
	PutsWaited  int64
	PutWaitTime time.Duration
	// PutsBelow counts Puts placed below the fastest tier that could hold the
	// object, because that tier was full or its floor was higher.
	PutsBelow int64
	// OrphanCopies counts source copies that could not be deleted after a
	// move; the next Open deletes them. DuplicatesResolved counts objects
	// found in two tiers by Open.
	OrphanCopies, DuplicatesResolved int64
	// Tiers is each tier's usage as the index sees it, fastest first.
	Tiers []TierMetrics
}

// TierMetrics is one tier's usage and policy state.
type TierMetrics struct {
	// Stats has the tier's name, level, capacity, used bytes and objects, and
	// pinned bytes and objects, from the index (no I/O).
	backend.Stats
	HighWatermark, LowWatermark float64
	// Reserved is the bytes being written into the tier; Leaving the bytes
	// being moved out; Overhead what the tier uses beyond its objects' bytes.
	Reserved, Leaving, Overhead int64
	// Floor is the admission floor when HasFloor (see the package doc).
	Floor    int
	HasFloor bool
}

// Metrics returns a snapshot of the stack's counters.
func (s *Stack) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.met
	m.MovesInFlight = s.moving
	for _, t := range s.tiers {
		m.Tiers = append(m.Tiers, TierMetrics{
			Stats: backend.Stats{Tier: t.name, Level: t.level, Capacity: t.cap, Used: t.used,
				Objects: t.objects, Pinned: t.pinned, PinnedObjects: t.pinnedN},
			HighWatermark: t.high, LowWatermark: t.low,
			Reserved: t.reserved, Leaving: t.leaving, Overhead: t.overhead,
			Floor: t.floor, HasFloor: t.hasFloor,
		})
	}
	return m
}

// Settle waits until no move is in flight and no tier needs spilling (or
// cannot spill further), or until ctx ends. Tests, benchmarks and graceful
// shutdowns use it.
func (s *Stack) Settle(ctx context.Context) error {
	for {
		s.mu.Lock()
		if err := s.closedErr("settle", ""); err != nil {
			s.mu.Unlock()
			return err
		}
		busy := s.moving > 0
		for i := range s.tiers {
			if !busy && s.spillAmount(i) > 0 && s.canSpill(i) {
				busy = true
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if !busy {
			return nil
		}
		s.kick()
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return backend.Errorf("settle", s.name, "", ctx.Err(), "")
		}
	}
}
