package http

import (
	"context"
	"errors"
	nethttp "net/http"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// errBodyTooLarge marks a request body over the limit.
var errBodyTooLarge = errors.New("request body too large")

// errUnauthorized marks a request without the right bearer token.
var errUnauthorized = errors.New("unauthorized")

// answerOf maps an error's class to its HTTP status and API error code: the
// one place that does. Package client holds the inverse, from code to class.
func answerOf(err error) (int, api.ErrorCode) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nethttp.StatusRequestEntityTooLarge, api.TooLarge
	case errors.Is(err, errUnauthorized):
		return nethttp.StatusUnauthorized, api.Unauthorized
	case errors.Is(err, errclass.InvalidArgument):
		return nethttp.StatusBadRequest, api.InvalidArgument
	case errors.Is(err, errclass.NotFound):
		return nethttp.StatusNotFound, api.NotFound
	case errors.Is(err, errclass.AlreadyExists):
		return nethttp.StatusConflict, api.AlreadyExists
	case errors.Is(err, errclass.FailedPrecondition):
		return nethttp.StatusConflict, api.FailedPrecondition
	case errors.Is(err, errclass.Unavailable):
		return nethttp.StatusServiceUnavailable, api.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return nethttp.StatusGatewayTimeout, api.DeadlineExceeded
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return nethttp.StatusInsufficientStorage, api.NoSpace
	}
	return nethttp.StatusInternalServerError, api.Internal
}

// fail answers err with its status and code and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err) // for the request log
	status, code := answerOf(err)
	c.AbortWithStatusJSON(status, api.Error{Error: err.Error(), Code: code})
}
