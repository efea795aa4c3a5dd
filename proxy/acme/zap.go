package acme

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mcp-proxy/mcp-proxy/proxy/event"
)

// zapLogger hands certmagic (which logs with zap) a logger that writes its
// warnings and errors to log as acme_library events; its fields go under
// one key, details, so the event's keys stay the catalog's. Its info and
// debug lines are dropped: the proxy's own certificate events say what an
// operator needs.
func zapLogger(log *slog.Logger) *zap.Logger { return zap.New(slogCore{log: log}) }

type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func (c slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	c.fields = append(slices.Clone(c.fields), fields...)
	return c
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clone(c.fields), fields...) {
		f.AddTo(enc)
	}
	attrs := []slog.Attr{event.ACMELibrary.Attr(), slog.String("logger", e.LoggerName)}
	if len(enc.Fields) > 0 {
		if b, err := json.Marshal(enc.Fields); err == nil {
			attrs = append(attrs, slog.String("details", string(b)))
		}
	}
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	c.log.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c slogCore) Sync() error { return nil }
