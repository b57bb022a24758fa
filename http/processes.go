package http

import (
	"fmt"
	nethttp "net/http"
	"strconv"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

func (s *Server) execProcess(c *gin.Context) {
	var req api.ExecRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if len(req.Args) == 0 {
		fail(c, fmt.Errorf("field \"args\" is required: %w", errclass.InvalidArgument))
		return
	}
	if req.Terminal {
		fail(c, fmt.Errorf("field \"terminal\": terminals are not supported: %w", errclass.InvalidArgument))
		return
	}
	spec := runtime.ProcessSpec{Args: req.Args, Env: req.Env, Cwd: req.Cwd}
	if req.User != nil {
		if req.User.UID < 0 || req.User.GID < 0 {
			fail(c, fmt.Errorf("field \"user\": uid and gid must not be negative: %w", errclass.InvalidArgument))
			return
		}
		spec.User = runtime.User{UID: req.User.UID, GID: req.User.GID, AdditionalGids: req.User.AdditionalGids}
	}
	p, err := s.cfg.Supervisor.Exec(c.Request.Context(), c.Param("id"), spec)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, p)
}

func (s *Server) signalProcess(c *gin.Context) {
	pid, err := strconv.Atoi(c.Param("pid"))
	if err != nil || pid < 1 {
		fail(c, fmt.Errorf("pid %q: must be a positive number: %w", c.Param("pid"), errclass.InvalidArgument))
		return
	}
	var req api.SignalRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Signal == nil {
		fail(c, fmt.Errorf("field \"signal\" is required: %w", errclass.InvalidArgument))
		return
	}
	if err := s.cfg.Supervisor.Signal(c.Request.Context(), c.Param("id"), pid, syscall.Signal(*req.Signal)); err != nil {
		fail(c, err)
		return
	}
	c.Status(nethttp.StatusNoContent)
}
