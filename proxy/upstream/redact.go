package upstream

import (
	"errors"

	"golang.org/x/oauth2"

	"github.com/mcp-proxy/mcp-proxy/proxy/redact"
)

// redactError makes an error from a token endpoint safe to show and log:
// an *oauth2.RetrieveError (which prints the whole answer when the server
// sent no OAuth error code) is replaced by a copy whose body and
// description are redacted, so errors.As still finds it. Other errors are
// returned as they are: x/oauth2 and this package never quote a body in
// them.
func redactError(err error) error {
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	c := *re
	c.Body = []byte(redact.Text(string(re.Body)))
	c.ErrorDescription = redact.Text(re.ErrorDescription)
	c.ErrorURI = redact.Text(re.ErrorURI)
	return &c
}
