package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Tracing sends OpenTelemetry traces of the requests the proxy serves to an
// OTLP receiver (docs/observability.md, "Traces"). The standard OTEL_*
// environment variables fill in what the block leaves out; a setting in the
// file wins over its variable.
type Tracing struct {
	// Endpoint is the OTLP receiver the proxy sends its spans to, such as
	// https://otel-collector.example.com:4318. With http/protobuf the
	// spans go to its path followed by /v1/traces; with grpc the URL names
	// only a host and port. https, or plain http to a loopback address.
	// Not set: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", else
	// "OTEL_EXPORTER_OTLP_ENDPOINT"; a tracing block without an endpoint
	// anywhere is an error.
	Endpoint string `yaml:"endpoint"`

	// Protocol is the OTLP protocol the spans are sent with: http/protobuf
	// or grpc. Default: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", else
	// "OTEL_EXPORTER_OTLP_PROTOCOL", else http/protobuf.
	Protocol string `yaml:"protocol"`

	// SamplingRatio is the share of requests, between 0 and 1, that start
	// a trace of their own. A request whose traceparent header continues a
	// trace is sampled as its caller decided, whatever the ratio. Default:
	// "OTEL_TRACES_SAMPLER" with "OTEL_TRACES_SAMPLER_ARG", else 1 (every
	// request).
	SamplingRatio *float64 `yaml:"sampling_ratio"`

	// ServiceName is the service.name of the proxy's spans. Default:
	// "OTEL_SERVICE_NAME", else the service.name of
	// "OTEL_RESOURCE_ATTRIBUTES", else mcp-proxy.
	ServiceName string `yaml:"service_name"`

	// Headers are the headers sent with every export, such as the API key
	// of a tracing service: write secrets as ${NAME}. Default:
	// "OTEL_EXPORTER_OTLP_TRACES_HEADERS", else
	// "OTEL_EXPORTER_OTLP_HEADERS".
	Headers map[string]string `yaml:"headers"`

	// settings are the effective settings, file and environment resolved;
	// nil when tracing is off.
	settings *TracingSettings
}

// Tracing protocols.
const (
	TracingHTTP = "http/protobuf"
	TracingGRPC = "grpc"
)

// DefaultServiceName is the service.name of the proxy's spans when nothing
// names one.
const DefaultServiceName = "mcp-proxy"

// The OpenTelemetry environment variables the proxy reads.
const (
	EnvSDKDisabled        = "OTEL_SDK_DISABLED"
	EnvTracesExporter     = "OTEL_TRACES_EXPORTER"
	EnvTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesProtocol     = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvProtocol           = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesHeaders      = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	EnvHeaders            = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvTracesSampler      = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg   = "OTEL_TRACES_SAMPLER_ARG"
	EnvServiceName        = "OTEL_SERVICE_NAME"
	EnvResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
)

// TracingVariable is one environment variable the proxy reads for its
// traces: the setting it fills in and what it means.
type TracingVariable struct {
	Name, Setting, Meaning string
}

// TracingVariables lists every OTEL_* variable the proxy reads, in the
// order of the docs' table. The proxy reads no other (the exporter's
// timeout, compression and certificate variables included).
func TracingVariables() []TracingVariable {
	return []TracingVariable{
		{EnvSDKDisabled, "—", "true turns tracing off, whatever the file says."},
		{EnvTracesExporter, "—", "none turns tracing off; otlp (the default) is the only exporter."},
		{EnvTracesEndpoint, "tracing.endpoint", "The receiver's URL, used as it is (with http/protobuf, the whole URL spans are posted to)."},
		{EnvEndpoint, "tracing.endpoint", "The receiver's base URL: with http/protobuf, /v1/traces is added to its path."},
		{EnvTracesProtocol, "tracing.protocol", "http/protobuf or grpc."},
		{EnvProtocol, "tracing.protocol", "http/protobuf or grpc, when the variable above is not set."},
		{EnvTracesHeaders, "tracing.headers", "Headers sent with every export: name=value pairs, comma-separated, values percent-encoded."},
		{EnvHeaders, "tracing.headers", "The same, when the variable above is not set."},
		{EnvTracesSampler, "tracing.sampling_ratio", "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio; sampling_ratio in the file is parentbased_traceidratio."},
		{EnvTracesSamplerArg, "tracing.sampling_ratio", "The ratio of the two traceidratio samplers, between 0 and 1 (default 1)."},
		{EnvServiceName, "tracing.service_name", "The service.name of the proxy's spans."},
		{EnvResourceAttributes, "—", "More resource attributes of the proxy's spans: key=value pairs, comma-separated, values percent-encoded."},
	}
}

