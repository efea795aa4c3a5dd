package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/mcp-proxy/mcp-proxy/proxy/apierror"
	"github.com/mcp-proxy/mcp-proxy/proxy/event"
)

// Recorder writes one route's audit records. A nil Log records nothing
// (no audit log is configured).
type Recorder struct {
	Log     *Log
	Route   string
	Binding string
	Now     func() time.Time
	// Logger receives audit_failed when Try cannot write.
	Logger *slog.Logger
}

// Record appends one record; the request id comes from ctx.
func (r *Recorder) Record(ctx context.Context, user, bindingKey, action, decision string, detail map[string]string) error {
	if r == nil || r.Log == nil {
		return nil
	}
	return r.Log.Append(Record{
		Time: r.Now(), User: user, Route: r.Route, Binding: r.Binding, BindingKeyID: KeyID(bindingKey),
		Action: action, Decision: decision, RequestID: apierror.RequestID(ctx), Detail: detail,
	})
}

// Try is Record for actions that go on when the audit log fails: the
// failure is logged (audit_failed).
func (r *Recorder) Try(ctx context.Context, user, bindingKey, action, decision string, detail map[string]string) {
	if err := r.Record(ctx, user, bindingKey, action, decision, detail); err != nil {
		r.Logger.Error("the audit log could not be written", event.AuditFailed.Attr(),
			slog.String("action", action), slog.String("request_id", apierror.RequestID(ctx)), slog.Any("error", err))
	}
}
