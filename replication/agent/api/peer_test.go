package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestPeerUID(t *testing.T) {
	sock := filepath.Join(shortDir(t), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("unix", sock); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := peerUID(c); got != os.Geteuid() {
		t.Errorf("peer uid %d, want %d", got, os.Geteuid())
	}
}

// A member of the socket's group who is neither root nor the agent's
// user gets a read-only API.
func TestReadOnlyPeer(t *testing.T) {
	s := &Server{b: nopBackend{}}
	h := s.Handler()
	other := 4242
	if other == os.Geteuid() {
		other++
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/v1/tag", http.StatusForbidden},
		{"POST", "/v1/pairs/p1/pause", http.StatusForbidden},
		{"POST", "/v1/pairs/p1/resume", http.StatusForbidden},
		{"POST", "/v1/recover", http.StatusForbidden},
		{"POST", "/v1/reload", http.StatusForbidden},
		{"GET", "/v1/status", http.StatusOK},
		{"GET", "/v1/jobs/j1", http.StatusNotFound},
	} {
		r := httptest.NewRequestWithContext(context.WithValue(context.Background(), peerKey{}, other), tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("uid %d: %s %s: %d, want %d", other, tc.method, tc.path, w.Code, tc.code)
		}
	}
}
