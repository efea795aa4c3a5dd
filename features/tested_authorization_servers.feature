@doc:tested-authorization-servers @real-servers @local
Feature: Tested authorization servers: Dex and Ory Hydra
  The Tested authorization servers page promises that the proxy works with Dex
  as the operator's identity provider and Ory Hydra as the remote server's
  authorization server. These scenarios run the real servers, built from their
  Go modules, in place of the doubles at idp.example.com and auth.provider.com;
  the remote MCP server trusts Hydra and verifies its tokens with Hydra's keys.

  Background:
    Given Dex and Hydra are running

  Scenario: A route without Client ID Metadata Document support stops with the documented error
    Given the operator configuration "tested-dex-sign-in"
    And the proxy is running
    When alice tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then alice signed in at "idp.example.com"
    And alice's browser shows the documented error "err-hydra-no-cimd"
    And Hydra received no token request

  Scenario: discover says how the proxy can register at Hydra
    When the operator runs "mcp-proxy discover https://remote-mcp.provider.com/mcp"
    Then the command fails and prints on its standard output the documented "tested-hydra-discover"

  Scenario: A pre-registered confidential client at Hydra
    Given the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And the operator configuration "tested-hydra-confidential"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami" behind Hydra
    Then alice signed in at "idp.example.com"
    And the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token that reached the remote MCP server was issued by Hydra to "mcp-proxy-confidential"
    And the token that reached the remote MCP server is not the one alice's MCP client holds
    And Hydra received 1 token request for "authorization_code"

  Scenario: A route for one of Dex's groups
    Given the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And the operator configuration "tested-dex-groups"
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob signed in at "idp.example.com"
    And bob's browser shows an error with the code "policy_denied"
    And Hydra received no token request
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami" behind Hydra
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: The route's audience gives the remote server the aud it checks
    Given the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And Hydra's consent app grants only the audience the client asks for
    And the operator configuration "tested-hydra-audience"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami" behind Hydra
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: A restarted proxy keeps the user connected to Hydra
    Given the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And the operator configuration "tested-hydra-confidential"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami" behind Hydra
    When the proxy restarts
    And alice's MCP client calls the tool "whoami" behind Hydra
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And Hydra received 1 token request for "authorization_code"
    And Hydra received 0 token requests for "refresh_token"

  Scenario: Dynamic registration at Hydra
    Given the operator configuration "tested-hydra-dcr"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami" behind Hydra
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token that reached the remote MCP server was issued by Hydra to the client the proxy registered
    And the proxy's log shows no credential of the registration

  Scenario: A second call is served from the token cache
    Given the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And the operator configuration "tested-hydra-confidential"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami" behind Hydra
    When alice's MCP client calls the tool "echo" with the text "hello" behind Hydra
    Then the tool answers with the text "hello"
    And Hydra received no new token request

  Scenario: Two MCP clients of one user at the moment of refresh: one refresh, rotated
    Given Hydra's access tokens live 4 seconds
    And the proxy is registered at Hydra as the documented client "tested-hydra-client"
    And the operator configuration "tested-hydra-confidential"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice has connected her MCP client "laptop" to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami" behind Hydra
    When Hydra's access token has expired
    And alice's two MCP clients call the tool "whoami" behind Hydra at once
    Then Hydra received 1 new token request for "refresh_token"
    And both calls answered with the subject "alice"
    And alice's MCP client calls the tool "whoami" behind Hydra
    And the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And Hydra received 1 token request for "refresh_token"
