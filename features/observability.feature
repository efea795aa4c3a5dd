@doc:observability
Feature: Monitoring and observability: the documented metrics and events move as documented

  Scenario: The token cache, refreshes and errors show in the metrics
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami"
    When alice's MCP client calls the tool "whoami"
    Then the metric "mcp_proxy_token_cache_requests_total" with route "mcp.example.com" and result "hit" rose
    When an MCP client posts "initialize" to "https://mcp.example.com/mcp" without a token
    Then the metric "mcp_proxy_errors_total" with route "mcp.example.com" and type "unauthorized" is at least 1
    And the metric "mcp_proxy_discovery_cache_requests_total" with result "miss" is at least 1
    And the metric "mcp_proxy_registrations_total" with method "cimd" is at least 1
    And the metric "mcp_proxy_authorization_duration_seconds_count" with route "mcp.example.com" and outcome "granted" is at least 1
    And the metric "mcp_proxy_upstream_request_duration_seconds_count" with route "mcp.example.com" and code "200" is at least 1

  Scenario: A refresh is counted
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And the remote token has expired
    When alice's MCP client calls the tool "whoami"
    Then the metric "mcp_proxy_token_refreshes_total" with route "mcp.example.com" and result "success" is at least 1
    And the metric "mcp_proxy_token_cache_requests_total" with route "mcp.example.com" and result "refresh" is at least 1

  Scenario: The health endpoints answer
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    Then the admin listener answers "/healthz" with 200
    And the admin listener answers "/readyz" with 200

  Scenario: The documented events carry their documented keys
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    Then every line the proxy logged has the keys the observability page lists for its event
    And no line the proxy logged contains a token alice's MCP client or the remote server received
