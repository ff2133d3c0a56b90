package servercmd

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"distore/backend"
)

// shmDir is where the memory tier's arena file lives by default.
const shmDir = "/dev/shm"

// ArenaPath is the default arena file of the memory tier for a data dir: one
// per data dir, so a restarted server finds the objects it acknowledged.
func ArenaPath(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(shmDir, "distore-"+hex.EncodeToString(sum[:8])+".arena")
}

// defaultArena points the memory tier at a file in /dev/shm, so objects in
// memory survive a crash of the server (not a reboot), and a restart too when
// keep is set (else a clean shutdown removes the file). Where
// /dev/shm lacks the room, the tier keeps its anonymous memory and says that
// a restart loses what only the memory tier holds.
func defaultArena(c backend.Config, dataDir string, keep bool, log *slog.Logger) {
	path := ArenaPath(dataDir)
	capacity, err := backend.ParseBytes(c["capacity"])
	if err != nil {
		return // the tier reports the bad capacity
	}
	_, statErr := os.Stat(path)
	var fs unix.Statfs_t
	if statErr != nil && (unix.Statfs(shmDir, &fs) != nil || int64(fs.Bavail)*fs.Bsize < capacity) {
		log.Warn("memory tier: /dev/shm has no room for the arena; objects only in memory will not survive a restart",
			"want", backend.FormatBytes(capacity), "dir", shmDir)
		return
	}
	c["path"] = path
	if _, ok := c["keep"]; !ok {
		c["keep"] = strconv.FormatBool(keep)
	}
}
