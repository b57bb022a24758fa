package layer

// Default limits of a layer. Layers of real images are far below them: the
// largest common ones (CUDA, browsers) hold a few GiB in a few hundred
// thousand files.
const (
	DefaultMaxBytes   = 8 << 30
	DefaultMaxEntries = 1 << 20
	DefaultMaxPathLen = 4096
	DefaultMaxDepth   = 256
)

// nameMax is the longest name of one path component that Linux file systems
// take (NAME_MAX).
const nameMax = 255

// Limits bounds what one layer may make, against tar bombs: a few MiB of
// gzip can expand into terabytes of zeros or millions of empty files. A zero
// (or negative) field means its default.
type Limits struct {
	// MaxBytes bounds the content of the layer's regular files, summed.
	MaxBytes int64
	// MaxEntries bounds the tar entries, whiteouts included.
	MaxEntries int
	// MaxPathLen bounds an entry's cleaned path, and a symlink's target.
	MaxPathLen int
	// MaxDepth bounds the components of an entry's path.
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxPathLen <= 0 {
		l.MaxPathLen = DefaultMaxPathLen
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// Stats says what Unpack made of a layer.
type Stats struct {
	// Entries is the number of tar entries read.
	Entries int
	// Bytes is the content written into regular files.
	Bytes int64
	// Whiteouts counts whiteouts and opaque markers.
	Whiteouts int
	// DroppedXattrs counts extended attributes left out as unsafe or
	// meaningless for their entry (see the package doc).
	DroppedXattrs int
}
