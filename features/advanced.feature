@doc:advanced
Feature: Advanced topics: multi-hop, scope pass-through, workload identity, enterprise-managed authorization, DPoP, connections, cache invalidation

  Scenario: A route in front of another mcp-proxy route reaches the remote server through both
    Given the operator configuration "advanced-multi-hop"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token that reached the remote MCP server was issued by "auth.provider.com"
    And alice approved the MCP client at "mcp.example.com"
    And alice approved the MCP client at "mcp-internal.example.com"
    And alice approved the proxy at "auth.provider.com"

  Scenario: With pass_scopes the scopes the MCP client asked for reach the remote authorization server
    Given the operator configuration "advanced-pass-scopes"
    And the proxy is running
    And alice's MCP client asks for the scopes "files:read files:write"
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the scopes "files:read files:write"

  Scenario: Without pass_scopes they do not
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice's MCP client asks for the scopes "files:read files:write"
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the scopes ""

  Scenario: A remote server that needs more scope sends the user to consent to it
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And the remote MCP server requires the scope "files:write" for the tool "whoami"
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the scopes "files:write"
    And alice was sent to "auth.provider.com" twice

  Scenario: A user lists and disconnects a connection; the tokens are revoked upstream
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    Then she sees 1 connection to "https://remote-mcp.provider.com/mcp"
    When alice disconnects it
    Then "auth.provider.com" received revocations of the refresh token and the access token
    And alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    And she sees 0 connections to "https://remote-mcp.provider.com/mcp"
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" twice

  Scenario: A failed code exchange drops the discovery cache
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the remote authorization server answers the next request to "/token" with status 500
    And bob connects an MCP client to "https://mcp.example.com/mcp", trying again if the first attempt fails
    Then the code exchange for bob failed once
    And the first discovery after that failure was a cache miss

  Scenario: A changed configuration applies without a restart
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And bob has connected an MCP client to "https://mcp.example.com/mcp"
    When bob's MCP client calls the tool "echo" with the text "before"
    Then the tool answers with the text "before"
    When the operator changes the configuration to "policy-tools"
    Then the proxy logs the documented event "log-config-reloaded" within 15 seconds
    And the metric "mcp_proxy_config_reloads_total" with result "success" is at least 1
    When bob's MCP client calls the tool "echo" and is refused
    Then the refusal names the error "policy_denied"

  Scenario: A configuration with mistakes is refused, and the running one stays
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the operator changes the configuration to "quickstart-typo"
    Then the proxy logs the documented event "log-reload-failed" within 15 seconds
    And the metric "mcp_proxy_config_reloads_total" with result "failure" is at least 1
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  @workload-identity
  Scenario: A workload identity route gets the remote token with the workload's JWT, without anyone's consent
    Given the operator configuration "advanced-workload-identity"
    And the proxy is running
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "system:serviceaccount:mcp:mcp-proxy" and the audience "https://remote-mcp.provider.com/mcp"
    And bob was never sent to "auth.provider.com"
    And "auth.provider.com" received 1 token request, each with the JWT bearer grant and no client authentication
    And the audit log has a line like the documented "audit-line-service-account"

  @doc:troubleshooting @workload-identity
  Scenario: A workload token the remote authorization server refuses is not presented again, and no other grant is tried
    Given the operator configuration "advanced-workload-identity"
    And the workload's token names the audience "https://wrong.example"
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-workload-token-refused", each <...> standing for any text
    And the proxy logged the documented event "log-workload-token-refused" for that page
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-workload-token-refused", each <...> standing for any text
    And "auth.provider.com" received 1 token request, each with the JWT bearer grant and no client authentication
    And bob was never sent to "auth.provider.com"
    When the workload's token is renewed
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "system:serviceaccount:mcp:mcp-proxy" and the audience "https://remote-mcp.provider.com/mcp"
    And "auth.provider.com" received 2 token requests, each with the JWT bearer grant and no client authentication

  @doc:troubleshooting @workload-identity
  Scenario: An expired workload token is not sent
    Given the operator configuration "advanced-workload-identity"
    And the workload's token has expired
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-workload-token-expired", each <...> standing for any text
    And "auth.provider.com" received 0 token requests, each with the JWT bearer grant and no client authentication

  @enterprise
  Scenario: An enterprise route gets the user's remote token from the identity provider's assertion, with no consent screen
    Given the operator configuration "advanced-enterprise"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was never sent to "auth.provider.com"
    And "idp.example.com" received 1 token exchange of an ID token for an ID-JAG naming "https://auth.provider.com"
    And "auth.provider.com" received 1 token request, each with the JWT bearer grant as the client "mcp-proxy-confidential"
    And the audit log has a line like the documented "audit-line-enterprise"

  @doc:troubleshooting @enterprise
  Scenario: The identity provider refuses the exchange: the user sees why, and nothing reaches the remote authorization server
    Given the operator configuration "advanced-enterprise"
    And the proxy is running
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-enterprise-exchange-refused", each <...> standing for any text
    And the proxy logged the documented event "log-enterprise-exchange-refused" for that page
    And "idp.example.com" received one token exchange for an ID-JAG naming "https://auth.provider.com" per authorization of bob's MCP client, each refused
    And "auth.provider.com" received 0 token requests, each with the JWT bearer grant as the client "mcp-proxy-confidential"
    And bob was never sent to "auth.provider.com"

  @dpop
  Scenario: A remote server that asks for DPoP-bound tokens gets them, with no setting, and a stolen token or proof is refused there
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server binds tokens to DPoP keys
    And the remote MCP server requires DPoP-bound tokens
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And every token request the remote authorization server received carried a DPoP proof
    And every request the remote MCP server received presented a DPoP-bound token with a fresh proof
    And replaying the last request the remote MCP server accepted is refused with "invalid_dpop_proof"
    And the upstream token presented without its key is refused with "invalid_token"

  @dpop
  Scenario: Nonces the remote servers ask for are sent once they are asked for
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server binds tokens to DPoP keys
    And the remote authorization server requires a DPoP nonce
    And the remote MCP server requires DPoP-bound tokens
    And the remote MCP server requires a DPoP nonce
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the remote authorization server asked for a DPoP nonce and the proxy's next proof carried it
    And the remote MCP server asked for a DPoP nonce and the proxy's next proof carried it
    And every request the remote MCP server received presented a DPoP-bound token with a fresh proof

  @doc:troubleshooting @dpop
  Scenario: A route that requires DPoP refuses a bearer token from the remote authorization server
    Given the operator configuration "advanced-dpop-required"
    And the proxy is running
    When alice tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then alice's browser shows the documented error "err-dpop-not-bound", each <...> standing for any text
    And the remote MCP server never received a call of the tool "whoami"
