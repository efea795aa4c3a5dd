@doc:quickstart
Feature: Quick Start: one route, no OAuth settings
  The Quick Start page promises that a route with only `from`, `to` and an empty
  `mcp.server` block lets a user's MCP client reach a remote MCP server that is
  protected by OAuth: the proxy registers itself with its own Client ID Metadata
  Document, sends the user to consent, and acquires, caches and injects the
  remote server's token. The MCP client is the official MCP Go SDK with its
  OAuth handler; the user is a headless browser that fills in the forms.

  Scenario: An MCP client without a token gets the documented challenge
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client posts "initialize" to "https://mcp.example.com/mcp" without a token
    Then the answer is the documented "quickstart-challenge"
    And the answer is JSON naming the error "unauthorized" and a request id

  Scenario: The first connection sends the user to the remote authorization server to consent
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    Then alice signed in at "idp.example.com"
    And alice approved the MCP client at "mcp.example.com"
    And alice signed in at "auth.provider.com"
    And alice approved the proxy at "auth.provider.com"
    And "auth.provider.com" fetched the Client ID Metadata Document "https://mcp.example.com/.mcp-proxy/client-metadata.json"
    And the client id in the authorization request to "auth.provider.com" is a URL on "mcp.example.com"

  Scenario: whoami through the proxy answers with the user's identity at the remote server
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token that reached the remote MCP server was issued by "auth.provider.com"
    And the token that reached the remote MCP server is not the one alice's MCP client holds
    And the remote MCP server never received the token alice's MCP client holds

  Scenario: A second call is served from the token cache
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami"
    When alice's MCP client calls the tool "echo" with the text "hello"
    Then the tool answers with the text "hello"
    And no new token request reached "auth.provider.com"

  Scenario: validate reports every mistake at once, with its position
    Given the operator configuration "quickstart-typo"
    When the operator runs "mcp-proxy validate -config config.yaml"
    Then the command fails and prints the documented "quickstart-typo-errors"

  Scenario: serve refuses the same file with the same errors
    Given the operator configuration "quickstart-typo"
    When the operator runs "mcp-proxy serve -config config.yaml"
    Then the command fails and prints the documented "quickstart-typo-errors"
