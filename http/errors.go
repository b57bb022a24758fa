package http

import (
	"context"
	"errors"
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/runtime"
)

// errBodyTooLarge marks a request body over the limit.
var errBodyTooLarge = errors.New("request body too large")

// errUnauthorized marks a request without the right bearer token.
var errUnauthorized = errors.New("unauthorized")

// statusOf maps an error class to its HTTP status: the one place that does.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nethttp.StatusRequestEntityTooLarge
	case errors.Is(err, errUnauthorized):
		return nethttp.StatusUnauthorized
	case errors.Is(err, runtime.ErrInvalidArgument):
		return nethttp.StatusBadRequest
	case errors.Is(err, runtime.ErrNotFound):
		return nethttp.StatusNotFound
	case errors.Is(err, runtime.ErrAlreadyExists), errors.Is(err, runtime.ErrFailedPrecondition):
		return nethttp.StatusConflict
	case errors.Is(err, runtime.ErrUnavailable):
		return nethttp.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return nethttp.StatusGatewayTimeout
	}
	return nethttp.StatusInternalServerError
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// fail answers err with its status and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err) // for the request log
	c.AbortWithStatusJSON(statusOf(err), errorBody{Error: err.Error()})
}
