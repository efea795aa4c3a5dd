package stack

import (
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
)

// A part is something the stacks take from the machine when it is there
// and embed when it is not, so that the scenarios run on a machine with
// only Go and make. Each run says which parts were real and which embedded.
const (
	// PartDocker is a Docker engine: the container stack, else the
	// in-process one.
	PartDocker = "docker"
	// PartRedis is redis-server: the Redis store's server in the replica
	// scenarios, else miniredis in process.
	PartRedis = "redis-server"
)

// How a part was provided.
const (
	Real     = "real"
	Embedded = "embedded"
)

// Part is how one run provided one part.
type Part struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`   // Real or Embedded
	Detail string `json:"detail"` // which binary, or what stood in for it
}

func (p Part) String() string { return fmt.Sprintf("%s %s (%s)", p.Name, p.Kind, p.Detail) }

var parts struct {
	sync.Mutex
	used     map[string]Part
	required []string
}

// RequireReal makes the named parts mandatory: a stack that would embed
// one fails instead. make test requires the real ones.
func RequireReal(names ...string) error {
	for _, n := range names {
		if n != PartDocker && n != PartRedis {
			return fmt.Errorf("stack: no part is called %q (the parts are %s and %s)", n, PartDocker, PartRedis)
		}
	}
	parts.Lock()
	defer parts.Unlock()
	parts.required = append(parts.required, names...)
	return nil
}

func realRequired(name string) bool {
	parts.Lock()
	defer parts.Unlock()
	return slices.Contains(parts.required, name)
}

// RecordPart notes how this run provided a part; the last word for a part
// wins (every scenario provides it the same way).
func RecordPart(name, kind, detail string) { recordPart(name, kind, detail) }

func recordPart(name, kind, detail string) {
	parts.Lock()
	defer parts.Unlock()
	if parts.used == nil {
		parts.used = make(map[string]Part)
	}
	parts.used[name] = Part{Name: name, Kind: kind, Detail: detail}
}

// Parts lists the parts this run has used so far, by name.
func Parts() []Part {
	parts.Lock()
	defer parts.Unlock()
	out := make([]Part, 0, len(parts.used))
	for _, p := range parts.used {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// miniredisVersion is " " and the version of the embedded Redis server,
// when the build recorded it.
var miniredisVersion = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/alicebob/miniredis/v2" {
				return " " + d.Version
			}
		}
	}
	return ""
}()
