package client

import (
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"

	"github.com/troupe-run/troupe/runtime"
)

// maxErrorBody is how much of an error answer is read; a proxy's HTML page
// needs no more to be recognised.
const maxErrorBody = 64 << 10

// maxErrorText is how much of a body that is not the API's JSON goes into
// the message.
const maxErrorText = 512

// APIError is a request the daemon refused: the status it answered and its
// message, unchanged.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the daemon's "error" field, or, for an answer that is not
	// the API's JSON (a proxy, a daemon too old), the status and the body.
	Message string
}

// Error returns the daemon's message as it came.
func (e *APIError) Error() string { return e.Message }

// Unwrap returns the error class of the status, so that errors.Is(err,
// runtime.ErrNotFound) holds for a 404. It is the one place where statuses
// become classes: the inverse of the server's mapping.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case nethttp.StatusBadRequest, nethttp.StatusRequestEntityTooLarge:
		return runtime.ErrInvalidArgument
	case nethttp.StatusNotFound:
		return runtime.ErrNotFound
	case nethttp.StatusConflict:
		// 409 serves both classes; the message tells them apart, since
		// the server's error wraps runtime.ErrAlreadyExists, whose text
		// ends up in it.
		if strings.Contains(e.Message, runtime.ErrAlreadyExists.Error()) {
			return runtime.ErrAlreadyExists
		}
		return runtime.ErrFailedPrecondition
	case nethttp.StatusServiceUnavailable:
		return runtime.ErrUnavailable
	default:
		return nil
	}
}

// readError makes the APIError of a non-2xx answer.
func readError(resp *nethttp.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var payload struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &payload) == nil && payload.Error != "" {
		e.Message = payload.Error
		return e
	}
	e.Message = fmt.Sprintf("%d %s", resp.StatusCode, nethttp.StatusText(resp.StatusCode))
	if text := strings.TrimSpace(string(body)); text != "" {
		if len(text) > maxErrorText {
			text = strings.ToValidUTF8(text[:maxErrorText], "") + "…"
		}
		e.Message += ": " + text
	}
	return e
}