// Sampler is how the proxy decides which requests it traces, by the
// names of OTEL_TRACES_SAMPLER.
type Sampler struct {
	// Name is always_on, always_off, traceidratio, parentbased_always_on,
	// parentbased_always_off or parentbased_traceidratio.
	Name string
	// Ratio is the traceidratio samplers' ratio.
	Ratio float64
}

func (s Sampler) String() string {
	if strings.HasSuffix(s.Name, "traceidratio") {
		return s.Name + ":" + strconv.FormatFloat(s.Ratio, 'g', -1, 64)
	}
	return s.Name
}

// TracingSettings are the effective settings of tracing: the file's, with
// the environment's filling in what it leaves out.
type TracingSettings struct {
	// Endpoint is where spans are sent: for http/protobuf the whole URL
	// they are posted to, for grpc scheme://host:port.
	Endpoint *url.URL
	Protocol string
	Sampler  Sampler
	// ServiceName is service.name; Resource are the other resource
	// attributes (OTEL_RESOURCE_ATTRIBUTES), in order.
	ServiceName string
	Resource    [][2]string
	Headers     map[string]string
	// From names, for endpoint, protocol, sampler and service_name, the
	// setting each came from: a field of the file, an environment
	// variable, or "default".
	From map[string]string
}

// TracingSettings returns the effective tracing settings; nil when
// tracing is off.
func (c *Config) TracingSettings() *TracingSettings { return c.Tracing.settings }

// validate checks the tracing block and the OTEL_* variables, and resolves
// the effective settings.
func (t *Tracing) validate(d *decoder) {
	env := func(k string) string {
		v, _ := d.lookupEnv(k)
		return strings.TrimSpace(v)
	}
	_, block := d.nodes["tracing"]
	if !block && env(EnvTracesEndpoint) == "" && env(EnvEndpoint) == "" {
		// Nothing asks for traces: the other OTEL_* variables, set for
		// other programs perhaps, are not the proxy's business.
		return
	}
	s := &TracingSettings{From: map[string]string{}}
	on := true
	if strings.EqualFold(env(EnvSDKDisabled), "true") {
		on = false
	}
	for e := range strings.SplitSeq(env(EnvTracesExporter), ",") {
		switch e = strings.TrimSpace(e); e {
		case "", "otlp":
		case "none":
			on = false
		default:
			envErrorf(d, EnvTracesExporter, "%q is not an exporter of the proxy; use otlp, or none to turn tracing off", e)
		}
	}
	s.Protocol = t.protocol(d, env, s)
	t.endpoint(d, env, s, block)
	t.sampler(d, env, s)
	t.resource(d, env, s)
	s.Headers = t.headers(d, env)
	if on && s.Endpoint != nil {
		t.settings = s
	}
}

// envErrorf reports a problem with an environment variable.
func envErrorf(d *decoder, name, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: "environment", Path: name, Msg: fmt.Sprintf(format, args...)})
	d.errPaths[name] = true
}

// pick returns the file's value, else the first variable set, and where it
// came from.
func pick(file, field string, env func(string) string, vars ...string) (string, string) {
	if file != "" {
		return file, field
	}
	for _, v := range vars {
		if val := env(v); val != "" {
			return val, v
		}
	}
	return "", ""
}

func (t *Tracing) protocol(d *decoder, env func(string) string, s *TracingSettings) string {
	p, from := pick(t.Protocol, "tracing.protocol", env, EnvTracesProtocol, EnvProtocol)
	if p == "" {
		s.From["protocol"] = "default"
		return TracingHTTP
	}
	s.From["protocol"] = from
	if p != TracingHTTP && p != TracingGRPC {
		msg := fmt.Sprintf("%q is not a protocol of the proxy's exporter; use http/protobuf or grpc", p)
		if p == "http/json" {
			msg += " (the OpenTelemetry Go exporter does not send JSON)"
		}
		if from == "tracing.protocol" {
			d.errorf(d.pos(from), from, "%s", msg)
		} else {
			envErrorf(d, from, "%s", msg)
		}
		return TracingHTTP
	}
	return p
}

