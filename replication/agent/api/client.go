package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/internal/backoff"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// Client talks to an agent's status API.
type Client struct {
	socket string
	hc     *http.Client
}

// NoAgentError is a socket nobody answers on.
type NoAgentError struct {
	Socket string
	Err    error
}

func (e *NoAgentError) Error() string {
	return fmt.Sprintf("no agent at %s: is mtconsole agent running?", e.Socket)
}

// Unwrap gives the dial error.
func (e *NoAgentError) Unwrap() error { return e.Err }

// Is makes a NoAgentError an ErrNoAgent.
func (e *NoAgentError) Is(target error) bool { return target == ErrNoAgent }

// Dial checks that an agent answers on socketPath (DefaultSocket when
// empty) and returns a client for it.
func Dial(socketPath string) (*Client, error) {
	if socketPath == "" {
		socketPath = DefaultSocket
	}
	c, err := net.DialTimeout("unix", socketPath, 2*time.Second)
	if errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("%s: permission denied: run as root, or as a member of the group the agent gives the socket", socketPath)
	}
	if err != nil {
		return nil, &NoAgentError{Socket: socketPath, Err: err}
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}
	return &Client{socket: socketPath, hc: &http.Client{Transport: tr}}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// WaitFor dials an agent that is starting until it answers on socket,
// stopped says it stopped, ctx ends, or within passes.
func WaitFor(ctx context.Context, socket string, stopped <-chan error, within time.Duration) (*Client, error) {
	deadline := time.Now().Add(within)
	for {
		if cl, err := Dial(socket); err == nil {
			if _, err := cl.Status(ctx); err == nil {
				return cl, nil
			}
			cl.Close()
		}
		select {
		case err := <-stopped:
			if err == nil {
				err = errors.New("it stopped")
			}
			return nil, fmt.Errorf("agent: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the agent did not answer on %s within %s", socket, within)
		}
	}
}

// APIError is an error the agent answered with.
type APIError struct {
	Code  int    // HTTP status
	Msg   string // "error"
	Field string // "field", for bad input
}

func (e *APIError) Error() string {
	if e.Field != "" && !strings.HasPrefix(e.Msg, e.Field+":") {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

// Is maps the status code back to the package's sentinel errors.
func (e *APIError) Is(target error) bool {
	switch e.Code {
	case http.StatusBadRequest:
		return target == ErrBadInput
	case http.StatusNotFound:
		return target == ErrUnknownPair || target == ErrUnknownJob || target == ErrUnknownView
	case http.StatusConflict:
		return target == ErrConflict
	}
	return false
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &NoAgentError{Socket: c.socket, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb errorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error == "" {
			eb.Error = resp.Status
		}
		return &APIError{Code: resp.StatusCode, Msg: eb.Error, Field: eb.Field}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agent %s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// OpenView is POST /v1/views: the view opened.
func (c *Client) OpenView(ctx context.Context, req ViewRequest) (View, error) {
	var v View
	err := c.do(ctx, http.MethodPost, "/v1/views", req, &v)
	return v, err
}

// Views is GET /v1/views: the open views.
func (c *Client) Views(ctx context.Context) ([]View, error) {
	var vs []View
	err := c.do(ctx, http.MethodGet, "/v1/views", nil, &vs)
	return vs, err
}

// CloseView is DELETE /v1/views/ID.
func (c *Client) CloseView(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/views/"+url.PathEscape(id), nil, nil)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// Tag is POST /v1/tag.
func (c *Client) Tag(ctx context.Context, req TagRequest) (TagResult, error) {
	var r TagResult
	err := c.do(ctx, http.MethodPost, "/v1/tag", req, &r)
	return r, err
}

// Pause is POST /v1/pairs/{id}/pause.
func (c *Client) Pause(ctx context.Context, pair, reason string) (PairStatus, error) {
	var s PairStatus
	err := c.do(ctx, http.MethodPost, "/v1/pairs/"+url.PathEscape(pair)+"/pause", PauseRequest{Reason: reason}, &s)
	return s, err
}

// Resume is POST /v1/pairs/{id}/resume.
func (c *Client) Resume(ctx context.Context, pair string) (PairStatus, error) {
	var s PairStatus
	err := c.do(ctx, http.MethodPost, "/v1/pairs/"+url.PathEscape(pair)+"/resume", nil, &s)
	return s, err
}

// Reload is POST /v1/reload: the agent reads its configuration file
// again and applies it (ReloadResult). A file with an error changes
// nothing: the result says why, and so does the error (ErrReload).
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	return c.ReloadWith(ctx, ReloadRequest{})
}

// ReloadWith is Reload with options (purge the stopped pairs' journal and
// retention directories).
func (c *Client) ReloadWith(ctx context.Context, req ReloadRequest) (ReloadResult, error) {
	var r ReloadResult
	if err := c.do(ctx, http.MethodPost, "/v1/reload", req, &r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, fmt.Errorf("%w: %s", ErrReload, r.Error)
	}
	return r, nil
}

// Recover is POST /v1/recover: it returns once the job has started.
func (c *Client) Recover(ctx context.Context, req RecoverRequest) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodPost, "/v1/recover", req, &j)
	return j, err
}

// Tags is GET /v1/pairs/{id}/tags: the pair's tags, oldest first.
func (c *Client) Tags(ctx context.Context, pair string) ([]journal.Tag, error) {
	var tags []journal.Tag
	err := c.do(ctx, http.MethodGet, "/v1/pairs/"+url.PathEscape(pair)+"/tags", nil, &tags)
	return tags, err
}

// Job is GET /v1/jobs/{id}.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &j)
	return j, err
}

// Jobs is GET /v1/jobs: every job the agent knows, oldest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var jobs []Job
	err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, &jobs)
	return jobs, err
}

