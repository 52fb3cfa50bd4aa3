package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a NATS server with JetStream running inside the process,
// listening on 127.0.0.1. Its streams live in a file store under its
// directory, so they survive a restart on the same directory.
type Server struct {
	cfg    config
	dir    string
	unlock func()

	mu   sync.Mutex
	srv  *server.Server
	port int
}

type config struct {
	port       int
	maxPayload int32
	ready      time.Duration
	log        *slog.Logger
}

// Option configures [Start].
type Option func(*config) error

// WithPort makes the server listen on a fixed port. Default: a free port
// chosen at start (kept across Restart), so it never collides with a NATS
// server already on 4222.
func WithPort(port int) Option {
	return func(c *config) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("natsserver: WithPort(%d): must be between 1 and 65535", port)
		}
		c.port = port
		return nil
	}
}

// WithMaxPayload sets the server's max_payload, the largest message it
// accepts (headers included). Default 1 MiB.
func WithMaxPayload(n int) Option {
	return func(c *config) error {
		if n < 1024 || n > 64<<20 {
			return fmt.Errorf("natsserver: WithMaxPayload(%d): must be between 1 KiB and 64 MiB", n)
		}
		c.maxPayload = int32(n)
		return nil
	}
}

// WithReadyTimeout bounds the wait for the server to accept connections.
// Default 10s.
func WithReadyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("natsserver: WithReadyTimeout(%v): must be positive", d)
		}
		c.ready = d
		return nil
	}
}

// WithLogger forwards the server's log lines to l (notices at Info,
// warnings at Warn, errors at Error). Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("natsserver: WithLogger: logger is nil")
		}
		c.log = l
		return nil
	}
}

// ErrDirInUse is matched by the error of [Start] on a directory that
// another embedded server (in this or another process) is using.
var ErrDirInUse = errors.New("natsserver: data directory in use")

// Start starts a NATS server with JetStream whose file store is under dir
// (created if missing), and locks dir against a second server. It returns
// once the server accepts connections with JetStream enabled.
func Start(dir string, opts ...Option) (*Server, error) {
	if dir == "" {
		return nil, errors.New("natsserver: Start: dir is required")
	}
	cfg := config{maxPayload: 1 << 20, ready: 10 * time.Second}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("natsserver: Start: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("natsserver: Start: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	e := &Server{cfg: cfg, dir: dir, port: cfg.port, unlock: unlock}
	if err := e.start(); err != nil {
		unlock()
		return nil, err
	}
	return e, nil
}

func (e *Server) start() error {
	port := e.port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{
		ServerName: "handoff-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   e.dir,
		MaxPayload: e.cfg.maxPayload,
		NoSigs:     true,
		NoLog:      true, // logging goes through serverLog
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("natsserver: embedded server: %w", err)
	}
	lg := &serverLog{l: e.cfg.log}
	srv.SetLoggerV2(lg, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(e.cfg.ready) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if msg := lg.lastError(); msg != "" {
			return fmt.Errorf("natsserver: embedded server on 127.0.0.1:%d not ready within %v: %s", e.port, e.cfg.ready, msg)
		}
		return fmt.Errorf("natsserver: embedded server on 127.0.0.1:%d not ready within %v", e.port, e.cfg.ready)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natsserver: embedded server: JetStream did not start in %s: %s", e.dir, lg.lastError())
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		srv.WaitForShutdown()
		return errors.New("natsserver: embedded server: no TCP listener")
	}
	e.mu.Lock()
	e.srv = srv
	e.port = addr.Port // a restart reuses the port, so clients reconnect to it
	e.mu.Unlock()
	return nil
}

// URL returns the client URL, nats://127.0.0.1:<port>.
func (e *Server) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", e.port)
}

// Dir returns the data directory.
func (e *Server) Dir() string { return e.dir }

// Shutdown stops the server, waits until it has stopped, and releases the
// directory. Data stays in the directory. It is safe to call more than once.
func (e *Server) Shutdown() {
	e.stop()
	e.mu.Lock()
	unlock := e.unlock
	e.unlock = nil
	e.mu.Unlock()
	if unlock != nil {
		unlock()
	}
}

func (e *Server) stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart shuts the server down and starts it again on the same directory
// and port. Clients with reconnects enabled (see Connect) come back by
// themselves.
func (e *Server) Restart() error {
	e.mu.Lock()
	released := e.unlock == nil
	e.mu.Unlock()
	if released {
		return errors.New("natsserver: Restart after Shutdown")
	}
	e.stop()
	var err error
	// The port was just released; a few tries absorb a slow close.
	for try := 0; try < 20; try++ {
		if err = e.start(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// serverLog adapts the server's logger to slog and remembers the last
// error, for Start's error message.
type serverLog struct {
	l   *slog.Logger
	mu  sync.Mutex
	err string
}

func (s *serverLog) lastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *serverLog) record(format string, v []any) {
	s.mu.Lock()
	s.err = fmt.Sprintf(format, v...)
	s.mu.Unlock()
}

func (s *serverLog) Noticef(format string, v ...any) {
	if s.l != nil {
		s.l.Info(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}
func (s *serverLog) Warnf(format string, v ...any) {
	if s.l != nil {
		s.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}
func (s *serverLog) Fatalf(format string, v ...any) {
	s.record(format, v)
	if s.l != nil {
		s.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}
func (s *serverLog) Errorf(format string, v ...any) {
	s.record(format, v)
	if s.l != nil {
		s.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
	}
}
func (s *serverLog) Debugf(format string, v ...any) {}
func (s *serverLog) Tracef(format string, v ...any) {}
