package pull

import (
	"net/http"

	"github.com/troupe-run/troupe/runtime/image/content"
)

// DialFunc is how the puller connects; tests give their own to see (and
// refuse) every address it connects to.
type DialFunc = dialFunc

// NewWithDialer is New with every connection made by dial.
func NewWithDialer(store *content.Store, opts Options, dial DialFunc) *Puller {
	return newPuller(store, opts, dial)
}

// PlainHTTPAllowed exposes the plain HTTP policy.
var PlainHTTPAllowed = plainHTTPAllowed

// NewTransport exposes the guarded transport of a Puller with opts.
func NewTransport(opts Options, dial DialFunc) http.RoundTripper {
	return newPuller(nil, opts, dial).transport
}
