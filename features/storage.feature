@doc:advanced
Feature: Token storage: durable, shared, and refreshed once

  Scenario: With the file store, a restarted proxy still has every token
    Given the operator configuration "storage-file"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the proxy restarts
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once

  @local
  Scenario: Two replicas on one Redis share tokens and refresh an expired token exactly once
    Given a Redis server
    And the operator configuration "storage-redis"
    And the remote authorization server issues access tokens that live 4 seconds
    And the proxy is running with 2 replicas
    And alice has connected an MCP client to "https://mcp.example.com/mcp" through replica 1
    When alice's MCP client calls the tool "whoami" through replica 2
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once
    When the remote token has expired
    And the remote authorization server takes 300ms to answer the next request to "/token"
    And alice's MCP client's token is used through replica 1 and replica 2 at once
    Then both requests reached the remote MCP server with the same token
    And "auth.provider.com" received exactly 1 refresh request since then

  @local
  Scenario: A form served by one replica is accepted by another
    Given a Redis server
    And the operator configuration "storage-redis"
    And the proxy is running with 2 replicas
    And alice's browser sends its GET requests to replica 1 and its POST requests to replica 2
    When alice connects an MCP client to "https://mcp.example.com/mcp"
    Then alice approved the MCP client at "mcp.example.com"
    When alice's MCP client calls the tool "whoami" through replica 2
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    When alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    And alice disconnects it
    And alice lists her connections at "https://mcp.example.com/.mcp-proxy/connections"
    Then she sees 0 connections to "https://remote-mcp.provider.com/mcp"

  @local
  Scenario: Through Redis Sentinel, the proxy follows a failover and keeps every token
    Given Redis with a replica and three Sentinels
    And the operator configuration "storage-redis-sentinel"
    And the proxy is running
    And alice has connected an MCP client to "https://mcp.example.com/mcp"
    When the Sentinels fail the Redis primary over to its replica
    And the proxy restarts
    And alice's MCP client calls the tool "whoami"
    Then the tool answers with the subject "alice" and the audience "https://remote-mcp.provider.com/mcp"
    And alice was sent to "auth.provider.com" only once
    When bob connects an MCP client to "https://mcp.example.com/mcp"
    And bob's MCP client calls the tool "whoami"
    Then the tool answers with the subject "bob" and the audience "https://remote-mcp.provider.com/mcp"
