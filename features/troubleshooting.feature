@doc:troubleshooting
Feature: Troubleshooting: every documented failure, reproduced
  Each entry of the Troubleshooting page is reproduced by breaking the test
  doubles on purpose, and the scenario checks the exact message and log event
  the page quotes, then the documented fix.

  Scenario: A remote server without Client ID Metadata Document support stops the first connection
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server does not support Client ID Metadata Documents
    And the proxy is running
    When alice tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then alice's browser shows the documented error "err-no-cimd"
    And the proxy logged the documented event "log-authorization-failed" for that page
    And "auth.provider.com" received no authorization request

  Scenario Outline: A pre-registered client fixes it
    Given the operator configuration "<example>"
    And the remote authorization server does not support Client ID Metadata Documents
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the client id in every authorization request to "auth.provider.com" is "<client>"
    And the token requests to "auth.provider.com" authenticated with "<auth>"

    Examples:
      | example                              | client                 | auth                |
      | upstream-preregistered-public        | mcp-proxy-public       | none                |
      | upstream-preregistered-confidential  | mcp-proxy-confidential | client_secret_basic |

  Scenario: Static endpoints need no metadata at all
    Given the operator configuration "upstream-static-endpoints"
    And the remote MCP server publishes no protected resource metadata
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the proxy ran no discovery
    And the client id in every authorization request to "auth.provider.com" is "mcp-proxy-public"

  Scenario: Dynamic registration, when allowed, fixes it
    Given the operator configuration "upstream-dcr-fallback"
    And the remote authorization server does not support Client ID Metadata Documents
    And the remote authorization server offers dynamic client registration
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And "auth.provider.com" registered exactly one client, the one every authorization request names

  Scenario: An unreachable authorization server when the token expired answers 502 and keeps the token
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And the remote token has expired
    When the remote authorization server drops the next request to "/token"
    And alice's MCP client sends a request with its token to "https://mcp.example.com/mcp"
    Then the answer has status 502 and is the documented error "err-as-unreachable"
    When alice's MCP client's requests to "https://mcp.example.com/mcp" succeed again within 5 seconds
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once

  Scenario: A remote server without protected resource metadata stops discovery
    Given the operator configuration "quickstart-minimal"
    And the remote MCP server publishes no protected resource metadata
    And the proxy is running
    When alice tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then alice's browser shows the documented error "err-no-prm"
    And the proxy logged the documented event "log-discovery-failed" for that page
    And "auth.provider.com" received no authorization request

  Scenario: Naming the authorization server fixes it
    Given the operator configuration "upstream-authorization-server-url"
    And the remote MCP server publishes no protected resource metadata
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: The discovery doctor prints its verdict
    Given the operator configuration "quickstart-minimal"
    When the operator runs "mcp-proxy discover https://remote-mcp.provider.com/mcp"
    Then the command succeeds and prints the documented "discover-ok"

  Scenario: A replayed answer from the remote authorization server is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When alice's browser opens the remote authorization server's answer again
    Then alice's browser shows the documented error "err-state-replayed"

  Scenario: An answer opened in another user's browser is refused and spoils nothing
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    And alice has stopped at the remote authorization server's answer
    When bob's browser opens alice's answer
    Then bob's browser shows the documented error "err-wrong-user"
    And alice can still finish her connection with that answer

  Scenario: A refresh that works is logged
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And the remote token has reached its refresh window
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the proxy logs the documented event "log-token-refreshed" within 5 seconds
    And "auth.provider.com" received a refresh request

  Scenario: A refused refresh sends the user through consent again
    Given the operator configuration "quickstart-minimal"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And the remote token has expired
    When the remote authorization server revokes alice's grants
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the proxy logged the documented event "log-token-refresh-refused"
    And alice was sent to "auth.provider.com" twice

  Scenario: The second user's authorization is served from the discovery cache
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    Then the proxy logged the documented event "log-discovery-cache"
    And "remote-mcp.provider.com" served its protected resource metadata once

  Scenario: A Host that names no route gets an error and nothing else
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When a request for "https://mcp.example.com/.mcp-proxy/client-metadata.json" carries the Host "other.example.com"
    Then the answer has status 404 and names the error "unknown_host"

  @local
  Scenario: While Redis is away, valid tokens keep working and a sign-in gets the documented error
    Given a Redis server
    And the operator configuration "storage-redis"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client has called the tool "whoami"
    When Redis has been stopped for 3 seconds
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once
    When bob tries to connect an MCP client to "https://mcp.example.com/mcp"
    Then bob's browser shows the documented error "err-storage-unavailable"
    And the proxy logged the documented event "log-storage-unavailable" for that page
    When Redis starts again
    And bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "bob" and the audience "https://remote-mcp.provider.com/mcp"
