@doc:access-policy
Feature: Access policy: who may use a route, and which tools behind it
  The Access Policy page promises that a route's policy is decided on the
  identity provider's claims, at authorization and on every request; that a
  refused tool is hidden from tools/list and refused on tools/call without
  reaching the remote server; and that a request whose mirrored headers
  disagree with its body is refused.

  Scenario: Only a group may use the route; anyone else sees who they are, and the remote server hears nothing of them
    Given the operator configuration "policy-group-only"
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-policy-route-denied"
    And the page bob's browser shows is kept for the browser test as "policy-route-denied.html"
    And nothing reached "auth.provider.com" for bob
    And the metric "mcp_proxy_policy_decisions_total" with route "mcp.example.com" and decision "denied" is at least 1
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: A domain rule admits verified addresses only
    Given the operator configuration "policy-email-domain"
    And the proxy is running
    When carol tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then carol's browser shows an error with the code "policy_denied"
    And nothing reached "auth.provider.com" for carol
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "bob" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: A tool is hidden from the users the policy does not give it, and refused if they call it anyway
    Given the operator configuration "policy-tools"
    And the proxy is running
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client lists the tools
    Then the tools listed do not include "echo"
    When bob's MCP client calls the tool "echo" and is refused
    Then the refusal is the documented "answer-policy-tool-denied"
    And the proxy logged the documented event "log-policy-denied"
    And the remote MCP server never received a call of the tool "echo"
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client lists the tools
    Then the tools listed include "echo"
    When alice's MCP client calls the tool "echo" with the text "hi"
    Then the tool answers with the text "hi"

  Scenario: A policy added while a client is connected applies to its next request
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And bob has connected an MCP client to "https://mcp.example.com/mcp"
    When bob's MCP client calls the tool "echo" with the text "before"
    Then the tool answers with the text "before"
    When the operator changes the configuration to "policy-tools"
    And the proxy restarts
    And bob's MCP client opens a new session with "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "echo" and is refused
    Then the refusal is the documented "answer-policy-tool-denied"
    And bob was sent to "auth.provider.com" only once

  Scenario: A request whose mirrored headers disagree with its body is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client posts a "tools/call" of "whoami" with the header Mcp-Method "tools/list"
    Then the answer is the documented "answer-mcp-header-mismatch"
    And the answer is the documented JSON-RPC error "err-mcp-header-mismatch"

  Scenario: A CEL expression decides what a list cannot say
    Given the operator configuration "policy-cel"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "echo" with the text "mine"
    Then the tool answers with the text "mine"
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "echo" and is refused
    Then the refusal names the error "policy_denied"

  Scenario: A mistake in an expression is reported with its position
    Given the operator configuration "policy-cel-typo"
    When the operator runs "mcp-proxy validate -config config.yaml"
    Then the command fails and prints the documented "err-policy-cel"

  Scenario: policy check explains a decision
    Given the operator configuration "policy-tools"
    And the operator saves the documented "policy-check-claims" as "bob.json"
    When the operator runs the documented command "policy-check-command"
    Then the command fails and prints on its standard output the documented "policy-check-output"
