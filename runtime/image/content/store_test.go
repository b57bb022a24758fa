package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/internal/testutil"
	"github.com/troupe-run/troupe/runtime/image/content"
)

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func openStore(t *testing.T) (*content.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// files lists every regular file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidateDigest(t *testing.T) {
	good := digest([]byte("x"))
	tests := []struct {
		name, dgst string
		ok         bool
	}{
		{"valid", good, true},
		{"uppercase hex", strings.ToUpper(good[:7]) + strings.ToUpper(good[7:]), false},
		{"uppercase algorithm only", "SHA256" + good[6:], false},
		{"short", good[:len(good)-1], false},
		{"long", good + "0", false},
		{"traversal", "sha256:../../../../etc/passwd", false},
		{"traversal padded to length", "sha256:" + strings.Repeat("../", 21) + "x", false},
		{"slash", "sha256:" + strings.Repeat("a", 31) + "/" + strings.Repeat("a", 32), false},
		{"sha512", "sha512:" + strings.Repeat("a", 128), false},
		{"no algorithm", good[7:], false},
		{"empty", "", false},
		{"nul", "sha256:" + strings.Repeat("a", 63) + "\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := content.ValidateDigest(tt.dgst)
			if tt.ok != (err == nil) {
				t.Fatalf("ValidateDigest(%q) = %v, want ok=%v", tt.dgst, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
		})
	}
}

func TestIngest(t *testing.T) {
	blob := []byte("hello, content store")
	other := []byte("something else entirely")
	tests := []struct {
		name    string
		dgst    string
		size    int64
		body    []byte
		wantErr string // substring; "" means success
	}{
		{"exact", digest(blob), int64(len(blob)), blob, ""},
		{"empty blob", digest(nil), 0, nil, ""},
		{"digest mismatch", digest(blob), int64(len(other)), other, "expected " + digest(blob) + ", got " + digest(other)},
		{"truncated", digest(blob), int64(len(blob)), blob[:5], "truncated: expected 20 bytes, got 5"},
		{"too long", digest(blob), int64(len(blob)), append(append([]byte{}, blob...), 'x'), "expected 20 bytes, got more"},
		{"hostile digest", "sha256:../../x", 3, []byte("abc"), "invalid digest"},
		{"negative size", digest(blob), -1, blob, "negative size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := openStore(t)
			err := s.Ingest(context.Background(), tt.dgst, tt.size, bytes.NewReader(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				rc, err := s.Open(tt.dgst)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				got, _ := io.ReadAll(rc)
				if !bytes.Equal(got, tt.body) {
					t.Fatalf("read back %q, want %q", got, tt.body)
				}
				info, err := s.Info(tt.dgst)
				if err != nil || info.Size != tt.size || info.Digest != tt.dgst {
					t.Fatalf("Info = %+v, %v", info, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Ingest error = %v, want one containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
			if f := files(t, dir); len(f) != 0 {
				t.Fatalf("failed ingest left files: %v", f)
			}
		})
	}
}

// endless is a reader that never ends: Ingest must stop at size+1.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.n += int64(len(p))
	return len(p), nil
}

func TestIngestBoundsReading(t *testing.T) {
	s, _ := openStore(t)
	r := &endless{}
	err := s.Ingest(context.Background(), digest([]byte("abc")), 3, r)
	if !errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("Ingest of endless stream: %v", err)
	}
	if r.n > 64<<10 {
		t.Fatalf("read %d bytes of an endless stream for a 3-byte blob", r.n)
	}
}

// countingReader counts the readers of a blob actually consumed.
type countingReader struct {
	r     io.Reader
	reads *atomic.Int32
	once  sync.Once
	gate  <-chan struct{}
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.once.Do(func() {
		c.reads.Add(1)
		<-c.gate
	})
	return c.r.Read(p)
}

func TestIngestConcurrentWritesOnce(t *testing.T) {
	s, dir := openStore(t)
	blob := bytes.Repeat([]byte("layer"), 10000)
	dgst := digest(blob)
	var reads atomic.Int32
	gate := make(chan struct{})
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- s.Ingest(context.Background(), dgst, int64(len(blob)),
				&countingReader{r: bytes.NewReader(blob), reads: &reads, gate: gate})
		}()
	}
	// The writer holds its reader until the gate opens; the others either
	// wait for it or come after it and find the blob: both read nothing.
	testutil.Eventually(t, "the first ingest to read", func() bool { return reads.Load() == 1 })
	close(gate)
	for range n {
		if err := testutil.Receive(t, "an ingest to end", errs); err != nil {
			t.Fatal(err)
		}
	}
	if got := reads.Load(); got != 1 {
		t.Fatalf("%d readers were consumed, want 1", got)
	}
	if f := files(t, dir); len(f) != 1 {
		t.Fatalf("files after concurrent ingest: %v", f)
	}
}