func (t *Tracing) endpoint(d *decoder, env func(string) string, s *TracingSettings, block bool) {
	raw, from := pick(t.Endpoint, "tracing.endpoint", env, EnvTracesEndpoint, EnvEndpoint)
	report := func(format string, args ...any) {
		if from == "tracing.endpoint" {
			d.errorf(d.pos(from), from, format, args...)
		} else {
			envErrorf(d, from, format, args...)
		}
	}
	if raw == "" {
		if block {
			d.errorf(d.pos("tracing"), "tracing.endpoint", "missing; name the OTLP receiver, such as https://otel-collector.example.com:4318, here or in %s", EnvEndpoint)
		}
		return
	}
	u, msg := parseServiceURL(raw)
	if msg != "" {
		report("%s", msg)
		return
	}
	if u.RawQuery != "" {
		report("%q has a query; name the receiver without one (headers go in tracing.headers)", raw)
		return
	}
	s.From["endpoint"] = from
	switch {
	case s.Protocol == TracingGRPC && u.Path != "" && u.Path != "/":
		report("%q has a path; with grpc the endpoint names only the receiver's host and port, such as https://otel-collector.example.com:4317", raw)
		return
	case s.Protocol == TracingGRPC:
		u.Path = ""
	case from != EnvTracesEndpoint:
		// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the signal's path
		// follows it.
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	case u.Path == "":
		u.Path = "/"
	}
	s.Endpoint = u
}

func (t *Tracing) sampler(d *decoder, env func(string) string, s *TracingSettings) {
	if r := t.SamplingRatio; r != nil {
		if *r < 0 || *r > 1 {
			d.errorf(d.pos("tracing.sampling_ratio"), "tracing.sampling_ratio", "%v is not a ratio between 0 and 1, such as 0.1", *r)
		}
		s.Sampler, s.From["sampler"] = Sampler{Name: "parentbased_traceidratio", Ratio: *r}, "tracing.sampling_ratio"
		return
	}
	name := env(EnvTracesSampler)
	if name == "" {
		s.Sampler, s.From["sampler"] = Sampler{Name: "parentbased_always_on", Ratio: 1}, "default"
		return
	}
	s.From["sampler"] = EnvTracesSampler
	switch name {
	case "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		s.Sampler = Sampler{Name: name}
	case "traceidratio", "parentbased_traceidratio":
		s.Sampler = Sampler{Name: name, Ratio: 1}
		if arg := env(EnvTracesSamplerArg); arg != "" {
			r, err := strconv.ParseFloat(arg, 64)
			if err != nil || r < 0 || r > 1 {
				envErrorf(d, EnvTracesSamplerArg, "%q is not a ratio between 0 and 1, such as 0.1", arg)
				return
			}
			s.Sampler.Ratio = r
		}
	default:
		envErrorf(d, EnvTracesSampler, "%q is not a sampler of the proxy; use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
	}
}

func (t *Tracing) resource(d *decoder, env func(string) string, s *TracingSettings) {
	attrs, err := parsePairs(env(EnvResourceAttributes))
	if err != nil {
		envErrorf(d, EnvResourceAttributes, "%v", err)
	}
	var resourceName string
	for _, kv := range attrs {
		if kv[0] == "service.name" {
			resourceName = kv[1]
			continue
		}
		s.Resource = append(s.Resource, kv)
	}
	if _, set := d.nodes["tracing.service_name"]; set && strings.TrimSpace(t.ServiceName) == "" {
		d.errorf(d.pos("tracing.service_name"), "tracing.service_name", "empty; name the service, or leave the field out for mcp-proxy")
	}
	s.ServiceName, s.From["service_name"] = pick(t.ServiceName, "tracing.service_name", env, EnvServiceName)
	switch {
	case s.ServiceName != "":
	case resourceName != "":
		s.ServiceName, s.From["service_name"] = resourceName, EnvResourceAttributes
	default:
		s.ServiceName, s.From["service_name"] = DefaultServiceName, "default"
	}
}

func (t *Tracing) headers(d *decoder, env func(string) string) map[string]string {
	if t.Headers != nil {
		for name := range t.Headers {
			if !httpguts.ValidHeaderFieldName(name) {
				p := "tracing.headers." + name
				d.errorf(d.pos(p), p, "%q is not an HTTP header name", name)
			}
		}
		return t.Headers
	}
	for _, v := range []string{EnvTracesHeaders, EnvHeaders} {
		raw := env(v)
		if raw == "" {
			continue
		}
		pairs, err := parsePairs(raw)
		if err != nil {
			envErrorf(d, v, "%v", err)
			return nil
		}
		h := make(map[string]string, len(pairs))
		for _, kv := range pairs {
			if !httpguts.ValidHeaderFieldName(kv[0]) {
				envErrorf(d, v, "%q is not an HTTP header name", kv[0])
				continue
			}
			h[kv[0]] = kv[1]
		}
		return h
	}
	return nil
}

// parsePairs reads the W3C Baggage-like list of OTEL_RESOURCE_ATTRIBUTES
// and OTEL_EXPORTER_OTLP_HEADERS: key=value pairs, comma-separated, values
// percent-encoded. Its errors never quote a value, which may be a secret.
func parsePairs(s string) ([][2]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out [][2]string
	for i, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("item %d is not key=value; write key=value pairs separated by commas", i+1)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %s is not percent-encoded correctly", k)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}
