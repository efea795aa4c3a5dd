@doc:certificates @acme @local
Feature: Certificates from an ACME certificate authority
  The Certificates page promises that with tls.acme the proxy obtains a
  certificate for each route's host from the CA, renews it before it
  expires, keeps what it has across a reload, and starts and serves when
  the CA is down. These scenarios run Pebble, Let's Encrypt's test ACME
  server, built from its Go module, on loopback; it validates the proxy's
  tls-alpn-01 answers on the proxy's own listener, and looks the route
  hosts up in a DNS server of the harness that answers them with 127.0.0.1.

  Scenario: The first certificate is obtained, an MCP client reaches the route over it, and a reload keeps it
    Given an ACME server
    And the operator configuration "certificates-acme"
    And the proxy is running
    Then the proxy logs the documented event "log-certificate-obtained" within 60 seconds
    And "mcp.example.com" presents a certificate issued by the ACME server
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    When the operator changes the configuration to "certificates-acme-two-routes"
    Then "mcp-internal.example.com" presents a certificate issued by the ACME server within 60 seconds
    And "mcp.example.com" presents the same certificate as before
    And the proxy obtained 2 certificates in all

  Scenario: A certificate is renewed before it expires
    Given an ACME server issuing certificates that live 30 seconds
    And the operator configuration "certificates-acme"
    And the proxy is running
    Then "mcp.example.com" presents a certificate issued by the ACME server within 60 seconds
    And "mcp.example.com" presents a new certificate within 40 seconds, before the first one expires
    And the proxy logs the documented event "log-certificate-renewed" within 5 seconds
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"

  Scenario: With the ACME server down at start, the proxy serves and obtains the certificate once it is back
    Given an ACME server that is not running
    And the operator configuration "certificates-acme"
    And the proxy is running
    Then the admin listener answers "/healthz" with 200
    And a TLS handshake with "mcp.example.com" fails
    And the proxy logs the documented event "log-certificate-unavailable" within 5 seconds
    And the proxy logged "certificate_failed" for "mcp.example.com"
    When the ACME server starts
    Then "mcp.example.com" presents a certificate issued by the ACME server within 100 seconds
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
