package csserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mtconsole/mtconsole/hostconfig"
)

var bucketHosts = []byte("hosts")

// ErrStoreLocked is a store another process holds (a running cs serve).
var ErrStoreLocked = errors.New("host store in use")

// Store is the host inventory: a bbolt file with one bucket, hosts, of
// host id → JSON hostconfig.Host. Every change is one bbolt transaction,
// durable when it returns (bbolt syncs on commit).
type Store struct {
	db   *bolt.DB
	path string
}

// OpenStore opens (or creates, 0600) the store at path. readOnly opens it
// shared, for listing beside nothing else; a store another process holds
// open for writing fails with ErrStoreLocked after a second.
func OpenStore(path string, readOnly bool) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked by another process (is mtconsole cs serve running? then ask it: mtconsole cs hosts --addr)", ErrStoreLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("host store %s: %w", path, err)
	}
	if !readOnly {
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketHosts)
			return err
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("host store %s: %w", path, err)
		}
	}
	return &Store{db: db, path: path}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Put stores h under its id.
func (s *Store) Put(h hostconfig.Host) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHosts).Put([]byte(h.ID), b) })
}

// Get returns the host id.
func (s *Store) Get(id string) (hostconfig.Host, bool, error) {
	var h hostconfig.Host
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketHosts)
		if bk == nil {
			return nil
		}
		v := bk.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &h)
	})
	if err != nil {
		return h, false, fmt.Errorf("host store %s: host %s: %w", s.path, id, err)
	}
	return h, found, nil
}

// Delete removes host id and reports whether it was there.
func (s *Store) Delete(id string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketHosts)
		found = bk.Get([]byte(id)) != nil
		return bk.Delete([]byte(id))
	})
	return found, err
}

// List returns every host, by hostname then id.
func (s *Store) List() ([]hostconfig.Host, error) {
	var hs []hostconfig.Host
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketHosts)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var h hostconfig.Host
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("host %s: %w", k, err)
			}
			hs = append(hs, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("host store %s: %w", s.path, err)
	}
	slices.SortFunc(hs, func(a, b hostconfig.Host) int {
		if c := strings.Compare(a.Hostname, b.Hostname); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return hs, nil
}

// WithState sets each host's State as of now: lost after
// hostconfig.LostAfter of silence.
func WithState(hs []hostconfig.Host, now time.Time) []hostconfig.Host {
	for i := range hs {
		hs[i].State = stateAt(hs[i], now)
	}
	return hs
}

func stateAt(h hostconfig.Host, now time.Time) string {
	if now.Sub(h.LastHeartbeat) > hostconfig.LostAfter {
		return hostconfig.StateLost
	}
	return hostconfig.StateRegistered
}
