package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// DefaultSocket is where the agent listens and the clients look.
const DefaultSocket = "/run/mtconsole/agent.sock"

// Config configures a Server.
type Config struct {
	Socket string // default DefaultSocket
	// Group, a group name or numeric id, may use the socket too (0660);
	// empty: only the agent's user (0600).
	Group string
	// Heartbeat is the interval of the event stream's keep-alive comments
	// (default 15 s).
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// Server serves a Backend on a unix socket.
type Server struct {
	cfg    Config
	b      Backend
	ln     net.Listener
	hs     *http.Server
	ctx    context.Context // ends event streams on Close
	cancel context.CancelFunc
	done   chan struct{}
}

// Listen checks the socket path, listens and starts serving b. It
// refuses a socket another agent answers on, removes a stale one, and
// never removes a path that is not a socket.
func Listen(cfg Config, b Backend) (*Server, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mode, gid := os.FileMode(0o600), -1
	if cfg.Group != "" {
		g, err := lookupGroup(cfg.Group)
		if err != nil {
			return nil, err
		}
		mode, gid = 0o660, g
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o755); err != nil {
		return nil, fmt.Errorf("status API: %w", err)
	}
	if fi, err := os.Lstat(cfg.Socket); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("status API: %s exists and is not a socket: move it away", cfg.Socket)
		}
		c, err := net.DialTimeout("unix", cfg.Socket, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("status API: another agent answers on %s: %w", cfg.Socket, ErrConflict)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("status API: cannot tell whether an agent answers on %s: %w", cfg.Socket, err)
		}
		// Nobody answers: a socket left by an agent that died.
		if err := os.Remove(cfg.Socket); err != nil {
			return nil, fmt.Errorf("status API: removing the stale socket: %w", err)
		}
		cfg.Logger.Info("removed a stale socket", "socket", cfg.Socket)
	}
	ln, err := net.Listen("unix", cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("status API: %w", err)
	}
	// The directory is world-readable; the socket's own mode is the lock.
	if gid >= 0 {
		err = os.Chown(cfg.Socket, -1, gid)
	}
	if err == nil {
		err = os.Chmod(cfg.Socket, mode)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("status API: %s: %w", cfg.Socket, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, b: b, ln: ln, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.hs = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }, ConnContext: withPeer}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("status API stopped", "err", err)
		}
	}()
	return s, nil
}

func lookupGroup(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("status API: group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// Socket is the path the server listens on.
func (s *Server) Socket() string { return s.cfg.Socket }

// Close stops serving, ends the event streams and removes the socket.
func (s *Server) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.hs.Shutdown(ctx)
	<-s.done
	return err
}

// Handler is the API's routes, for a listener of the caller's choosing.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.b.Status()
		reply(w, http.StatusOK, st, err)
	})
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("POST /v1/tag", changing(func(w http.ResponseWriter, r *http.Request) {
		var req TagRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		res, err := s.b.Tag(req)
		reply(w, http.StatusOK, res, err)
	}))
	mux.HandleFunc("POST /v1/pairs/{id}/pause", changing(func(w http.ResponseWriter, r *http.Request) {
		var req PauseRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		st, err := s.b.Pause(r.PathValue("id"), req.Reason)
		reply(w, http.StatusOK, st, err)
	}))
	mux.HandleFunc("POST /v1/pairs/{id}/resume", changing(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.b.Resume(r.PathValue("id"))
		reply(w, http.StatusOK, st, err)
	}))
	// A look-up: the group may ask where a point lies.
	mux.HandleFunc("POST /v1/resolve", func(w http.ResponseWriter, r *http.Request) {
		var req ResolveRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		res, err := s.b.Resolve(req)
		reply(w, http.StatusOK, res, err)
	})
	mux.HandleFunc("POST /v1/recover", changing(func(w http.ResponseWriter, r *http.Request) {
		var req RecoverRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		j, err := s.b.Recover(req)
		reply(w, http.StatusAccepted, j, err)
	}))
	mux.HandleFunc("POST /v1/reload", changing(func(w http.ResponseWriter, r *http.Request) {
		var req ReloadRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		rb, ok := s.b.(ReloadBackend)
		if !ok {
			reply(w, 0, nil, fmt.Errorf("%w: this agent does not reload its configuration", ErrConflict))
			return
		}
		res, err := rb.Reload(req)
		reply(w, http.StatusOK, res, err)
	}))
	mux.HandleFunc("GET /v1/pairs/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		tags, err := s.b.Tags(r.PathValue("id"))
		if tags == nil {
			tags = []journal.Tag{}
		}
		reply(w, http.StatusOK, tags, err)
	})
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		jobs, err := s.b.Jobs()
		if jobs == nil {
			jobs = []Job{}
		}
		reply(w, http.StatusOK, jobs, err)
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := s.b.Job(r.PathValue("id"))
		reply(w, http.StatusOK, j, err)
	})
	mux.HandleFunc("POST /v1/views", changing(func(w http.ResponseWriter, r *http.Request) {
		var req ViewRequest
		if err := decode(r, &req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		vb, ok := s.b.(ViewBackend)
		if !ok {
			reply(w, 0, nil, fmt.Errorf("%w: this agent serves no views", ErrConflict))
			return
		}
		v, err := vb.OpenView(req)
		reply(w, http.StatusCreated, v, err)
	}))
	mux.HandleFunc("GET /v1/views", func(w http.ResponseWriter, r *http.Request) {
		views := []View{}
		var err error
		if vb, ok := s.b.(ViewBackend); ok {
			views, err = vb.Views()
		}
		reply(w, http.StatusOK, views, err)
	})
	mux.HandleFunc("DELETE /v1/views/{id}", changing(func(w http.ResponseWriter, r *http.Request) {
		vb, ok := s.b.(ViewBackend)
		if !ok {
			reply(w, 0, nil, fmt.Errorf("view %q: %w", r.PathValue("id"), ErrUnknownView))
			return
		}
		err := vb.CloseView(r.PathValue("id"))
		reply(w, http.StatusOK, struct{}{}, err)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorBody{Error: "no such route: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// decode reads a JSON body; an empty body is the zero request.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		field := "body"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return &FieldError{Field: field, Msg: err.Error()}
	}
	return nil
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func reply(w http.ResponseWriter, code int, v any, err error) {
	if err == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
		return
	}
	body := errorBody{Error: err.Error()}
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		code, body.Field = http.StatusBadRequest, fe.Field
	case errors.Is(err, ErrUnknownPair), errors.Is(err, ErrUnknownJob), errors.Is(err, ErrUnknownView):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	default:
		code = http.StatusInternalServerError
	}
	writeError(w, code, body)
}

func writeError(w http.ResponseWriter, code int, body errorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

// events streams server-sent events until the client goes or the server
// closes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errorBody{Error: "streaming unsupported"})
		return
	}
	ctx := r.Context()
	history := 0
	if v := r.URL.Query().Get("history"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, errorBody{Error: "history: want a count of recent events, 0 or more", Field: "history"})
			return
		}
		history = n
	}
	ch := s.b.Subscribe(ctx, history)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": mtconsole agent events\n\n")
	fl.Flush()
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return
			}
			data, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, data); err != nil {
				return
			}
		}
		fl.Flush()
	}
}
