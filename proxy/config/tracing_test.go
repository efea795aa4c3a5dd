package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const tracingRoutes = `routes: [{from: https://a.test, to: https://b.test, mcp: {server: {}}}]
`

// TestTracingSettings: the file's settings win over the OTEL_* variables,
// which fill in what the file leaves out; without an endpoint anywhere,
// and with OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none, tracing is off.
func TestTracingSettings(t *testing.T) {
	dir := writeTLS(t)
	tests := []struct {
		name  string
		block string
		env   map[string]string
		want  string // endpoint protocol sampler service_name headers | from; "off"
	}{
		{name: "off by default", want: "off",
			env: map[string]string{EnvTracesSampler: "jaeger_remote", EnvServiceName: "other"}},
		{name: "the file alone", block: "tracing: {endpoint: https://otel.test:4318}",
			want: "https://otel.test:4318/v1/traces http/protobuf parentbased_always_on mcp-proxy map[] | endpoint: tracing.endpoint, protocol: default, sampler: default, service_name: default"},
		{name: "a base URL with a path", block: "tracing: {endpoint: \"https://otel.test/otlp/\", sampling_ratio: 0.1, service_name: edge}",
			want: "https://otel.test/otlp/v1/traces http/protobuf parentbased_traceidratio:0.1 edge map[] | endpoint: tracing.endpoint, protocol: default, sampler: tracing.sampling_ratio, service_name: tracing.service_name"},
		{name: "the environment alone", env: map[string]string{EnvEndpoint: "http://localhost:4318", EnvTracesSampler: "traceidratio",
			EnvTracesSamplerArg: "0.5", EnvResourceAttributes: "service.name=from-resource,deployment.environment=prod", EnvHeaders: "api-key=a%20b,x=y"},
			want: "http://localhost:4318/v1/traces http/protobuf traceidratio:0.5 from-resource map[api-key:a b x:y] | endpoint: OTEL_EXPORTER_OTLP_ENDPOINT, protocol: default, sampler: OTEL_TRACES_SAMPLER, service_name: OTEL_RESOURCE_ATTRIBUTES"},
		{name: "the signal's endpoint is used as it is", env: map[string]string{EnvTracesEndpoint: "https://otel.test/custom", EnvEndpoint: "https://other.test", EnvServiceName: "svc"},
			want: "https://otel.test/custom http/protobuf parentbased_always_on svc map[] | endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, protocol: default, sampler: default, service_name: OTEL_SERVICE_NAME"},
		{name: "the file wins", block: "tracing:\n  endpoint: https://otel.test:4317\n  protocol: grpc\n  sampling_ratio: 1\n  service_name: file\n  headers: {api-key: \"${KEY}\"}",
			env:  map[string]string{EnvEndpoint: "https://env.test", EnvProtocol: "http/protobuf", EnvTracesSampler: "always_off", EnvServiceName: "env", EnvHeaders: "api-key=env", "KEY": "k1"},
			want: "https://otel.test:4317 grpc parentbased_traceidratio:1 file map[api-key:k1] | endpoint: tracing.endpoint, protocol: tracing.protocol, sampler: tracing.sampling_ratio, service_name: tracing.service_name"},
		{name: "a block takes its endpoint from the environment", block: "tracing: {service_name: file}",
			env:  map[string]string{EnvEndpoint: "https://env.test:4317", EnvTracesProtocol: "grpc", EnvProtocol: "http/protobuf"},
			want: "https://env.test:4317 grpc parentbased_always_on file map[] | endpoint: OTEL_EXPORTER_OTLP_ENDPOINT, protocol: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, sampler: default, service_name: tracing.service_name"},
		{name: "OTEL_SDK_DISABLED", block: "tracing: {endpoint: https://otel.test}", env: map[string]string{EnvSDKDisabled: "TRUE"}, want: "off"},
		{name: "no exporter", env: map[string]string{EnvEndpoint: "https://otel.test", EnvTracesExporter: "none"}, want: "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{"SECRET": "x"}
			for k, v := range tt.env {
				e[k] = v
			}
			cfg, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+tt.block+"\n"+tracingRoutes), env(e))
			if err != nil {
				t.Fatal(err)
			}
			got := "off"
			if s := cfg.TracingSettings(); s != nil {
				got = strings.Join([]string{s.Endpoint.String(), s.Protocol, s.Sampler.String(), s.ServiceName, mapString(s.Headers), "|",
					"endpoint: " + s.From["endpoint"] + ", protocol: " + s.From["protocol"] + ", sampler: " + s.From["sampler"] + ", service_name: " + s.From["service_name"]}, " ")
				if !slices.Contains(cfg.NamedHosts(), s.Endpoint.Hostname()+":"+portOr(s.Endpoint.Port(), s.Endpoint.Scheme)) {
					t.Errorf("NamedHosts %v leaves out the receiver %s", cfg.NamedHosts(), s.Endpoint.Host)
				}
			}
			if got != tt.want {
				t.Errorf("settings\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func portOr(p, scheme string) string {
	if p != "" {
		return p
	}
	return map[string]string{"http": "80", "https": "443"}[scheme]
}

func mapString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(k + ":" + m[k])
	}
	b.WriteString("]")
	return b.String()
}

