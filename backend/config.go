package backend

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a tier's configuration: option names to values, as they come from
// flags or a YAML file ("capacity": "4GiB", "dir": "/var/lib/distore").
type Config map[string]string

// String returns the option's value, or def when it is not set.
func (c Config) String(key, def string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return def
}

// Bytes returns the option as a byte count ("4GiB", "512MB", "1048576"), or def.
func (c Config) Bytes(key string, def int64) (int64, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	n, err := ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%w: option %s: %v", ErrInvalidArgument, key, err)
	}
	return n, nil
}

// Int returns the option as an integer, or def.
func (c Config) Int(key string, def int) (int, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%w: option %s: %q is not an integer", ErrInvalidArgument, key, v)
	}
	return n, nil
}

// Float returns the option as a number, or def.
func (c Config) Float(key string, def float64) (float64, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: option %s: %q is not a number", ErrInvalidArgument, key, v)
	}
	return f, nil
}

// Bool returns the option as a boolean ("true", "false", "1", "0"), or def.
func (c Config) Bool(key string, def bool) (bool, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%w: option %s: %q is not true or false", ErrInvalidArgument, key, v)
	}
	return b, nil
}

// Duration returns the option as a duration ("5s", "100ms"), or def.
func (c Config) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c[key]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%w: option %s: %q is not a duration", ErrInvalidArgument, key, v)
	}
	return d, nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseBytes parses a byte count: a plain integer, or a number with a unit
// (B, KB/MB/GB/TB in powers of 1000, KiB/MiB/GiB/TiB or K/M/G/T in powers of 1024).
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a byte count (e.g. 1048576, 512MiB, 4GB)", s)
	}
	return int64(f * float64(mult)), nil
}

// ConfigReader reads a tier's options and collects every problem — unknown
// keys, bad values, values out of range — so that Err reports them all at
// once instead of the first only.
//
//	r := cfg.Reader("disk", "dir", "capacity")
//	dir := r.String("dir", "")
//	capacity := r.Bytes("capacity", 0)
//	r.Require(dir != "", "option dir is required")
//	if err := r.Err(); err != nil { ... }
type ConfigReader struct {
	c    Config
	tier string
	errs []error
}

// Reader returns a ConfigReader for tier's options; keys not among known are
// reported by Err.
func (c Config) Reader(tier string, known ...string) *ConfigReader {
	r := &ConfigReader{c: c, tier: tier}
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if !slices.Contains(known, k) {
			r.errs = append(r.errs, fmt.Errorf("unknown option %q (known: %s)", k, strings.Join(known, ", ")))
		}
	}
	return r
}

func (r *ConfigReader) note(err error) {
	if err != nil {
		r.errs = append(r.errs, err)
	}
}

// String returns the option's value, or def.
func (r *ConfigReader) String(key, def string) string { return r.c.String(key, def) }

// Bytes returns the option as a byte count, or def (also when it is bad).
func (r *ConfigReader) Bytes(key string, def int64) int64 {
	v, err := r.c.Bytes(key, def)
	r.note(err)
	return v
}

// Int returns the option as an integer, or def.
func (r *ConfigReader) Int(key string, def int) int {
	v, err := r.c.Int(key, def)
	r.note(err)
	return v
}

// Bool returns the option as a boolean, or def.
func (r *ConfigReader) Bool(key string, def bool) bool {
	v, err := r.c.Bool(key, def)
	r.note(err)
	return v
}

// Duration returns the option as a duration, or def.
func (r *ConfigReader) Duration(key string, def time.Duration) time.Duration {
	v, err := r.c.Duration(key, def)
	r.note(err)
	return v
}

// Require records a problem, formatted from format and args, unless ok.
func (r *ConfigReader) Require(ok bool, format string, args ...any) {
	if !ok {
		r.errs = append(r.errs, fmt.Errorf(format, args...))
	}
}

// Err returns nil, or one error wrapping ErrInvalidArgument that names the
// tier and lists every problem found.
func (r *ConfigReader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(r.errs))
	for i, e := range r.errs {
		msgs[i] = strings.TrimPrefix(e.Error(), ErrInvalidArgument.Error()+": ")
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, r.tier, strings.Join(msgs, "; "))
}
