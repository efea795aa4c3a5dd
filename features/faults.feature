@doc:troubleshooting
Feature: Troubleshooting with real faults: a stopped or failing authorization server, a hung or restarted remote server
  The container stack stops, pauses and restarts real processes; the in-process
  stack does the same to its servers (a stopped server refuses connections, a
  paused one accepts them and answers nothing, a restarted one has forgotten
  what it held in memory).

  Scenario: A stopped authorization server answers 502 once the token expired, and the proxy recovers once it is back
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And the remote token has expired
    When the remote authorization server stops
    And alice's MCP client sends a request with its token to "https://mcp.example.com/mcp"
    Then the answer has status 502 and is the documented error "err-as-unreachable"
    When the remote authorization server starts again
    And the remote authorization server issues access tokens that live 4 seconds
    And alice's MCP client's requests to "https://mcp.example.com/mcp" reach the remote authorization server again within 35 seconds
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: While the authorization server fails, requests work until the token expires, then fail, then recover
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the remote authorization server answers every request to "/token" with 503
    And alice's MCP client sends requests with its token to "https://mcp.example.com/mcp" until one fails
    Then every request succeeded until the remote token expired
    And the answer has status 502 and is the documented error "err-as-unreachable"
    And the proxy logged the documented event "log-token-refresh-failed" exactly once
    And "auth.provider.com" failed fewer than 10 requests to "/token"
    When the remote authorization server answers requests to "/token" again
    And alice's MCP client's requests to "https://mcp.example.com/mcp" succeed again within 10 seconds
    Then "auth.provider.com" received a refresh request
    And the proxy logged the documented event "log-token-refresh-recovered" exactly once
    And alice was sent to "auth.provider.com" only once

  Scenario: A paused remote MCP server answers 504 within the route's timeout
    Given the operator configuration "upstream-timeout"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the remote MCP server is paused
    And alice's MCP client sends a request with its token to "https://mcp.example.com/mcp"
    Then the answer has status 504 and is the documented error "err-upstream-timeout"
    When the remote MCP server is unpaused
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: A restarted remote MCP server forgets the session; a new one needs no new consent
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the remote MCP server restarts
    And alice's MCP client sends a request with its token to "https://mcp.example.com/mcp"
    Then the answer has status 404
    When alice connects MCP client "again" to "https://mcp.example.com/mcp"
    And alice's MCP client "again" calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once
