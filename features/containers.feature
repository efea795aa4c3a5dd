@doc:containers @containers
Feature: Running in a container
  The page "Running in a Container" promises that the proxy's image serves the
  Quick Start configuration with one docker run line. The scenario runs that
  line verbatim with bash, in the directory that holds the configuration and
  with IDP_CLIENT_SECRET in the environment, where the container stack answers
  for docker. It carries out every option the line gives, with the image this
  run built from cmd/mcp-proxy/Dockerfile; it publishes the container's port on
  127.0.0.1 on a port Docker picks instead of the host's 443, names the
  container uniquely, puts it on the stack's network and adds the stack's trust
  flags (its CA, its private host names) to the command. An option it does not
  know fails the scenario. Only the container stack can run it.

  Scenario: The documented docker run serves the Quick Start route
    Given the operator configuration "quickstart-minimal"
    When the operator runs the documented "container-run" in the configuration's directory
    And alice connects an MCP client to "https://mcp.example.com/mcp"
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And the token that reached the remote MCP server was issued by "auth.provider.com"
