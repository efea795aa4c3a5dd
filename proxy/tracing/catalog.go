package tracing

import "go.opentelemetry.io/otel/attribute"

// The attributes the proxy puts on its spans. The MCP, JSON-RPC, GenAI,
// HTTP and error keys are those of the OpenTelemetry semantic conventions
// (a test checks them against go.opentelemetry.io/otel/semconv); the
// mcp_proxy.* keys are the proxy's own. No value is ever a token, a code,
// a secret or a URL's query.
const (
	// MCP (semantic conventions for the Model Context Protocol).
	MCPMethodName      attribute.Key = "mcp.method.name"
	MCPSessionID       attribute.Key = "mcp.session.id"
	MCPProtocolVersion attribute.Key = "mcp.protocol.version"
	JSONRPCRequestID   attribute.Key = "jsonrpc.request.id"
	GenAIToolName      attribute.Key = "gen_ai.tool.name"
	GenAIPromptName    attribute.Key = "gen_ai.prompt.name"
	GenAIOperationName attribute.Key = "gen_ai.operation.name"

	// HTTP.
	HTTPRequestMethod      attribute.Key = "http.request.method"
	HTTPResponseStatusCode attribute.Key = "http.response.status_code"
	URLScheme              attribute.Key = "url.scheme"
	URLPath                attribute.Key = "url.path"
	ServerAddress          attribute.Key = "server.address"
	ServerPort             attribute.Key = "server.port"
	NetworkProtocolVersion attribute.Key = "network.protocol.version"
	UserAgentOriginal      attribute.Key = "user_agent.original"
	ErrorType              attribute.Key = "error.type"

	// The proxy's own.
	Route          attribute.Key = "mcp_proxy.route"
	RequestID      attribute.Key = "mcp_proxy.request_id"
	Binding        attribute.Key = "mcp_proxy.binding"
	TokenCache     attribute.Key = "mcp_proxy.token.cache"
	RefreshResult  attribute.Key = "mcp_proxy.token.refresh"
	DiscoveryCache attribute.Key = "mcp_proxy.discovery.cache"
	DiscoveryStep  attribute.Key = "mcp_proxy.discovery.step"
	ExchangeResult attribute.Key = "mcp_proxy.exchange.result"
)

// ErrorAborted is the error.type of a request whose answer was cut off
// mid-stream.
const ErrorAborted = "aborted"

// The spans the proxy starts, by name. A request's span is named after
// its MCP method and target, such as "tools/call echo", or after its HTTP
// method when it carries no JSON-RPC request the proxy read.
const (
	SpanUpstreamToken   = "upstream token"
	SpanUpstreamRefresh = "upstream token refresh"
	SpanDiscovery       = "upstream discovery"
	SpanCodeExchange    = "upstream code exchange"
)

// AttributeDoc describes one attribute: its key, the spans that carry it
// and what it holds.
type AttributeDoc struct {
	Key     attribute.Key
	Spans   string
	Meaning string
}

// Attributes lists every attribute the proxy writes, in the order of the
// docs' table.
func Attributes() []AttributeDoc {
	const req, up = "request", "request, upstream call"
	return []AttributeDoc{
		{MCPMethodName, up, "The JSON-RPC method of the MCP message, such as tools/call (POSTs whose body the proxy read: every JSON-RPC message of up to 64 KiB)."},
		{MCPSessionID, up, "The Mcp-Session-Id header."},
		{MCPProtocolVersion, up, "The MCP-Protocol-Version header."},
		{JSONRPCRequestID, up, "The JSON-RPC request id, as the client sent it (a number or a string); none for a notification."},
		{GenAIToolName, up, "The tool of a tools/call."},
		{GenAIPromptName, up, "The prompt of a prompts/get."},
		{GenAIOperationName, up, "execute_tool for a tools/call."},
		{HTTPRequestMethod, up, "The HTTP method."},
		{HTTPResponseStatusCode, up, "The HTTP status of the answer (request: the proxy's, upstream call: the remote server's)."},
		{URLScheme, req, "https."},
		{URLPath, up, "The path, never the query (which may hold an authorization code)."},
		{ServerAddress, "request, upstream call, upstream discovery, upstream code exchange", "The host the request named: the route's host, the remote server's, the remote authorization server's."},
		{ServerPort, "upstream call", "The remote server's port."},
		{NetworkProtocolVersion, req, "The client leg's HTTP version: 1.1 or 2."},
		{UserAgentOriginal, req, "The MCP client's User-Agent header."},
		{ErrorType, "request, upstream call, upstream discovery", "The error code of the catalog the proxy answered with (see Troubleshooting), the HTTP status of a failed answer, or aborted (request) when the answer was cut off mid-stream because the MCP client or the remote server went away."},
		{Route, req, "The route's host: the route label of the metrics."},
		{RequestID, req, "The request id of the log lines and of the error the user sees."},
		{Binding, "upstream token", "The route's token binding mode."},
		{TokenCache, "upstream token", "hit, miss (the user must consent) or refresh (the token was due), as the token cache metric counts."},
		{RefreshResult, "upstream token refresh", "success, refused (the user must consent again), failed (the authorization server could not be reached), or joined (another refresh had renewed the token)."},
		{DiscoveryCache, "upstream discovery", "hit or miss, as the discovery cache metric counts."},
		{DiscoveryStep, "upstream discovery", "The step of discovery that failed."},
		{ExchangeResult, "upstream code exchange", "success, refused or failed."},
	}
}

// SpanDoc describes one span the proxy starts.
type SpanDoc struct {
	Name, Kind, Meaning string
}

// Spans lists the proxy's spans, in the order of the docs' table.
func Spans() []SpanDoc {
	return []SpanDoc{
		{"tools/call echo, initialize, POST, GET, …", "server", "One per request the proxy serves on a route's host: the MCP method and target when the proxy read a JSON-RPC request, else the HTTP method. It continues the MCP client's trace when the request carries a traceparent header."},
		{SpanUpstreamToken, "internal", "The token step of an MCP request: the remote token from the proxy's cache, or why there is none."},
		{SpanUpstreamRefresh, "internal", "A refresh of the remote token at the remote authorization server; it may run in the background, after its request has been answered."},
		{SpanDiscovery, "internal", "Discovery of the remote server's authorization (protected resource and authorization server metadata), or its cached result."},
		{SpanCodeExchange, "internal", "The exchange of the remote authorization server's code for the remote token, at the end of a user's consent."},
		{"tools/call echo, initialize, POST, GET, …", "client", "The call to the remote MCP server, named like its request; its traceparent header, which the remote server receives, names this span."},
	}
}
