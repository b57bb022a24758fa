package layer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/troupe-run/troupe/errclass"
)

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns the uncompressed stream of a layer blob r, sniffing
// its first bytes: gzip is decompressed, anything else is taken as a plain
// tar stream (whose first bytes are an entry's name). Sniffing rather than
// trusting a media type lets a caller hand over whatever the registry sent.
// zstd is refused for now. Close releases the decompressor, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		src := &countingReader{r: br}
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, gzipError(src, err)
		}
		return &gzipReader{zr: zr, src: src}, nil
	case bytes.HasPrefix(head, zstdMagic):
		return nil, errclass.With(errclass.InvalidArgument, errors.New("read layer: zstd-compressed layers are not supported yet"))
	default:
		return io.NopCloser(br), nil
	}
}

// gzipReader gives the errors of the gzip data (a bad checksum, corrupt
// deflate, a cut stream) the class of the input's, and leaves those of the
// reader below as they are.
type gzipReader struct {
	zr  *gzip.Reader
	src *countingReader
}

func (g *gzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = gzipError(g.src, err)
	}
	return n, err
}

func (g *gzipReader) Close() error { return g.zr.Close() }

func gzipError(src *countingReader, err error) error {
	if src.err != nil && !errors.Is(src.err, io.EOF) && errors.Is(err, src.err) {
		return err
	}
	return errclass.With(errclass.InvalidArgument, fmt.Errorf("read gzip layer: %w", err))
}
