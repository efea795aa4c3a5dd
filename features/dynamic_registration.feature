@doc:dynamic-registration
Feature: Dynamic client registration of MCP clients at the proxy
  The Dynamic Client Registration page promises that MCP clients without a
  Client ID Metadata Document register themselves (RFC 7591) at the proxy,
  on by default, as public clients with PKCE; that the user approves each one
  by name, marked as not verified, before anything reaches the remote server;
  that the registration endpoint refuses what its rules and bounds do not
  allow, with the documented errors; and that an operator can turn it off.

  Scenario: The proxy's metadata names the registration endpoint
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client reads the authorization server metadata of "mcp.example.com"
    Then the metadata has the documented "dcr-metadata-endpoint"

  Scenario: A registration is answered with the documented fields
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client registers at "mcp.example.com" with the documented "dcr-register-request"
    Then the answer has status 201 and has the documented fields "dcr-register-response"
    And the proxy logged the documented event "log-mcp-client-registered"

  Scenario: A self-registered client is shown as not verified and reaches whoami once approved
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects an MCP client that registers itself with the redirect URI "http://localhost:3334/oauth/callback" to "https://mcp.example.com/mcp"
    Then alice's consent page at "mcp.example.com" showed the documented "consent-not-verified"
    And alice approved the proxy at "auth.provider.com"
    When alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: A user who denies a self-registered client stops it before the remote server
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice denies an MCP client that registers itself with the redirect URI "http://localhost:3334/oauth/callback" at "https://mcp.example.com/mcp"
    Then nothing reached "auth.provider.com" for alice

  Scenario Outline: A registration with a redirect URI outside the rules is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client registers at "mcp.example.com" with the metadata '<metadata>'
    Then the answer has status 400 and is the documented error "<error>"
    And the answer is JSON naming the error "invalid_redirect_uri" and a request id

    Examples:
      | metadata                                                                                    | error                        |
      | {"redirect_uris":["http://app.example.net/callback"],"application_type":"web"}              | err-dcr-http-redirect        |
      | {"redirect_uris":["http://192.168.1.20:8080/callback"],"application_type":"native"}         | err-dcr-native-not-loopback  |
      | {"redirect_uris":["javascript:alert(1)"],"application_type":"native"}                       | err-dcr-javascript           |
      | {"redirect_uris":["https://app.example.net/callback#x"]}                                    | err-dcr-fragment             |

  Scenario: A confidential client is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client registers at "mcp.example.com" with the metadata '{"redirect_uris":["https://app.example.net/callback"],"token_endpoint_auth_method":"client_secret_basic"}'
    Then the answer has status 400 and is the documented error "err-dcr-confidential"

  Scenario: A registration over 16 KiB is refused
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client registers at "mcp.example.com" with 20000 bytes of metadata
    Then the answer has status 413 and is the documented error "err-dcr-too-large"

  Scenario: Registrations past the rate limit are refused with Retry-After
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When an MCP client registers at "mcp.example.com" 11 times in a row
    Then the answer has status 429 and is the documented error "err-dcr-rate-limited"
    And the answer has a Retry-After header in seconds

  Scenario: With registration turned off there is no endpoint
    Given the operator configuration "dcr-disabled"
    And the proxy is running
    When an MCP client reads the authorization server metadata of "mcp.example.com"
    Then the metadata has no "registration_endpoint"
    When an MCP client registers at "mcp.example.com" with the documented "dcr-register-request"
    Then the answer has status 404 and is the documented error "err-dcr-disabled"

  @mcp-remote
  Scenario: mcp-remote registers, the user approves it by name, and it calls whoami
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice connects mcp-remote to "https://mcp.example.com/mcp"
    Then alice approved mcp-remote at "mcp.example.com" by its name "MCP CLI Proxy", shown as not verified
    When mcp-remote calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: An unknown registered client id stops at the proxy's error page
    Given the operator configuration "quickstart-minimal"
    And the proxy is running
    When alice's browser opens an authorization request of the client id "mcpp_client_AAAAAAAAAAAAAAAAAAAAAAAA" with the redirect URI "http://localhost:3334/oauth/callback" at "mcp.example.com"
    Then alice's browser shows the documented error "err-dcr-unknown-client"
