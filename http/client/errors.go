package client

import (
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"syscall"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// maxErrorBody is how much of an error answer is read; a proxy's HTML page
// needs no more to be recognised.
const maxErrorBody = 64 << 10

// maxErrorText is how much of a body that is not the API's JSON goes into
// the message.
const maxErrorText = 512

// APIError is a request the daemon refused: the status it answered, its
// error code and its message, unchanged.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the daemon's error code; empty for an answer that is not
	// the API's JSON.
	Code api.ErrorCode
	// Message is the daemon's "error" field, or, for an answer that is not
	// the API's JSON (a proxy, a daemon too old), the status and the body.
	Message string
}

// Error returns the daemon's message as it came.
func (e *APIError) Error() string { return e.Message }

// Unwrap returns the error class of the code (of the status, for an answer
// without one), so that errors.Is(err, errclass.NotFound) holds for a 404.
// It is the one place where answers become classes: the inverse of the
// server's mapping.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case api.InvalidArgument, api.TooLarge, api.MethodNotAllowed:
		return errclass.InvalidArgument
	case api.NotFound:
		return errclass.NotFound
	case api.AlreadyExists:
		return errclass.AlreadyExists
	case api.FailedPrecondition:
		return errclass.FailedPrecondition
	case api.Unavailable:
		return errclass.Unavailable
	case api.NoSpace:
		return syscall.ENOSPC
	case "":
		return classOfStatus(e.Status)
	}
	return nil
}

// classOfStatus is the class of an answer without a code: a proxy's, or
// one made before the request reached the API.
func classOfStatus(status int) error {
	switch status {
	case nethttp.StatusBadRequest, nethttp.StatusRequestEntityTooLarge:
		return errclass.InvalidArgument
	case nethttp.StatusNotFound:
		return errclass.NotFound
	case nethttp.StatusServiceUnavailable:
		return errclass.Unavailable
	}
	return nil
}

// readError makes the APIError of a non-2xx answer.
func readError(resp *nethttp.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var payload api.Error
	if json.Unmarshal(body, &payload) == nil && payload.Error != "" {
		e.Message, e.Code = payload.Error, payload.Code
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
