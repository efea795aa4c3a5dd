//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is not available: keep one writer per
// log by configuration.
func lockFile(*os.File) error { return nil }
