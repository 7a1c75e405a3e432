package api

import (
	"context"
	"net"
	"net/http"
	"os"
	"syscall"
)

type peerKey struct{}

// peerUID reads the uid of the process at the other end of a unix socket
// (SO_PEERCRED); -1 when it cannot be known.
func peerUID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}

func withPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerUID(c))
}

// mayChange says whether the request's peer may tag, pause, resume or
// recover: root or the agent's own user. Members of the socket's group
// get a read-only view (status, events, jobs), as the console gives a
// non-root user (DESIGN §8). A request that did not come through the
// socket (Handler used elsewhere) carries no peer and is let through.
func mayChange(r *http.Request) bool {
	uid, ok := r.Context().Value(peerKey{}).(int)
	if !ok {
		return true
	}
	return uid == 0 || uid == os.Geteuid()
}

// changing wraps a handler of a route that changes something.
func changing(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !mayChange(r) {
			writeError(w, http.StatusForbidden, errorBody{Error: "read-only: only root or the agent's user may tag, pause, resume or recover"})
			return
		}
		h(w, r)
	}
}
