//go:build !engine

package engine

// binary is empty: only a build with the tag "engine" (make build)
// embeds the engine.
var binary []byte
