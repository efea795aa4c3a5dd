@doc:clients
Feature: Which MCP clients connect, and how
  The "Which MCP clients connect, and how" page promises that MCP clients
  whose Client ID Metadata Document asks for private_key_jwt (as ChatGPT's
  connectors do) connect beside public ones, that the token endpoint checks
  their client assertions (RFC 7523) on the code exchange and on refresh, and
  that the proxy sends a browser only to redirect URIs that follow its rules,
  answering everything else on its own page. The private_key_jwt client is the
  MCP Go SDK client whose token requests carry assertions signed with a key
  made for this run; client.example.net publishes the public half at the
  document's jwks_uri.

  Scenario: A client that signs client assertions calls whoami through the proxy
    Given the operator configuration "clients-allowed-domains"
    And the proxy is running
    And alice's MCP client is "connector", which signs client assertions
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token endpoint authenticated alice's MCP client by its client assertion

  Scenario: A refresh is authenticated by a new client assertion too
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice's MCP client is "connector", which signs client assertions
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client refreshes its token
    Then the token endpoint authenticated alice's MCP client by its client assertion

  Scenario: The metadata advertises private_key_jwt and its algorithms
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    Then the authorization server metadata at "https://mcp.example.com/.well-known/oauth-authorization-server" has the documented "clients-asm-auth-methods"

  Scenario Outline: The token endpoint refuses a wrong client assertion with invalid_client
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice's MCP client is "connector", which signs client assertions
    And alice's MCP client signs its client assertions <how>
    When alice tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then the token endpoint answered alice's MCP client with status 401 and the documented error "<error>"

    Examples:
      | how                | error                       |
      | not at all         | err-assertion-missing       |
      | with another key   | err-assertion-bad-signature |
      | for another server | err-assertion-wrong-aud     |
      | that expired       | err-assertion-expired       |

  Scenario: A client assertion used twice is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice's MCP client is "connector", which signs client assertions
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client refreshes its token with its last client assertion again
    Then the token endpoint answered alice's MCP client with status 401 and the documented error "err-assertion-replayed"

  Scenario: A client that rotates the key in its document is served on its next request
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice's MCP client is "rotating", which signs client assertions with the keys in its document
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client rotates its key
    And alice's MCP client refreshes its token
    Then the token endpoint authenticated alice's MCP client by its client assertion

  Scenario Outline: A document that breaks a rule is refused on the proxy's own page
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When a browser opens an authorization request at "mcp.example.com" from the MCP client "<client>" with response_type "token"
    Then the proxy answers on its own page with the error "invalid_client" ending in the documented "<error>"

    Examples:
      | breaks                                        | client                | error                       |
      | redirects to javascript:                      | refuse-javascript     | err-redirect-javascript     |
      | redirects to data:                            | refuse-data           | err-redirect-data           |
      | redirects to file:                            | refuse-file           | err-redirect-file           |
      | has a redirect URI with a fragment            | refuse-fragment       | err-redirect-fragment       |
      | has a redirect URI with user information      | refuse-userinfo       | err-redirect-userinfo       |
      | redirects to http on a public host            | refuse-http           | err-redirect-http           |
      | uses a private-use scheme for a web client    | refuse-private-scheme | err-redirect-private-scheme |
      | asks for private_key_jwt without keys         | refuse-no-jwks        | err-doc-no-jwks             |
      | has both jwks and jwks_uri                    | refuse-both-jwks      | err-doc-both-jwks           |

  Scenario: A redirect URI the document does not list is answered on the proxy's own page
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When a browser opens an authorization request at "mcp.example.com" from the MCP client "app" with the redirect URI "https://attacker.example.org/callback" and response_type "token"
    Then the proxy answers on its own page with the documented error "err-redirect-unlisted"

  Scenario: Until the user approved the client, even a validated request's errors stay on the proxy's page
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When a browser opens an authorization request at "mcp.example.com" from the MCP client "app" with response_type "token"
    Then the proxy answers on its own page with the documented error "err-authorize-not-approved"

  Scenario: Once the user approved the client, errors go back to it
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's browser opens an authorization request at "mcp.example.com" from her MCP client with response_type "token"
    Then the proxy sends the browser to the redirect URI of the MCP client "alice-client" with the error "unsupported_response_type"
