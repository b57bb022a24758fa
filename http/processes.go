package http

import (
	"fmt"
	nethttp "net/http"
	"strconv"
	"syscall"

	"github.com/gin-gonic/gin"
	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/actors/stdio"
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
	spec := runtime.ProcessSpec{Args: req.Args, Env: req.Env, Cwd: req.Cwd}
	if req.User != nil {
		if req.User.UID < 0 || req.User.GID < 0 {
			fail(c, fmt.Errorf("field \"user\": uid and gid must not be negative: %w", errclass.InvalidArgument))
			return
		}
		spec.User = runtime.User{UID: req.User.UID, GID: req.User.GID, AdditionalGids: req.User.AdditionalGids}
	}
	var p api.Process
	var err error
	if req.Attach || req.Stdin || req.Terminal || req.ConsoleSize != nil {
		o, oerr := stdioOptions(req.Stdin, req.Terminal, req.ConsoleSize)
		if oerr != nil {
			fail(c, oerr)
			return
		}
		p, err = s.cfg.Supervisor.ExecStdio(c.Request.Context(), c.Param("id"), spec, o)
	} else {
		p, err = s.cfg.Supervisor.Exec(c.Request.Context(), c.Param("id"), spec)
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, p)
}

// pidParam is the request's pid, or an InvalidArgument.
func pidParam(c *gin.Context) (int, error) {
	pid, err := strconv.Atoi(c.Param("pid"))
	if err != nil || pid < 1 {
		return 0, fmt.Errorf("pid %q: must be a positive number: %w", c.Param("pid"), errclass.InvalidArgument)
	}
	return pid, nil
}

// waitProcess answers how a process ended, once it has.
func (s *Server) waitProcess(c *gin.Context) {
	pid, err := pidParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	st, err := s.cfg.Supervisor.Wait(c.Request.Context(), c.Param("id"), pid)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, processExit(st.Code, st.Signal))
}

// processExit is an exit on the wire.
func processExit(code int, sig syscall.Signal) *api.ProcessExit {
	e := &api.ProcessExit{ExitCode: code}
	if sig != 0 {
		e.Signal = unix.SignalName(sig)
		if e.Signal == "" {
			e.Signal = strconv.Itoa(int(sig))
		}
	}
	return e
}

func (s *Server) signalProcess(c *gin.Context) {
	pid, err := pidParam(c)
	if err != nil {
		fail(c, err)
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

// stdioOptions is the stdio a request asks the daemon to keep of a process
// (an exec's, or an init's).
func stdioOptions(stdin, terminal bool, size *api.ConsoleSize) (stdio.Options, error) {
	o := stdio.Options{Stdin: stdin, Terminal: terminal}
	if size == nil {
		return o, nil
	}
	if !terminal {
		return o, fmt.Errorf("field \"consoleSize\" is for a terminal, and \"terminal\" is not set: %w", errclass.InvalidArgument)
	}
	if size.Width < 1 || size.Height < 1 {
		return o, fmt.Errorf("field \"consoleSize\": %dx%d: want at least one column and row: %w", size.Width, size.Height, errclass.InvalidArgument)
	}
	o.Width, o.Height = size.Width, size.Height
	return o, nil
}
