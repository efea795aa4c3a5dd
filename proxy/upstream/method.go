package upstream

// Method is how the proxy identifies itself to a remote authorization
// server: the registration method behind a Grant's client id.
type Method string

// Registration methods.
const (
	// MethodStatic: a pre-registered client with configured endpoints; no
	// discovery.
	MethodStatic Method = "static"
	// MethodPreregistered: a pre-registered client id, discovered
	// endpoints.
	MethodPreregistered Method = "preregistered"
	// MethodCIMD: the route's own Client ID Metadata Document.
	MethodCIMD Method = "cimd"
	// MethodDCR: dynamic client registration (RFC 7591).
	MethodDCR Method = "dcr"
	// MethodWorkload: no registration; the workload's JWT is the
	// credential (SEP-1933), with a public client id when one is
	// configured.
	MethodWorkload Method = "workload"
)

// Metric names the method for the registrations metric, where a static
// client counts as pre-registered.
func (m Method) Metric() string {
	if m == MethodStatic {
		return string(MethodPreregistered)
	}
	return string(m)
}
