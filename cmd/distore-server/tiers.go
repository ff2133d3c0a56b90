package main

// Every tier is compiled in, so --levels can name any of them; a tier that
// cannot run here (no GPU, no S3 endpoint) refuses at start with its
// ErrUnavailable message.
import (
	_ "distore/disk"
	_ "distore/remote/s3"
	_ "distore/shmem"
)
