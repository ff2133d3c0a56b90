package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Factory makes a Backend from its configuration. It validates the config (an
// unknown key or a bad value is an error) but does not set the backend up.
type Factory func(cfg Config) (Backend, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a tier available by name. Registering a name twice, an empty
// name, or a nil factory is an error. Tiers call MustRegister from init.
func Register(name string, f Factory) error {
	if name == "" || strings.ContainsAny(name, ", \t\n") || f == nil {
		return fmt.Errorf("backend: cannot register %q: name must be non-empty without commas or spaces, and the factory non-nil", name)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		return fmt.Errorf("backend: tier %q registered twice", name)
	}
	registry[name] = f
	return nil
}

// MustRegister is Register that panics on error, for a tier's init.
func MustRegister(name string, f Factory) {
	if err := Register(name, f); err != nil {
		panic(err)
	}
}

// Registered returns the names of the registered tiers, sorted.
func Registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New makes the backend registered as name from cfg, without setting it up.
// The tier comes wrapped (see Wrap): the contract's common checks are done
// once, in this package.
func New(name string, cfg Config) (Backend, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("backend: %w: no tier registered as %q (registered: %s; is its package imported?)",
			ErrUnavailable, name, strings.Join(Registered(), ", "))
	}
	b, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	return Wrap(name, b), nil
}

// Open makes the backend registered as name from cfg and sets it up. The caller
// tears it down.
func Open(ctx context.Context, name string, cfg Config) (Backend, error) {
	b, err := New(name, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Setup(ctx); err != nil {
		return nil, err
	}
	return b, nil
}
