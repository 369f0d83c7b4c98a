package wasm

import (
	"container/list"
	"crypto/sha256"

	"sync"
)

// respCache is a bounded LRU of whole responses keyed by a hash of
// everything a pure function can see of a request.
type respCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key  [32]byte
	resp response
	size int64
}

func newRespCache(maxBytes int64) *respCache {
	return &respCache{max: maxBytes, ll: list.New(), items: map[[32]byte]*list.Element{}}
}

// cacheKey hashes the request's environment and body: two requests with the
// same key give a pure function the same input.
func cacheKey(c *call) [32]byte {
	h := sha256.New()
	for _, kv := range c.env {
		h.Write(kv)
		h.Write([]byte{0})
	}
	h.Write(c.stdin)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (rc *respCache) get(k [32]byte) (response, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e, ok := rc.items[k]; ok {
		rc.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).resp, true
	}
	return response{}, false
}

func (rc *respCache) put(k [32]byte, r response) {
	size := int64(len(r.body)) + 256
	for kk, vv := range r.header {
		size += int64(len(kk))
		for _, v := range vv {
			size += int64(len(v))
		}
	}
	if size > rc.max {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, ok := rc.items[k]; ok {
		return
	}
	rc.items[k] = rc.ll.PushFront(&cacheEntry{key: k, resp: response{status: r.status, header: r.header.Clone(), body: r.body}, size: size})
	rc.size += size
	for rc.size > rc.max {
		e := rc.ll.Back()
		ce := e.Value.(*cacheEntry)
		rc.ll.Remove(e)
		delete(rc.items, ce.key)
		rc.size -= ce.size
	}
}

func (rc *respCache) bytes() int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.size
}
