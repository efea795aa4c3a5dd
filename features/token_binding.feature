@doc:token-binding
Feature: Token binding: whose remote token a request carries
  The Token Binding page promises that a remote token obtained under one
  binding key is only ever sent on requests whose grant names that key: users
  never receive each other's token; per_user shares one token among a user's
  MCP clients; per_session gives each authorization its own; service_account
  shares one token and audits every use with the acting user.

  Scenario: alice and bob never receive each other's remote token
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    When bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "bob" and the audience "https://remote-mcp.provider.com/mcp"
    And every token the remote MCP server received was issued for the user whose request carried it

  Scenario: Under per_user, two MCP clients of one user share one remote token
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects MCP client "laptop" to "https://mcp.example.com/mcp"
    And alice connects MCP client "agent" to "https://mcp.example.com/mcp"
    Then alice was sent to "auth.provider.com" only once
    And alice's MCP clients "laptop" and "agent" reach the remote server with the same token

  Scenario: Under per_session, each MCP client authorization gets its own remote token, and disconnecting one leaves the other
    Given the operator configuration "token-binding-per-session"
    And the proxy is running
    When alice connects MCP client "laptop" to "https://mcp.example.com/mcp"
    And alice connects MCP client "agent" to "https://mcp.example.com/mcp"
    Then alice was sent to "auth.provider.com" twice
    And alice's MCP clients "laptop" and "agent" reach the remote server with different tokens
    When alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    Then she sees 2 connections to "https://remote-mcp.provider.com/mcp"
    When alice disconnects the connection of her MCP client "laptop"
    And alice's MCP client "agent" calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" twice

  Scenario: Under service_account, users share the administrator's token and every use is audited
    Given the operator configuration "token-binding-service-account"
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows an error with the code "service_account_not_connected"
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once
    And the audit log has a line like the documented "audit-line-service-account"
    And the operator runs "mcp-proxy audit verify audit.log"
    And the command succeeds

  Scenario: A service_account route gets its shared token with client credentials, authenticated by a private key
    Given the operator configuration "token-binding-service-account-client-credentials"
    And the proxy is running
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "mcp-proxy-service" and the audience "https://remote-mcp.provider.com/mcp"
    And bob was never sent to "auth.provider.com"
    And the token requests to "auth.provider.com" authenticated with "private_key_jwt"
    And the audit log has a line like the documented "audit-line-service-account"

  Scenario: Changing a route's binding sends its MCP clients to authorize again under the new mode
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the operator changes the configuration to "token-binding-per-session"
    And the proxy restarts
    And alice's MCP client opens a new session with "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the proxy logged the documented event "log-binding-changed"
    And alice was sent to "auth.provider.com" twice
    When alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    Then she sees 2 connections to "https://remote-mcp.provider.com/mcp"

  Scenario: A service_account route without an audit log is refused
    Given the operator configuration "token-binding-service-account-no-audit"
    When the operator runs "mcp-proxy validate -config config.yaml"
    Then the command fails and prints the documented "err-service-account-needs-audit"