// Resolve is POST /v1/resolve: where the point lies in each pair, as a
// recovery started now would find it.
func (c *Client) Resolve(ctx context.Context, req ResolveRequest) (Resolution, error) {
	var r Resolution
	err := c.do(ctx, http.MethodPost, "/v1/resolve", req, &r)
	return r, err
}

// Events is GET /v1/events: the channel gets the events from now until ctx
// ends or the agent goes, then closes. It returns once subscribed, so no
// event published after it returns is missed.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	return c.EventsWithHistory(ctx, 0)
}

// EventsWithHistory is Events preceded by up to n recent events
// (GET /v1/events?history=n).
func (c *Client) EventsWithHistory(ctx context.Context, n int) (<-chan Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/events?history="+strconv.Itoa(n), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &NoAgentError{Socket: c.socket, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &APIError{Code: resp.StatusCode, Msg: resp.Status}
	}
	br := bufio.NewReader(resp.Body)
	// The server's opening comment comes after it has subscribed.
	if _, err := br.ReadString('\n'); err != nil {
		resp.Body.Close()
		return nil, &NoAgentError{Socket: c.socket, Err: err}
	}
	ch := make(chan Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readEvents(br, func(e Event) bool {
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch, nil
}

// FollowRetries is how many times in a row FollowJob tries to reach the
// agent again, after its event stream ended, before it gives up.
const FollowRetries = 10

// FollowJob follows job id to its end and returns the job as it ended
// (done, failed, interrupted), giving fn each of its events met on the
// way, in order: first those still in the agent's recent history, then
// the live ones (a job found ended as the follow starts gives none). The
// end never depends on the stream: a job found ended by GET /v1/jobs/{id}
// when the stream starts, ends or drops events ends the follow; a stream that ends with the job still running is
// subscribed to again (the agent restarting: the next one answers for
// the job). It returns ctx's error when ctx ends first.
func (c *Client) FollowJob(ctx context.Context, id string, fn func(JobEvent)) (Job, error) {
	if fn == nil {
		fn = func(JobEvent) {}
	}
	history := HistorySize // the first time: what happened before this call
	fails := 0
	var lastErr error
	// Between subscriptions: a failure, or a stream that ended with the
	// job running, waits a full-jitter draw that grows to 2 s, so a
	// stream that ends at once does not spin.
	pause := backoff.New(50*time.Millisecond, 2*time.Second)
	for {
		if fails > FollowRetries {
			return Job{}, fmt.Errorf("following job %s: %w", id, lastErr)
		}
		sctx, cancel := context.WithCancel(ctx)
		ch, err := c.EventsWithHistory(sctx, history)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return Job{}, ctx.Err()
			}
			fails, lastErr = fails+1, err
			if !pause.Wait(ctx) {
				return Job{}, ctx.Err()
			}
			continue
		}
		history = 0
		j, ended, err := c.followStream(ctx, id, ch, fn)
		cancel()
		switch {
		case ctx.Err() != nil:
			return Job{}, ctx.Err()
		case errors.Is(err, ErrUnknownJob):
			return Job{}, err
		case err != nil:
			fails, lastErr = fails+1, err
			if !pause.Wait(ctx) {
				return Job{}, ctx.Err()
			}
		case ended:
			return j, nil
		default:
			// The stream ended, the job runs: subscribe again.
			fails = 0
			if !pause.Wait(ctx) {
				return Job{}, ctx.Err()
			}
		}
	}
}

// followStream reads ch until job id ends (ended true, with the job as
// the agent recorded it) or ch closes (ended false). The job is looked up
// once subscribed, and again on its last event or when events were lost.
func (c *Client) followStream(ctx context.Context, id string, ch <-chan Event, fn func(JobEvent)) (Job, bool, error) {
	check := func() (Job, bool, error) {
		j, err := c.Job(ctx, id)
		if err != nil {
			return Job{}, false, err
		}
		return j, j.State != JobRunning, nil
	}
	if j, ended, err := check(); err != nil || ended {
		return j, ended, err
	}
	for e := range ch {
		switch {
		case e.Kind == EventDropped:
			// Its end may be among the events lost.
			if j, ended, err := check(); err != nil || ended {
				return j, ended, err
			}
		case e.Job != nil && e.Job.ID == id:
			fn(*e.Job)
			if e.Job.Ended() {
				// The agent records the end before it publishes it.
				return check()
			}
		}
	}
	return Job{}, false, nil
}

// readEvents parses a server-sent event stream, giving each event whose
// data is an Event to emit until emit returns false or the stream ends.
// Comments (heartbeats) and fields other than data are skipped.
func readEvents(br *bufio.Reader, emit func(Event) bool) {
	var data []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if data == nil {
				continue
			}
			var e Event
			if json.Unmarshal(data, &e) == nil && !emit(e) {
				return
			}
			data = nil
		case strings.HasPrefix(line, "data:"):
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
}
