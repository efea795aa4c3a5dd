// Package pages renders the proxy's own HTML pages: consent, the user's
// connections, and errors. They are plain and self-contained: no script, no
// external style or font, readable by a person and submittable by a headless
// client.
package pages

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
)

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
dt{font-weight:600}dd{margin:0 0 .75rem 0;word-break:break-all}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}
.muted{color:#555;font-size:.9rem}</style></head><body>`

// Consent asks a user to approve an MCP client.
var Consent = template.Must(template.New("consent").Parse(pageHead + `
<h1>Allow {{.ClientName}}?</h1>
{{if .SelfRegistered}}<p id="not-verified"><strong>Not verified.</strong> This MCP client registered itself with the proxy:
nobody vouches for its name. It will receive its answer at <strong>{{.ClientHost}}</strong>.</p>{{end}}
<p>{{.User}}, the MCP client <strong>{{.ClientName}}</strong> from <strong>{{.ClientHost}}</strong>
wants to use the MCP server at <strong>{{.Host}}</strong> as you. The proxy will sign in to
<strong>{{.Remote}}</strong> for it with your consent there.</p>
<dl>
<dt>Client id</dt><dd>{{.ClientID}}</dd>
<dt>It will receive its answer at</dt><dd>{{.RedirectURI}}</dd>
{{if .Scopes}}<dt>Scopes</dt><dd>{{range .Scopes}}{{.}} {{end}}</dd>{{end}}
</dl>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.Request}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="muted">Only allow clients you started yourself. You can be asked again if you connect a new client.</p>
</body></html>`))

// Connections lists a user's connections with a disconnect button each.
var Connections = template.Must(template.New("connections").Parse(pageHead + `
<h1>Your connections through {{.Host}}</h1>
<p>Signed in as {{.User}}. These remote servers accept the proxy on your behalf. Disconnecting one
revokes the proxy's tokens there; you will be asked to consent again the next time you use it.</p>
{{if .Connections}}<ul>{{range .Connections}}
<li><strong>{{.Upstream}}</strong>{{if .Client}} for the MCP client {{.Client}}{{end}} (authorized by {{.Issuer}}{{if .Scopes}}, scopes: {{range .Scopes}}{{.}} {{end}}{{end}})
<form method="post" action="{{$.Action}}">
<input type="hidden" name="connection" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<button type="submit" name="decision" value="disconnect">Disconnect</button>
</form></li>{{end}}
</ul>{{else}}<p id="none">You have no connections.</p>{{end}}
</body></html>`))

var errorTemplate = template.Must(template.New("error").Parse(pageHead + `
<h1>{{.Title}}</h1>
<p id="message">{{.Message}}</p>
<p class="muted">Error code <code id="code">{{.Code}}</code>, request id <code id="request-id">{{.RequestID}}</code>.
Give the request id to the operator of {{.Host}}: it finds the matching line in the proxy's log.</p>
</body></html>`))

// Error returns the renderer of error pages for a route host, for
// [apierror.Responder.Page].
func Error(host string) func(w http.ResponseWriter, e *apierror.Error, requestID string) {
	return func(w http.ResponseWriter, e *apierror.Error, requestID string) {
		title := "Authorization failed"
		if e.Code == apierror.CodePolicyDenied {
			title = "Access denied"
		}
		Render(w, e.Status, errorTemplate, map[string]any{
			"Title": title, "Code": e.Code, "Message": e.Message,
			"RequestID": requestID, "Host": host,
		})
	}
}

// Render writes an HTML page with headers that keep it out of frames and
// caches.
func Render(w http.ResponseWriter, status int, t *template.Template, data map[string]any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