func TestIngestWaiterRetriesAfterFailure(t *testing.T) {
	s, _ := openStore(t)
	blob := []byte("the real thing")
	dgst := digest(blob)
	gate := make(chan struct{})
	var reads atomic.Int32
	firstErr := make(chan error, 1)
	go func() {
		bad := &countingReader{r: strings.NewReader("not the thing!"), reads: &reads, gate: gate}
		firstErr <- s.Ingest(context.Background(), dgst, int64(len(blob)), bad)
	}()
	testutil.Eventually(t, "the bad ingest to read", func() bool { return reads.Load() == 1 })
	second := make(chan error, 1)
	go func() { second <- s.Ingest(context.Background(), dgst, int64(len(blob)), bytes.NewReader(blob)) }()
	close(gate)
	if err := testutil.Receive(t, "the bad ingest", firstErr); !errors.Is(err, errclass.InvalidArgument) {
		t.Fatalf("bad ingest: %v", err)
	}
	if err := testutil.Receive(t, "the good ingest", second); err != nil {
		t.Fatalf("good ingest after a failed one: %v", err)
	}
	if _, err := s.Info(dgst); err != nil {
		t.Fatal(err)
	}
}

func TestIngestIdempotent(t *testing.T) {
	s, _ := openStore(t)
	blob := []byte("twice")
	if err := s.Ingest(context.Background(), digest(blob), 5, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	// Present: the reader is not even looked at.
	if err := s.Ingest(context.Background(), digest(blob), 5, iotestErrReader{}); err != nil {
		t.Fatalf("second ingest: %v", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestIngestContextCanceled(t *testing.T) {
	s, dir := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Ingest(ctx, digest([]byte("abc")), 3, strings.NewReader("abc"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ingest with canceled ctx: %v", err)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Fatalf("canceled ingest left files: %v", f)
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("kept")
	if err := s.Ingest(context.Background(), digest(blob), 4, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "ingest", "deadbeef-123")
	if err := os.WriteFile(leftover, []byte("half a layer"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = content.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover ingest file still there: %v", err)
	}
	if _, err := s.Info(digest(blob)); err != nil {
		t.Fatalf("complete blob lost at Open: %v", err)
	}
}

func TestNotFoundAndDelete(t *testing.T) {
	s, _ := openStore(t)
	blob := []byte("to delete")
	dgst := digest(blob)
	tests := []struct {
		name string
		op   func() error
	}{
		{"open", func() error { _, err := s.Open(dgst); return err }},
		{"info", func() error { _, err := s.Info(dgst); return err }},
		{"delete", func() error { return s.Delete(dgst) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, errclass.NotFound) {
				t.Fatalf("%s of a missing blob: %v, want NotFound", tt.name, err)
			}
		})
	}
	if err := s.Ingest(context.Background(), dgst, int64(len(blob)), bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(dgst); !errors.Is(err, errclass.NotFound) {
		t.Fatalf("Info after Delete: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := s.Open("sha256:../../etc/passwd"); return err },
		func() error { return s.Delete("sha256:../../etc/passwd") },
	} {
		if err := op(); !errors.Is(err, errclass.InvalidArgument) {
			t.Fatalf("hostile digest: %v, want InvalidArgument", err)
		}
	}
}

func TestWalk(t *testing.T) {
	s, dir := openStore(t)
	want := map[string]int64{}
	for _, b := range []string{"a", "bb", "ccc"} {
		d := digest([]byte(b))
		want[d] = int64(len(b))
		if err := s.Ingest(context.Background(), d, int64(len(b)), strings.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	// A stray file is no blob.
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	if err := s.Walk(func(i content.Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk found %v, want %v", got, want)
	}
	for d, n := range want {
		if got[d] != n {
			t.Fatalf("Walk: %s has size %d, want %d", d, got[d], n)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(func(content.Info) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Walk did not stop at the first error: %v after %d calls", err, calls)
	}
}

// complaining returns its data and, with the last of it, an error of its
// own, as a reader that verifies at EOF does.
type complaining struct{ r io.Reader }

func (c complaining) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF || (err == nil && n > 0 && c.r.(*bytes.Reader).Len() == 0) {
		return n, errors.New("reader's own complaint")
	}
	return n, err
}

func TestIngestJudgesBeforeReaderComplains(t *testing.T) {
	s, _ := openStore(t)
	want, got := []byte("expected"), []byte("imposter")
	err := s.Ingest(context.Background(), digest(want), int64(len(got)), complaining{bytes.NewReader(got)})
	if !errors.Is(err, errclass.InvalidArgument) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("Ingest = %v, want our digest mismatch", err)
	}
}
