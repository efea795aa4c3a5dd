package filestore

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcp-proxy/mcp-proxy/proxy/store"
)

// DiskKey exposes the bbolt key of ns/key to the tests that edit the file.
func (s *Store) DiskKey(ns, key string) []byte { return s.diskKey(ns, key) }

// WriteFormat1 writes one record as a store of format 1 did (the key in
// the clear), for the upgrade test.
func WriteFormat1(path, keyFile, ns, key string, value []byte) error {
	k, _, err := store.LoadKeyFile(keyFile)
	if err != nil {
		return err
	}
	sealer, err := store.NewSealer(k)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	s := &Store{path: path, sealer: sealer}
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), s.seal(ns, key, value, time.Time{}))
	})
}
