package mockas

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
)

// oauthError is an OAuth error response: RFC 6749 §4.1.2.1 on a redirect,
// §5.2 from the token endpoint.
type oauthError struct {
	Code        string
	Description string
	// Status is the HTTP status of a token endpoint answer. Zero means 400.
	Status int
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errf(code, format string, args ...any) *oauthError {
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// pageCSP forbids scripts, external resources and framing; inline style is
// the only thing a page may use. There is deliberately no form-action: a
// browser applies it to the redirect that follows a form post, and the
// consent decision redirects to the client.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// setPageHeaders sets the headers of every HTML page: no framing
// (clickjacking defence for login and consent), no caching, no referrer.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

const layout = `{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
h1{font-size:1.4rem}
label{display:block;margin-top:.8rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1rem;margin-right:.5rem;padding:.5rem 1.2rem;font-size:1rem}
.error{color:#a40000;font-weight:600}
.host{font-size:1.3rem;font-weight:700}
code{word-break:break-all}
dt{font-weight:600;margin-top:.6rem}
footer{margin-top:2rem;font-size:.85rem;color:#555}
</style>
</head>
<body>
<main>
{{end}}
{{define "bottom"}}</main>
<footer>Mock authorization server {{.Issuer}}. For tests and local trials only.</footer>
</body>
</html>
{{end}}`

var pages = template.Must(template.New("pages").Parse(layout + `
{{define "login"}}{{template "top" .}}<h1>Sign in to {{.IssuerHost}}</h1>
<p><span class="host">{{.ClientHost}}</span> ({{.ClientName}}) asks to sign you in.</p>
{{if .Error}}<p class="error" role="alert" id="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.FlowID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required value="{{.Username}}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{if .Hint}}<p>Test accounts: {{range $i, $u := .Hint}}{{if $i}}, {{end}}<code>{{$u.Username}}</code> / <code>{{$u.Password}}</code>{{end}}.</p>{{end}}
{{template "bottom" .}}{{end}}

{{define "consent"}}{{template "top" .}}<h1>Allow <span class="host">{{.ClientHost}}</span> to access your account?</h1>
<p>You are signed in to {{.IssuerHost}} as <strong>{{.Username}}</strong>.</p>
<dl>
<dt>Application</dt><dd>{{.ClientName}}</dd>
<dt>Client ID</dt><dd><code>{{.ClientID}}</code></dd>
<dt>Permissions requested (scopes)</dt><dd>{{if .Scopes}}<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{else}}none{{end}}</dd>
{{if .Resource}}<dt>For the resource</dt><dd><code>{{.Resource}}</code></dd>{{end}}
<dt>After your decision you will be sent to</dt><dd><code>{{.RedirectURI}}</code></dd>
</dl>
<form method="post" action="{{.Action}}">
<input type="hidden" name="flow" value="{{.FlowID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}<h1>{{.Heading}}</h1>
<p>Error: <code id="error">{{.Code}}</code></p>
<p id="error_description">{{.Description}}</p>
<p>The application that sent you here made a request this server cannot accept, so you are not sent back to it.</p>
{{template "bottom" .}}{{end}}

{{define "message"}}{{template "top" .}}<h1>{{.Heading}}</h1>
<p>{{.Description}}</p>
{{template "bottom" .}}{{end}}
`))

// pageData is what every page shows.
type pageData struct {
	Title, Issuer, IssuerHost string
	// login and consent
	Action, FlowID, CSRF, ClientName, ClientHost, ClientID string
	Username, Error                                        string
	Hint                                                   []User
	Scopes                                                 []string
	Resource, RedirectURI                                  string
	// error and message
	Heading, Code, Description string
}

func (s *Server) page(w http.ResponseWriter, status int, name string, d pageData) {
	d.Issuer = s.issuer
	d.IssuerHost = s.issuerURL.Host
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers an authorization request that cannot be redirected:
// the client or redirect URI is not validated (RFC 6749 §4.1.2.1: "MUST NOT
// automatically redirect the user-agent to the invalid redirection URI").
func (s *Server) errorPage(w http.ResponseWriter, status int, e *oauthError) {
	s.page(w, status, "error", pageData{
		Title:       "Authorization request refused · " + s.issuerURL.Host,
		Heading:     "Authorization request refused",
		Code:        e.Code,
		Description: e.Description,
	})
}
