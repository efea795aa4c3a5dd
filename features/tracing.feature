@doc:observability @jaeger @local
Feature: Traces: a tool call followed from the MCP client through the proxy to the remote server
  The observability page promises OpenTelemetry traces: a span per request
  with the MCP attributes, the MCP client's trace continued, a span for the
  token step and for the call to the remote server, and the trace passed on
  to the remote server in its traceparent header, with no token in any span.
  These scenarios send the proxy's spans to a real Jaeger, built from its Go
  module, at otel-collector.example.com, and read them back through Jaeger's
  query API.

  Background:
    Given Jaeger is running

  Scenario: The tracing block sends spans over OTLP/HTTP and continues the MCP client's trace
    Given the operator configuration "tracing-otlp-http"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client calls the tool "echo" with the text "traced" in a trace of its own
    Then Jaeger has alice's trace with these spans of the service "mcp-proxy"
      | span            | kind     | parent                   |
      | tools/call echo | server   | alice's MCP client       |
      | upstream token  | internal | tools/call echo (server) |
      | tools/call echo | client   | tools/call echo (server) |
    And in Jaeger the span "tools/call echo (server)" has the attributes
      | mcp.method.name           | tools/call            |
      | gen_ai.tool.name          | echo                  |
      | gen_ai.operation.name     | execute_tool          |
      | jsonrpc.request.id        | (any)                 |
      | mcp.session.id            | (alice's MCP session) |
      | mcp_proxy.route           | mcp.example.com       |
      | http.response.status_code | 200                   |
    And in Jaeger the span "tools/call echo (client)" has the attributes
      | server.address            | remote-mcp.provider.com |
      | http.response.status_code | 200                     |
      | mcp.method.name           | tools/call              |
    And in Jaeger the span "upstream token (internal)" has the attributes
      | mcp_proxy.token.cache | hit |
    And the remote MCP server received alice's trace in the traceparent of the span "tools/call echo (client)"
    And no span in Jaeger holds a token or code of alice's sign-in, consent or calls

  Scenario: The OTEL_* variables alone send spans over OTLP/gRPC
    Given the proxy's environment has the documented variables "tracing-env"
    And the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client calls the tool "echo" with the text "traced" in a trace of its own
    Then Jaeger has alice's trace with these spans of the service "mcp-proxy-eu"
      | span            | kind     | parent                   |
      | tools/call echo | server   | alice's MCP client       |
      | upstream token  | internal | tools/call echo (server) |
      | tools/call echo | client   | tools/call echo (server) |
    And Jaeger has these spans of the service "mcp-proxy-eu" from alice's consent, each under a request's span
      | span                   | kind     | attribute                 | value   |
      | upstream discovery     | internal | mcp_proxy.discovery.cache | miss    |
      | upstream code exchange | internal | mcp_proxy.exchange.result | success |
    And the remote MCP server received alice's trace in the traceparent of the span "tools/call echo (client)"
    And no span in Jaeger holds a token or code of alice's sign-in, consent or calls
