//go:build engine

package engine

import _ "embed" // for go:embed

// binary is bin/troupe-engine, put here by make build's go build -overlay.
//
//go:embed troupe-engine
var binary []byte