// TestTracingErrors: every mistake at once, with the file's positions or
// the variable's name, and never a header's value.
func TestTracingErrors(t *testing.T) {
	dir := writeTLS(t)
	tests := []struct {
		name  string
		block string
		env   map[string]string
		want  []string
	}{
		{
			name: "the block",
			block: `tracing:
  endpoint: http://otel.test:4318
  protocol: http/json
  sampling_ratio: 2
  sampling_rate: 1
  service_name: ""
  headers: {"bad name": x}
`,
			want: []string{
				`config.yaml:7:13: tracing.endpoint: "http://otel.test:4318" uses plain http to a host that is not loopback; use https (plain http is only for localhost, 127.0.0.1 and [::1])`,
				`config.yaml:8:13: tracing.protocol: "http/json" is not a protocol of the proxy's exporter; use http/protobuf or grpc (the OpenTelemetry Go exporter does not send JSON)`,
				`config.yaml:9:19: tracing.sampling_ratio: 2 is not a ratio between 0 and 1, such as 0.1`,
				`config.yaml:10:3: tracing.sampling_rate: unknown field; did you mean "sampling_ratio"?`,
				`config.yaml:11:17: tracing.service_name: empty; name the service, or leave the field out for mcp-proxy`,
				`config.yaml:12:25: tracing.headers.bad name: "bad name" is not an HTTP header name`,
			},
		},
		{
			name:  "no endpoint anywhere",
			block: "tracing: {sampling_ratio: 0.5}\n",
			want:  []string{`config.yaml:6:10: tracing.endpoint: missing; name the OTLP receiver, such as https://otel-collector.example.com:4318, here or in OTEL_EXPORTER_OTLP_ENDPOINT`},
		},
		{
			name:  "grpc with a path, a query",
			block: "tracing: {endpoint: \"https://otel.test:4317/v1\", protocol: grpc}\n",
			env:   map[string]string{EnvTracesEndpoint: "https://x.test/?key=1"},
			want:  []string{`config.yaml:6:21: tracing.endpoint: "https://otel.test:4317/v1" has a path; with grpc the endpoint names only the receiver's host and port, such as https://otel-collector.example.com:4317`},
		},
		{
			name: "the variables",
			env: map[string]string{EnvEndpoint: "otel.test:4318", EnvProtocol: "http/json", EnvTracesSampler: "jaeger_remote",
				EnvTracesExporter: "otlp,zipkin", EnvHeaders: "api-key", EnvResourceAttributes: "k=%zz"},
			want: []string{
				`environment: OTEL_TRACES_EXPORTER: "zipkin" is not an exporter of the proxy; use otlp, or none to turn tracing off`,
				`environment: OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not a protocol of the proxy's exporter; use http/protobuf or grpc (the OpenTelemetry Go exporter does not send JSON)`,
				`environment: OTEL_EXPORTER_OTLP_ENDPOINT: "otel.test:4318" is not an absolute URL; write it as https://otel.test:4318`,
				`environment: OTEL_TRACES_SAMPLER: "jaeger_remote" is not a sampler of the proxy; use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio`,
				`environment: OTEL_RESOURCE_ATTRIBUTES: the value of k is not percent-encoded correctly`,
				`environment: OTEL_EXPORTER_OTLP_HEADERS: item 1 is not key=value; write key=value pairs separated by commas`,
			},
		},
		{
			name: "a sampler's argument",
			env:  map[string]string{EnvEndpoint: "https://otel.test", EnvTracesSampler: "parentbased_traceidratio", EnvTracesSamplerArg: "half"},
			want: []string{`environment: OTEL_TRACES_SAMPLER_ARG: "half" is not a ratio between 0 and 1, such as 0.1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{"SECRET": "x"}
			for k, v := range tt.env {
				e[k] = v
			}
			_, err := Load(filepath.Join(dir, "config.yaml"), []byte(head+tt.block+tracingRoutes), env(e))
			var got []string
			for _, e := range Errors(err) {
				got = append(got, strings.TrimPrefix(e.Error(), dir+string(filepath.Separator)))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
