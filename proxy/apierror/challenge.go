package apierror

import "fmt"

// Challenge is the 401 answer that sends an MCP client to authorize
// (RFC 9728 §5.1): resource_metadata names the proxy's own protected
// resource metadata, never the remote server's. errCode and desc, when set,
// say why the token failed (RFC 6750 §3.1).
func Challenge(metadataURL, errCode, desc string) *Error {
	h := fmt.Sprintf(`Bearer resource_metadata="%s"`, metadataURL)
	msg := "This MCP server needs authorization: run the OAuth flow that the WWW-Authenticate header points to."
	if errCode != "" {
		h += fmt.Sprintf(`, error="%s", error_description="%s"`, errCode, desc)
		msg = desc
	}
	return New(CodeUnauthorized, "%s", msg).WithHeader("Www-Authenticate", h)
}

// Storage is the answer to a request whose store operation failed.
func Storage(err error) *Error {
	return Wrap(err, CodeStorageUnavailable, "The proxy's token store cannot be reached; nothing was changed. Try again shortly.")
}

// TooLarge is the answer to a request body over a route's limit.
func TooLarge(limit int64) *Error {
	return New(CodeRequestTooLarge, "The request body is larger than this route accepts (%d bytes; mcp.server.max_request_bytes).", limit)
}
