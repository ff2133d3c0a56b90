package gpu

import (
	"fmt"
	"strconv"
	"strings"

	"distore/backend"
)

// Configuration keys of the gpu tier.
const (
	// KeyDevice is the CUDA device ordinal (default 0).
	KeyDevice = "device"
	// KeyCapacity is the device memory the tier takes at Setup in one
	// allocation: a byte count ("8GiB") or a fraction of the device's free
	// memory, written with a decimal point or a percent sign ("0.5", "50%").
	// Default 0.5.
	KeyCapacity = "capacity"
	// KeyStaging is the pinned host memory used to stage host→device copies
	// (default 128MiB), split into transfer lanes of two chunks each.
	KeyStaging = "staging"
	// KeyChunk is the largest transfer chunk (default 8MiB); a transfer is cut
	// into chunks so copying into staging overlaps the DMA of the previous one.
	KeyChunk = "chunk"
	// KeyHostCache is the pinned host memory (default 512MiB) that Get copies
	// objects into; a Get that does not fit pins a buffer of its own, which is
	// slower (pinning costs about as much as the copy).
	KeyHostCache = "host_cache"
)

const (
	defaultCapacity  = "0.5"
	defaultStaging   = 128 << 20
	defaultChunk     = 8 << 20
	defaultHostCache = 512 << 20
	minChunk         = 1 << 20
	// deviceAlign is the alignment of objects in device memory: cuMemAlloc
	// aligns to 256 bytes or more, and kernels expect it of their inputs.
	deviceAlign = 256
	// hostAlign aligns Get buffers to cache lines.
	hostAlign = 64
)

// config is the tier's validated configuration.
type config struct {
	device    int
	capBytes  int64   // capacity in bytes, when given as a byte count
	capFrac   float64 // capacity as a fraction of free memory, when given so
	staging   int64
	chunk     int64
	hostCache int64
}

func parseConfig(cfg backend.Config) (config, error) {
	var c config
	r := cfg.Reader(Name, KeyDevice, KeyCapacity, KeyStaging, KeyChunk, KeyHostCache)
	c.device = r.Int(KeyDevice, 0)
	r.Require(c.device >= 0, "option %s: device ordinal %d is negative", KeyDevice, c.device)
	var err error
	c.capBytes, c.capFrac, err = parseCapacity(r.String(KeyCapacity, defaultCapacity))
	r.Require(err == nil, "option %s: %v", KeyCapacity, err)
	c.staging = r.Bytes(KeyStaging, defaultStaging)
	c.chunk = r.Bytes(KeyChunk, defaultChunk)
	c.hostCache = r.Bytes(KeyHostCache, defaultHostCache)
	r.Require(c.chunk >= minChunk, "option %s: %s is below the minimum %s",
		KeyChunk, backend.FormatBytes(c.chunk), backend.FormatBytes(minChunk))
	r.Require(c.staging >= 2*c.chunk, "option %s: %s holds less than two chunks of %s",
		KeyStaging, backend.FormatBytes(c.staging), backend.FormatBytes(c.chunk))
	return c, r.Err()
}

// parseCapacity reads a byte count or a fraction of free memory.
func parseCapacity(s string) (bytes int64, frac float64, err error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, 0, fmt.Errorf("%q is not a percentage in (0, 100]", s)
		}
		return 0, f / 100, nil
	}
	if strings.Contains(t, ".") {
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			if f <= 0 || f > 1 {
				return 0, 0, fmt.Errorf("%q is not a fraction in (0, 1] of free device memory (or give a byte count with a unit)", s)
			}
			return 0, f, nil
		}
	}
	n, err := backend.ParseBytes(t)
	if err != nil {
		return 0, 0, err
	}
	if n < deviceAlign {
		return 0, 0, fmt.Errorf("%q is less than %d bytes", s, deviceAlign)
	}
	return n, 0, nil
}

// capacity resolves the configured capacity against the device's free memory.
func (c config) capacity(free int64) int64 {
	if c.capFrac > 0 {
		return int64(float64(free) * c.capFrac)
	}
	return c.capBytes
}
